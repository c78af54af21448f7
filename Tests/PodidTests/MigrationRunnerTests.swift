import App
import Foundation
import Logging
import PostgresNIO
import Store
import Testing

@Suite("Migration runner", .timeLimit(.minutes(5)))
struct MigrationRunnerTests {
    static let logger = Logger(label: "podid.tests.migrations")

    static func migrations(_ files: [(String, String)]) throws -> [Migration] {
        try files.map { try Migration(fileName: $0.0, sql: $0.1) }.sorted { $0.version < $1.version }
    }

    static func tables(_ client: PostgresClient) async throws -> [String] {
        var names: [String] = []
        let rows = try await client.query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", logger: logger)
        for try await name in rows.decode(String.self) { names.append(name) }
        return names
    }

    @Test("applies files in version order, one transaction each, and records them")
    func appliesInOrder() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        // 0002 depends on 0001 and 0010 on 0002: only version order works (not name order).
        let files = try Self.migrations([
            ("0010_c.sql", "ALTER TABLE b ADD COLUMN note text;"),
            ("0001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);"),
            ("0002_b.sql", "CREATE TABLE b (id int REFERENCES a (id)); INSERT INTO a VALUES (1); INSERT INTO b VALUES (1);"),
        ])
        try await database.withOwner { client in
            let runner = MigrationRunner(client: client, migrations: files, logger: Self.logger)
            let applied = try await runner.apply()
            #expect(applied.map(\.version) == [1, 2, 10])
            #expect(try await runner.apply().isEmpty)
            try await runner.verify()
            #expect(try await runner.status().map(\.state) == [.applied, .applied, .applied])
            #expect(try await Self.tables(client) == ["a", "b", "schema_migrations"])
        }
    }

    @Test("a failing file rolls back entirely and names the file and statement")
    func failureRollsBack() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        let files = try Self.migrations([
            ("0001_ok.sql", "CREATE TABLE ok (id int);"),
            ("0002_bad.sql", "CREATE TABLE half (id int); SELECT * FROM missing_table;"),
        ])
        try await database.withOwner { (client: PostgresClient) async throws in
            let runner = MigrationRunner(client: client, migrations: files, logger: Self.logger)
            await #expect {
                try await runner.apply()
            } throws: { error in
                guard case MigrationError.failed(let file, let statement, let message) = error else { return false }
                return file == "0002_bad.sql" && statement == 2 && message.contains("missing_table")
            }
            #expect(try await Self.tables(client) == ["ok", "schema_migrations"])
            #expect(try await runner.status().map(\.state) == [.applied, .pending])
        }
    }

    @Test("an applied file that was edited is an error naming it, and nothing else is applied")
    func checksumMismatch() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        try await database.withOwner { client in
            let original = try Self.migrations([("0001_a.sql", "CREATE TABLE a (id int);")])
            try await MigrationRunner(client: client, migrations: original, logger: Self.logger).apply()
            let edited = try Self.migrations([
                ("0001_a.sql", "CREATE TABLE a (id bigint);"), ("0002_b.sql", "CREATE TABLE b (id int);"),
            ])
            let runner = MigrationRunner(client: client, migrations: edited, logger: Self.logger)
            await #expect {
                try await runner.apply()
            } throws: { error in
                guard case MigrationError.checksumMismatch(let file, _, _) = error else { return false }
                return file == "0001_a.sql" && "\(error)".contains("0001_a.sql")
            }
            await #expect(throws: MigrationError.self) { try await runner.verify() }
            #expect(try await Self.tables(client) == ["a", "schema_migrations"])
            #expect(try await runner.status().first?.state == .modified)
        }
    }

    @Test("pending migrations fail verify, naming the files")
    func pendingFailsVerify() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        try await database.withOwner { client in
            let files = try Self.migrations([("0001_a.sql", "CREATE TABLE a (id int);")])
            let runner = MigrationRunner(client: client, migrations: files, logger: Self.logger)
            await #expect(throws: MigrationError.pending(["0001_a.sql"])) { try await runner.verify() }
        }
    }

    @Test("a database with a migration this podid does not ship is refused")
    func unknownApplied() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        try await database.withOwner { client in
            let newer = try Self.migrations([("0001_a.sql", "SELECT 1;"), ("0002_b.sql", "SELECT 2;")])
            try await MigrationRunner(client: client, migrations: newer, logger: Self.logger).apply()
            let older = MigrationRunner(client: client, migrations: Array(newer.prefix(1)), logger: Self.logger)
            await #expect(throws: MigrationError.unknownApplied(version: 2, file: "0002_b.sql")) { try await older.apply() }
        }
    }

    @Test("runners started together apply each migration exactly once (advisory lock)")
    func concurrentRunners() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        // Without the lock two runners would both try to create the table and one would fail.
        let files = try Self.migrations([
            ("0001_a.sql", "CREATE TABLE a (id int); SELECT pg_sleep(0.2);"),
            ("0002_b.sql", "CREATE TABLE b (id int);"),
        ])
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await database.withOwner { client in
                        try await MigrationRunner(client: client, migrations: files, logger: Self.logger).apply().count
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts.sorted() == [0, 0, 0, 2])
        try await database.withOwner { client in
            let rows = try await client.query("SELECT count(*)::int FROM schema_migrations", logger: Self.logger).collect()
            #expect(try rows.first?.decode(Int.self) == 2)
        }
    }

    @Test("file names must be NNNN_description.sql and versions unique")
    func fileNames() throws {
        #expect(throws: MigrationError.badFileName("init.sql")) { try Migration(fileName: "init.sql", sql: "") }
        #expect(throws: MigrationError.badFileName("0001-init.sql")) { try Migration(fileName: "0001-init.sql", sql: "") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try "SELECT 1;".write(to: directory.appendingPathComponent("0001_a.sql"), atomically: true, encoding: .utf8)
        try "SELECT 2;".write(to: directory.appendingPathComponent("0001_b.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.duplicateVersion("0001_a.sql", "0001_b.sql")) {
            try Migration.load(directory: directory)
        }
    }

    @Test("the shipped migrations apply, and the runtime role becomes a member of podid_runtime")
    func shippedMigrations() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        let runtimeUser = try database.runtimeURL.username
        try await database.withOwner { client in
            let runner = MigrationRunner(client: client, migrations: try Migration.bundled(), logger: Self.logger)
            try await runner.apply(runtimeUser: runtimeUser)
            try await runner.verify()
            let member = try await client.query(
                "SELECT pg_has_role(\(runtimeUser), 'podid_runtime', 'MEMBER')", logger: Self.logger).collect()
            #expect(try member.first?.decode(Bool.self) == true)
        }
        // The runtime role can check readiness (it reads schema_migrations).
        try await database.withRuntime { client in
            try await MigrationRunner(client: client, migrations: try Migration.bundled(), logger: Self.logger).verify()
        }
    }
}
