import App
import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// The podid binary: the server, its one-shot commands, and the local development environment.
@main
struct Podid: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "podid",
        abstract: "Self-service control plane for workload identities on AKS.",
        discussion: """
            Configuration comes from PODID_* environment variables (see docs/configuration.md).
            Start here: `make run` (podid dev) serves the API with a private PostgreSQL.
            """,
        subcommands: [Serve.self, Worker.self, Migrate.self, Dev.self, Sim.self, LocalPostgresCommand.self])
}

/// Reads the configuration and bootstraps logging and metrics once, for every command.
enum Bootstrap {
    static func configure() throws -> (PodidConfig, Logger, PrometheusCollectorRegistry) {
        let config: PodidConfig
        do {
            config = try PodidConfig.load()
        } catch let error as ConfigError {
            throw ValidationError("invalid configuration: \(error)")
        }
        let level = config.logLevel
        let format = config.logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: return JSONLogHandler(label: label, level: level)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return (config, Logger(label: "podid"), registry)
    }
}


/// `podid serve`: the API and PODID_WORKERS background workers. Refuses to start while migrations
/// are pending.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API and run PODID_WORKERS job workers (needs PODID_DATABASE_URL and current migrations).")

    func run() async throws {
        let (config, logger, registry) = try Bootstrap.configure()
        for warning in PodidApplication.warnings(config: config) { logger.warning("\(warning)") }
        do {
            try await PodidApplication.verifyMigrations(url: try config.requireDatabaseURL(), logger: logger)
        } catch let error as ConfigError {
            throw ValidationError("invalid configuration: \(error)")
        } catch {
            logger.critical("not starting: \(error)")
            throw ExitCode(2)
        }
        let app = try PodidApplication.build(config: config, registry: registry, logger: logger) { port in
            logger.info("podid listening", metadata: ["address": "\(config.httpHost):\(port)"])
        }
        try await app.runService()
    }
}

/// `podid worker`: job workers only (PODID_WORKERS of them, at least one), for running the API and
/// the workers as separate deployments. SIGTERM lets running jobs finish.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run background job workers without the HTTP API (needs PODID_DATABASE_URL and current migrations).")

    func run() async throws {
        let (config, logger, _) = try Bootstrap.configure()
        do {
            try await PodidApplication.verifyMigrations(url: try config.requireDatabaseURL(), logger: logger)
        } catch let error as ConfigError {
            throw ValidationError("invalid configuration: \(error)")
        } catch {
            logger.critical("not starting: \(error)")
            throw ExitCode(2)
        }
        let services: [any Service]
        do {
            services = try PodidApplication.workerServices(config: config, logger: logger)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        logger.info("podid workers running", metadata: ["workers": "\(max(config.workers, 1))"])
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// `podid migrate apply|verify|status`.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply or check the database migrations (uses PODID_MIGRATION_DATABASE_URL).",
        subcommands: [Apply.self, Verify.self, Status.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply pending migrations and grant the runtime role (PODID_DATABASE_URL's user) its rights.")

        func run() async throws {
            let (config, logger, _) = try Bootstrap.configure()
            let applied = try await PodidApplication.migrate(config: config, logger: logger)
            print(applied.isEmpty ? "migrations are current" : "applied: \(applied.map(\.fileName).joined(separator: ", "))")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit non-zero unless every migration is applied unchanged.")

        func run() async throws {
            let (config, logger, _) = try Bootstrap.configure()
            let url = try config.requireMigrationDatabaseURL()
            do {
                try await PodidApplication.verifyMigrations(url: url, logger: logger)
                print("migrations are current")
            } catch {
                print("migrations are not current: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every migration and its state.")

        func run() async throws {
            let (config, logger, _) = try Bootstrap.configure()
            for line in try await PodidApplication.migrationStatus(config: config, logger: logger) { print(line) }
        }
    }
}
