import App
import Foundation
import Logging
import PostgresNIO
import Store
import Testing

/// A database per test, cloned from a template that has every migration applied, on the PostgreSQL
/// that `make test` starts (URLs in PODID_TEST_*_DATABASE_URL or .podid-test/postgres.env).
struct TestDatabase: Sendable {
    /// The database's name.
    let name: String
    /// The owning role's URL for this database.
    let ownerURLText: String
    /// The runtime role's URL for this database.
    let runtimeURLText: String

    var ownerURL: DatabaseURL { get throws { try DatabaseURL(ownerURLText) } }
    var runtimeURL: DatabaseURL { get throws { try DatabaseURL(runtimeURLText) } }

    static let logger = Logger(label: "podid.tests")

    /// The connection wait of every pool the tests build (`PODID_DATABASE_CONNECT_WAIT`). The suites
    /// run in parallel on a machine that may have two cores, each creating databases; a connection
    /// can then take longer than the production default of 5 seconds, and a test would fail with a 503
    /// that says nothing about what it tests. The outage tests set their own short wait.
    static let connectionWaitSeconds = 60

    /// The server's URLs: from the environment, or from the file `make test` writes.
    static func serverURLs() throws -> (owner: String, runtime: String) {
        let env = ProcessInfo.processInfo.environment
        if let owner = env["PODID_TEST_MIGRATION_DATABASE_URL"], let runtime = env["PODID_TEST_DATABASE_URL"] {
            return (owner, runtime)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent(".podid-test/postgres.env")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw TestSetupError("no test database: run `make test` (or `PODID_DATA_DIR=.podid-test podid postgres start`)")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.contains("=") && !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            values[String(parts[0])] = String(parts[1])
        }
        guard let owner = values["PODID_MIGRATION_DATABASE_URL"], let runtime = values["PODID_DATABASE_URL"] else {
            throw TestSetupError("\(file.path) lacks the database URLs")
        }
        return (owner, runtime)
    }

    /// A new, migrated database.
    static func make() async throws -> TestDatabase {
        let (owner, runtime) = try serverURLs()
        let template = try await Template.shared.name(ownerURL: owner, runtimeURL: runtime)
        let name = "podid_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await withAdmin(owner) { client in
            // Cloning fails while a connection to the template is still closing; wait it out.
            for attempt in 1...50 {
                do {
                    try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE \(template)"), logger: logger)
                    return
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" && attempt < 50 {
                    try await Task.sleep(for: .milliseconds(100))
                } catch {
                    throw TestSetupError("cloning \(template): \(String(reflecting: error))")
                }
            }
        }
        return TestDatabase(
            name: name, ownerURLText: rebasedText(owner, database: name), runtimeURLText: rebasedText(runtime, database: name))
    }

    /// An empty database (no migrations), for the migration runner's tests.
    static func makeEmpty() async throws -> TestDatabase {
        let (owner, runtime) = try serverURLs()
        let name = "podid_e_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await withAdmin(owner) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        return TestDatabase(
            name: name, ownerURLText: rebasedText(owner, database: name), runtimeURLText: rebasedText(runtime, database: name))
    }

    /// Drops the database, closing any connection still open to it.
    func drop() async {
        guard let (owner, _) = try? Self.serverURLs() else { return }
        try? await Self.withAdmin(owner) { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: Self.logger)
        }
    }

    /// Runs `body` with a client connected as the owning role.
    func withOwner<R: Sendable>(_ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        try await PodidApplication.withClient(try ownerURL, logger: Self.logger, body)
    }

    /// Runs `body` with a client connected as the runtime role.
    func withRuntime<R: Sendable>(_ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        try await PodidApplication.withClient(try runtimeURL, logger: Self.logger, body)
    }

    /// Runs `body` with podid's PostgreSQL store as the runtime role (Core's services and rules on
    /// this database).
    func withRuntimeStore<R: Sendable>(_ body: @Sendable (PostgresStore) async throws -> R) async throws -> R {
        try await withRuntime { client in
            try await body(PostgresStore(pool: PostgresPool(client: client, logger: Self.logger, connectionWait: .seconds(Self.connectionWaitSeconds))))
        }
    }

    static func withAdmin<R: Sendable>(_ owner: String, _ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        try await PodidApplication.withClient(try rebased(owner, database: "postgres"), logger: logger, body)
    }

    static func rebased(_ url: String, database: String) throws -> DatabaseURL {
        try DatabaseURL(rebasedText(url, database: database))
    }

    static func rebasedText(_ url: String, database: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + database
        return components.string!
    }

    /// The migrated template database, created once per test process.
    actor Template {
        static let shared = Template()
        var creation: Task<String, any Error>?

        /// The template's name; the first caller creates and migrates it, concurrent callers wait
        /// for that (actor methods are reentrant across awaits, so a flag alone would not do).
        func name(ownerURL: String, runtimeURL: String) async throws -> String {
            if let creation { return try await creation.value }
            let task = Task { try await Self.create(ownerURL: ownerURL, runtimeURL: runtimeURL) }
            creation = task
            return try await task.value
        }

        static func create(ownerURL: String, runtimeURL: String) async throws -> String {
            let migrations = try Migration.bundled()
            // FNV-1a over the checksums: a new or edited migration gives a new template.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in migrations.map(\.checksum).joined().utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
            let name = "podid_template_\(String(hash, radix: 16))"
            do {
                let exists = try await withAdmin(ownerURL) { client in
                    try await client.query("SELECT 1 FROM pg_database WHERE datname = \(name)", logger: logger).collect().count > 0
                }
                if !exists {
                    try await withAdmin(ownerURL) { client in
                        try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
                    }
                }
                let runtimeUser = try DatabaseURL(runtimeURL).username
                try await PodidApplication.withClient(try rebased(ownerURL, database: name), logger: logger) { client in
                    try await MigrationRunner(client: client, migrations: migrations, logger: logger).apply(runtimeUser: runtimeUser)
                }
            } catch {
                throw TestSetupError("creating the template database \(name): \(String(reflecting: error))")
            }
            return name
        }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
