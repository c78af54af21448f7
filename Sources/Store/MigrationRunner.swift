import Foundation
import Logging
import PostgresNIO

/// Applies and checks migrations: ordered, checksummed, one transaction per file, and serialized
/// across replicas by a PostgreSQL advisory lock.
public struct MigrationRunner: Sendable {
    /// The advisory lock key; any constant unlikely to clash with another application's.
    static let lockKey: Int64 = 0x706F_6469_645F_6D67  // "podid_mg"

    /// The state of one migration.
    public struct Status: Sendable, Equatable {
        public enum State: String, Sendable { case applied, pending, modified, unknown }
        public var version: Int
        public var fileName: String
        public var state: State
        public var appliedAt: Date?
        public var appliedChecksum: String?
    }

    let client: PostgresClient
    let migrations: [Migration]
    let logger: Logger

    /// Creates a runner for `migrations` on the database `client` connects to.
    public init(client: PostgresClient, migrations: [Migration], logger: Logger) {
        self.client = client
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies the pending migrations and returns them. With `runtimeUser`, makes that login role a
    /// member of `podid_runtime`, the role the migrations grant rights to.
    @discardableResult
    public func apply(runtimeUser: String? = nil) async throws -> [Migration] {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
            do {
                let applied = try await applyLocked(connection)
                if let runtimeUser { try await grantRuntime(to: runtimeUser, connection) }
                try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
        }
    }

    /// The state of every migration, shipped or applied.
    public func status() async throws -> [Status] {
        let applied = try await appliedRows(client: client)
        var result: [Status] = []
        for migration in migrations {
            if let row = applied[migration.version] {
                result.append(Status(version: migration.version, fileName: migration.fileName,
                                     state: row.checksum == migration.checksum ? .applied : .modified,
                                     appliedAt: row.appliedAt, appliedChecksum: row.checksum))
            } else {
                result.append(Status(version: migration.version, fileName: migration.fileName, state: .pending))
            }
        }
        let known = Set(migrations.map(\.version))
        for (version, row) in applied where !known.contains(version) {
            result.append(Status(version: version, fileName: row.fileName, state: .unknown, appliedAt: row.appliedAt,
                                 appliedChecksum: row.checksum))
        }
        return result.sorted { $0.version < $1.version }
    }

    /// Throws unless every shipped migration is applied unchanged and none is unknown.
    public func verify() async throws {
        let states = try await status()
        try Self.check(states, migrations)
        let pending = states.filter { $0.state == .pending }.map(\.fileName)
        if !pending.isEmpty { throw MigrationError.pending(pending) }
    }

    static func check(_ states: [Status], _ migrations: [Migration]) throws {
        for state in states {
            switch state.state {
            case .modified:
                let onDisk = migrations.first { $0.version == state.version }?.checksum ?? ""
                throw MigrationError.checksumMismatch(
                    file: state.fileName, applied: state.appliedChecksum ?? "", onDisk: onDisk)
            case .unknown:
                throw MigrationError.unknownApplied(version: state.version, file: state.fileName)
            case .applied, .pending:
                continue
            }
        }
    }

    private struct AppliedRow {
        var fileName: String
        var checksum: String
        var appliedAt: Date
    }

    private func appliedRows(client: PostgresClient) async throws -> [Int: AppliedRow] {
        try await client.withConnection { try await appliedRows($0) }
    }

    private func appliedRows(_ connection: PostgresConnection) async throws -> [Int: AppliedRow] {
        let exists = try await connection.query(
            "SELECT to_regclass('public.schema_migrations') IS NOT NULL", logger: logger
        ).collect().first?.decode(Bool.self) ?? false
        guard exists else { return [:] }
        var rows: [Int: AppliedRow] = [:]
        let sequence = try await connection.query(
            "SELECT version, file_name, checksum, applied_at FROM schema_migrations", logger: logger)
        for try await (version, fileName, checksum, appliedAt) in sequence.decode((Int, String, String, Date).self) {
            rows[version] = AppliedRow(fileName: fileName, checksum: checksum, appliedAt: appliedAt)
        }
        return rows
    }

    private func applyLocked(_ connection: PostgresConnection) async throws -> [Migration] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                file_name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL
            )
            """, logger: logger)
        let applied = try await appliedRows(connection)
        for migration in migrations {
            if let row = applied[migration.version], row.checksum != migration.checksum {
                throw MigrationError.checksumMismatch(file: migration.fileName, applied: row.checksum, onDisk: migration.checksum)
            }
        }
        let known = Set(migrations.map(\.version))
        if let (version, row) = applied.sorted(by: { $0.key < $1.key }).first(where: { !known.contains($0.key) }) {
            throw MigrationError.unknownApplied(version: version, file: row.fileName)
        }
        var done: [Migration] = []
        for migration in migrations where applied[migration.version] == nil {
            let started = ContinuousClock.now
            let statements = SQLSplitter.split(migration.sql)
            do {
                try await connection.withTransaction(logger: logger) { connection in
                    for (index, statement) in statements.enumerated() {
                        do {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        } catch {
                            throw MigrationError.failed(file: migration.fileName, statement: index + 1,
                                                        message: PostgresErrors.serverMessage(error))
                        }
                    }
                    let elapsed = ContinuousClock.now - started
                    let ms = Int(elapsed.inMilliseconds)
                    try await connection.query(
                        "INSERT INTO schema_migrations (version, file_name, checksum, duration_ms) VALUES (\(migration.version), \(migration.fileName), \(migration.checksum), \(ms))",
                        logger: logger)
                }
            } catch let error as PostgresTransactionError {
                throw error.closureError ?? error.commitError ?? error
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.fileName)"])
            done.append(migration)
        }
        return done
    }

    private func grantRuntime(to user: String, _ connection: PostgresConnection) async throws {
        let current = try await connection.query("SELECT current_user::text", logger: logger).collect().first?.decode(String.self)
        if current == user { return }
        let isMember = try await connection.query(
            "SELECT pg_has_role(\(user), 'podid_runtime', 'MEMBER')", logger: logger
        ).collect().first?.decode(Bool.self) ?? false
        if isMember { return }
        let quoted = "\"" + user.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        try await connection.query(PostgresQuery(unsafeSQL: "GRANT podid_runtime TO \(quoted)"), logger: logger)
        logger.info("granted podid_runtime", metadata: ["role": "\(user)"])
    }
}
