import Crypto
import Foundation
import Logging

/// A private PostgreSQL cluster for `podid dev` and `make test`: found or installed, initialised once,
/// started on a free loopback port with a Unix socket, with podid's two login roles and database.
///
/// PostgreSQL refuses to run as root, so when podid runs as root the cluster lives in a directory
/// owned by the `postgres` user (under /var/tmp, with a short socket path) and its tools run through
/// runuser; the location is recorded in `PODID_DATA_DIR/postgres-location`.
public struct LocalPostgres: Sendable {
    /// A started cluster and the URLs of podid's roles.
    public struct Instance: Sendable {
        /// The runtime role's URL (`PODID_DATABASE_URL`).
        public var databaseURL: String
        /// The owning role's URL (`PODID_MIGRATION_DATABASE_URL`).
        public var migrationDatabaseURL: String
        /// The TCP port on 127.0.0.1.
        public var port: Int
        /// The cluster's data directory.
        public var dataDirectory: String
    }

    /// The database podid uses.
    public static let databaseName = "podid"
    /// The owning login role (runs migrations).
    public static let ownerRole = "podid_owner"
    /// The runtime login role (runs the server).
    public static let runtimeRole = "podid_app"

    /// `PODID_DATA_DIR`, absolute.
    public let dataDir: URL
    let logger: Logger

    /// A cluster for the data directory `dataDir`.
    public init(dataDir: String, logger: Logger) {
        let url = URL(fileURLWithPath: dataDir, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        self.dataDir = url.standardizedFileURL
        self.logger = logger
    }

    /// Where the cluster lives: beside podid's data when podid is not root, else under /var/tmp,
    /// owned by `postgres`, named after the data directory so that each checkout has its own.
    var base: URL {
        if Shell.isRoot {
            let digest = SHA256.hash(data: Array(dataDir.path.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
            return URL(fileURLWithPath: "/var/tmp/podid-pg-\(digest)")
        }
        return dataDir.appendingPathComponent("postgres")
    }

    var clusterDirectory: URL { base.appendingPathComponent("data") }
    /// The socket directory: short, because socket paths are limited to 107 bytes.
    var socketDirectory: URL {
        if Shell.isRoot { return base.appendingPathComponent("s") }
        let digest = SHA256.hash(data: Array(dataDir.path.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return URL(fileURLWithPath: "/tmp/podid-pg-\(digest)")
    }
    var runUser: String? { Shell.isRoot ? "postgres" : nil }

    /// Starts the cluster (initialising and installing PostgreSQL when needed), ensures the roles and
    /// the database, and writes `postgres.env`. With `fresh`, any previous cluster is removed first.
    public func start(fresh: Bool = false) throws -> Instance {
        let bin = try Self.binDirectory(logger: logger)
        let fm = FileManager.default
        try PrivateDirectory.prepare(dataDir.path)
        if fresh {
            stopIfRunning(bin: bin)
            try? fm.removeItem(at: base)
            try? fm.removeItem(at: socketDirectory)
        }
        try fm.createDirectory(at: base, withIntermediateDirectories: true)
        try fm.createDirectory(at: socketDirectory, withIntermediateDirectories: true)
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: base.path)
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: socketDirectory.path)
        if Shell.isRoot {
            try Shell.run(["/bin/chown", "-R", "postgres:postgres", base.path])
            try Shell.run(["/bin/chown", "postgres:postgres", socketDirectory.path])
        }
        try "\(base.path)\n".write(to: dataDir.appendingPathComponent("postgres-location"), atomically: true, encoding: .utf8)

        if !fm.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) {
            logger.info("initialising a private PostgreSQL cluster", metadata: ["path": "\(clusterDirectory.path)"])
            try Shell.run(
                ["\(bin)/initdb", "-D", clusterDirectory.path, "-U", "postgres", "--encoding=UTF8", "--locale=C",
                 "--auth-local=trust", "--auth-host=scram-sha-256"],
                asUser: runUser)
        }

        let previous = fresh ? nil : previousInstance()
        let port: Int
        if let running = runningPort(bin: bin) {
            port = running
            logger.info("reusing the running private PostgreSQL", metadata: ["port": "\(port)"])
        } else {
            // The previous port when it is still free, so that the URLs in postgres.env — and a
            // podid still running with them — keep working across a restart.
            port = try previous.flatMap { Self.isFree($0.port) ? $0.port : nil } ?? Self.freePort()
            let log = base.appendingPathComponent("postgres.log").path
            // A throwaway (fresh) cluster for tests trades durability for speed, and takes the many
            // connections of tests running side by side; the dev cluster, which a later `make run`
            // reuses, keeps PostgreSQL's durable defaults.
            let speed = fresh ? " -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=600" : ""
            try Shell.run(
                ["\(bin)/pg_ctl", "start", "-D", clusterDirectory.path, "-l", log, "-w", "-t", "60", "-o",
                 "-p \(port) -k \(socketDirectory.path) -c listen_addresses=127.0.0.1 -c max_connections=200\(speed)"],
                asUser: runUser)
        }

        // Passwords are kept across restarts for the same reason; a fresh cluster gets new ones.
        let ownerPassword = previous?.ownerPassword ?? Self.randomPassword()
        let runtimePassword = previous?.runtimePassword ?? Self.randomPassword()
        let sql = """
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(Self.ownerRole)') THEN
                    CREATE ROLE \(Self.ownerRole) LOGIN CREATEROLE CREATEDB;
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(Self.runtimeRole)') THEN
                    CREATE ROLE \(Self.runtimeRole) LOGIN;
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'podid_runtime') THEN
                    CREATE ROLE podid_runtime NOLOGIN;
                END IF;
            END
            $$;
            ALTER ROLE \(Self.ownerRole) PASSWORD '\(ownerPassword)';
            ALTER ROLE \(Self.runtimeRole) PASSWORD '\(runtimePassword)';
            GRANT podid_runtime TO \(Self.runtimeRole);
            GRANT podid_runtime TO \(Self.ownerRole) WITH ADMIN OPTION;
            SELECT 'CREATE DATABASE \(Self.databaseName) OWNER \(Self.ownerRole)'
            WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '\(Self.databaseName)') \\gexec
            """
        // \gexec (create the database only when missing) needs a script rather than -c.
        let script = base.appendingPathComponent("roles.sql")
        try sql.write(to: script, atomically: true, encoding: .utf8)
        if Shell.isRoot { try Shell.run(["/bin/chown", "postgres:postgres", script.path]) }
        try Shell.run(
            ["\(bin)/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory.path, "-p", String(port),
             "-U", "postgres", "-d", "postgres", "-f", script.path],
            asUser: runUser)
        try? fm.removeItem(at: script)

        let instance = Instance(
            databaseURL: "postgres://\(Self.runtimeRole):\(runtimePassword)@127.0.0.1:\(port)/\(Self.databaseName)?sslmode=disable",
            migrationDatabaseURL: "postgres://\(Self.ownerRole):\(ownerPassword)@127.0.0.1:\(port)/\(Self.databaseName)?sslmode=disable",
            port: port, dataDirectory: clusterDirectory.path)
        try writeEnvironmentFile(instance)
        return instance
    }

    /// Stops the cluster if it runs.
    public func stop() {
        guard let bin = try? Self.binDirectory(logger: logger, install: false) else { return }
        stopIfRunning(bin: bin)
    }

    func stopIfRunning(bin: String) {
        guard FileManager.default.fileExists(atPath: clusterDirectory.appendingPathComponent("postmaster.pid").path) else { return }
        _ = try? Shell.run(["\(bin)/pg_ctl", "stop", "-D", clusterDirectory.path, "-m", "fast", "-w", "-t", "60"],
                           asUser: runUser, check: false)
    }

    /// The port of a cluster that is already running, from its postmaster.pid.
    func runningPort(bin: String) -> Int? {
        guard let status = try? Shell.run(["\(bin)/pg_ctl", "status", "-D", clusterDirectory.path], asUser: runUser, check: false),
              status.status == 0,
              let pid = try? String(contentsOf: clusterDirectory.appendingPathComponent("postmaster.pid"), encoding: .utf8)
        else { return nil }
        let lines = pid.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 3, let port = Int(lines[3]) else { return nil }
        // A cluster started with another socket directory is not reachable the way we connect.
        guard lines.count > 4, lines[4] == socketDirectory.path else {
            stopIfRunning(bin: bin)
            return nil
        }
        return port
    }

    func writeEnvironmentFile(_ instance: Instance) throws {
        let text = """
            # Written by podid for the private PostgreSQL cluster; source it to reach the dev database.
            PODID_DATABASE_URL=\(instance.databaseURL)
            PODID_MIGRATION_DATABASE_URL=\(instance.migrationDatabaseURL)
            PODID_POSTGRES_PORT=\(instance.port)
            PODID_POSTGRES_DATA=\(instance.dataDirectory)

            """
        let file = dataDir.appendingPathComponent("postgres.env")
        try text.write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }

    /// PostgreSQL's binaries: `pg_config --bindir`, else the newest Debian install (15 or newer);
    /// installs Debian's `postgresql` package when none is found and podid runs as root.
    static func binDirectory(logger: Logger, install: Bool = true) throws -> String {
        if let found = findBinDirectory() { return found }
        guard install, Shell.isRoot else {
            throw LocalPostgresError(message: "PostgreSQL 15 or newer is not installed; install it (Debian: apt-get install -y postgresql) or set PODID_DATABASE_URL")
        }
        logger.notice("PostgreSQL is not installed; installing Debian's postgresql package")
        let env = ProcessInfo.processInfo.environment.merging(["DEBIAN_FRONTEND": "noninteractive"]) { $1 }
        try Shell.run(["apt-get", "update"], environment: env)
        try Shell.run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], environment: env)
        if let found = findBinDirectory() { return found }
        throw LocalPostgresError(message: "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin")
    }

    static func findBinDirectory() -> String? {
        if let result = try? Shell.run(["pg_config", "--bindir"], check: false), result.status == 0 {
            let dir = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            if Shell.isExecutable("\(dir)/initdb") && Shell.isExecutable("\(dir)/pg_ctl") { return dir }
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).filter { $0 >= 15 }.sorted(by: >)
        return versions.map { "\(root)/\($0)/bin" }.first { Shell.isExecutable("\($0)/initdb") }
    }

    /// The port and passwords the last start wrote to postgres.env, if it is there and readable.
    func previousInstance() -> (port: Int, ownerPassword: String, runtimePassword: String)? {
        guard let text = try? String(contentsOf: dataDir.appendingPathComponent("postgres.env"), encoding: .utf8) else { return nil }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let owner = values["PODID_MIGRATION_DATABASE_URL"].flatMap(URLComponents.init(string:)),
              let runtime = values["PODID_DATABASE_URL"].flatMap(URLComponents.init(string:)),
              let ownerPassword = owner.password, let runtimePassword = runtime.password, let port = owner.port,
              ownerPassword.allSatisfy({ $0.isLetter || $0.isNumber }), runtimePassword.allSatisfy({ $0.isLetter || $0.isNumber })
        else { return nil }
        return (port, ownerPassword, runtimePassword)
    }

    /// Whether `port` on 127.0.0.1 can be bound now.
    static func isFree(_ port: Int) -> Bool {
        guard port > 0 && port < 65536 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // As PostgreSQL binds it: connections of the previous run in TIME_WAIT do not block it.
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        } == 0
    }

    /// A free TCP port on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LocalPostgresError(message: "cannot create a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw LocalPostgresError(message: "cannot bind to find a free port") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw LocalPostgresError(message: "cannot read the free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<32).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}

/// The private PostgreSQL cluster could not be set up.
public struct LocalPostgresError: Error, CustomStringConvertible {
    /// What went wrong and what to do.
    public var message: String
    public var description: String { message }
}
