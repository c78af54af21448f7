import App
import Core
import Foundation
import Logging
import PostgresNIO
import Store
import Testing

/// What podid does while PostgreSQL is away, and how the private cluster comes back.
@Suite("Database outages", .timeLimit(.minutes(5)))
struct DatabaseOutageTests {
    @Test("with nothing listening, a query is a 503 after the connection wait instead of a request that hangs")
    func unreachable() async throws {
        let port = try LocalPostgresPorts.closedPort()
        let client = PostgresClient(configuration: .init(host: "127.0.0.1", port: port, username: "podid", password: "x",
                                                         database: "podid", tls: .disable),
                                    backgroundLogger: Logger(label: "test.pool"))
        let database = PostgresPool(client: client, logger: Logger(label: "test"), connectionWait: .seconds(3))
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            let started = ContinuousClock.now
            for attempt in 0..<2 {
                do {
                    _ = try await database.rows("SELECT 1")
                    Issue.record("a query without a database succeeded")
                } catch let error as DomainError {
                    #expect(error.kind == .unavailable, "attempt \(attempt): \(error)")
                }
                do {
                    try await database.transaction { connection in
                        _ = try await connection.query("SELECT 1", logger: Logger(label: "test"))
                    }
                    Issue.record("a transaction without a database succeeded")
                } catch let error as DomainError {
                    #expect(error.kind == .unavailable, "attempt \(attempt): \(error)")
                }
            }
            // Four waits, each ended by the connection deadline; the margin absorbs a loaded machine
            // (the suite runs its tests in parallel), while a request that hangs never ends at all.
            #expect(ContinuousClock.now - started < database.connectionWait * 4 + .seconds(40))
            group.cancelAll()
        }
    }

    @Test("a private cluster started again keeps its port and passwords, so a running podid reconnects")
    func restartKeepsURLs() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("podid-restart-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let postgres = LocalPostgres(dataDir: directory.path, logger: Logger(label: "test.postgres"))
        let first = try postgres.start(fresh: true)
        defer { postgres.stop() }
        postgres.stop()
        let second = try postgres.start()
        #expect(second.databaseURL == first.databaseURL)
        #expect(second.migrationDatabaseURL == first.migrationDatabaseURL)
        postgres.stop()
        let fresh = try postgres.start(fresh: true)
        #expect(fresh.databaseURL != first.databaseURL, "a fresh cluster gets new passwords")
    }
}

/// A loopback port nothing listens on.
enum LocalPostgresPorts {
    static func closedPort() throws -> Int {
        let socket = try #require(Optional(Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)))
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
