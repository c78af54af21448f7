import App
import Core
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
            Client commands (login, apply, get, audit, health, manifests) talk to the HTTP API only.
            """,
        subcommands: [Serve.self, Worker.self, Migrate.self, Database.self, Dev.self, Sim.self, LocalPostgresCommand.self,
                      Login.self, Apply.self, Get.self, Audit.self, Health.self, Manifests.self])
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
        if let warning = await PodidApplication.roleWarning(config: config, logger: logger) { logger.warning("\(warning)") }
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

/// `podid db prune-audit`: the owner's maintenance of the audit log.
struct Database: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Database maintenance as the owning role (PODID_MIGRATION_DATABASE_URL).",
        subcommands: [PruneAudit.self])

    struct PruneAudit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune-audit",
            abstract: "Delete sealed audit events older than a time, leaving an anchor so that verification continues from there.",
            discussion: """
                The audit log is kept forever unless this runs (schedule it, e.g. as a CronJob). It needs the
                owning role: the server's runtime role cannot delete audit events.
                Examples:
                  podid db prune-audit --before 2026-01-01T00:00:00Z
                  PODID_AUDIT_RETENTION_DAYS=400 podid db prune-audit
                """)

        @Option(help: "Delete events that happened before this RFC 3339 time.")
        var before: String?

        @Option(help: "Delete events older than this many days (default: PODID_AUDIT_RETENTION_DAYS).")
        var olderThanDays: Int?

        func run() async throws {
            let (config, logger, _) = try Bootstrap.configure()
            let cutoff: Date
            if let before {
                guard let date = Timestamp.parse(before) else { throw ValidationError("--before must be an RFC 3339 time such as 2026-01-01T00:00:00Z") }
                cutoff = date
            } else if let days = olderThanDays ?? config.auditRetentionDays {
                guard days >= 1 else { throw ValidationError("the retention must be at least one day") }
                cutoff = Date().addingTimeInterval(-Double(days) * 86400)
            } else {
                throw ValidationError("nothing to prune: give --before or --older-than-days, or set PODID_AUDIT_RETENTION_DAYS (by default the audit log is kept forever)")
            }
            let pruned = try await PodidApplication.pruneAudit(before: cutoff, config: config, logger: logger)
            print("pruned \(pruned) audit events before \(Timestamp.format(cutoff))")
        }
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
