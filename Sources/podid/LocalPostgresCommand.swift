import App
import ArgumentParser
import Foundation
import Logging

/// `podid postgres start|stop`: the private PostgreSQL cluster that `podid dev` uses, on its own —
/// `make test` starts a fresh one for the test suite.
struct LocalPostgresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "Start or stop the private PostgreSQL cluster of PODID_DATA_DIR (for development and tests).",
        subcommands: [Start.self, Stop.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the cluster and write PODID_DATA_DIR/postgres.env with both database URLs.")

        @Flag(help: "Remove any previous cluster of this data directory first, and run the new one for speed rather than durability (for tests).")
        var fresh = false

        func run() async throws {
            let (config, logger, _) = try Bootstrap.configure()
            PrivateDirectory.restrictNewFiles()
            let instance = try LocalPostgres(dataDir: config.dataDir, logger: logger).start(fresh: fresh)
            print("PostgreSQL is running on 127.0.0.1:\(instance.port); URLs in \(config.dataDir)/postgres.env")
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the cluster.")

        func run() async throws {
            let (config, logger, _) = try Bootstrap.configure()
            LocalPostgres(dataDir: config.dataDir, logger: logger).stop()
            print("PostgreSQL stopped")
        }
    }
}
