import AsyncHTTPClient
import Cloud
import Core
import Foundation
import HTTP
import Hummingbird
import Logging
import PostgresNIO
import Prometheus
import ServiceLifecycle
import Store
import Workers

/// The composition root: builds the HTTP application and the services it owns.
public enum PodidApplication {
    /// The HTTP application for `config`, owning its PostgreSQL client. Metrics go to `registry`
    /// (the caller bootstraps swift-metrics with it in `main`; tests pass their own).
    public static func build(
        config: PodidConfig, registry: PrometheusCollectorRegistry, logger: Logger, services: [any Service] = [],
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let databaseURL = try config.requireDatabaseURL()
        var dbLogger = logger
        dbLogger[metadataKey: "component"] = "postgres"
        let client = PostgresClient(configuration: databaseURL.clientConfiguration(), backgroundLogger: dbLogger)
        let database = PostgresDatabase(client: client, logger: dbLogger)

        let audit = PostgresAuditStore(database: database)
        let auditLog = PostgresAuditLog(database: database)
        let teamStore = PostgresTeamStore(database: database)
        let tokenStore = PostgresTokenStore(database: database)
        let idempotency = PostgresIdempotencyStore(database: database)
        let identityStore = PostgresIdentityStore(database: database)
        let clusterStore = PostgresClusterStore(database: database)
        let bindingStore = PostgresBindingStore(database: database)
        let healthStore = PostgresHealthStore(database: database)
        let queue = PostgresJobQueue(database: database)
        let runner = MigrationRunner(client: client, migrations: try Migration.bundled(), logger: dbLogger)
        // Workers and health sweeps run where PODID_WORKERS says (0: the API only).
        let background = config.workers > 0 ? try Self.backgroundServices(config: config, database: database, logger: logger) : []

        let handler = APIHandler(
            teams: TeamService(store: teamStore, audit: audit),
            tokens: TokenService(store: tokenStore, teams: teamStore, audit: audit),
            identities: IdentityService(store: identityStore, teams: teamStore, audit: audit),
            clusters: ClusterService(store: clusterStore, audit: audit),
            bindings: BindingService(store: bindingStore, identities: identityStore, clusters: clusterStore, teams: teamStore, audit: audit),
            jobs: JobService(store: queue, audit: audit),
            audit: AuditService(log: auditLog, audit: audit),
            health: HealthService(health: healthStore, bindings: bindingStore, audit: audit),
            readiness: PostgresReadinessProbe(runner: runner),
            registry: registry)
        var httpLogger = logger
        httpLogger[metadataKey: "component"] = "http"
        let router = try Routes.router(
            handler: handler,
            authenticator: TokenAuthenticator(store: tokenStore, bootstrapAdminToken: config.adminToken),
            idempotency: idempotency, registry: registry, logger: httpLogger)

        var app = Application(
            router: router,
            configuration: .init(address: .hostname(config.httpHost, port: config.httpPort), serverName: "podid"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? config.httpPort) },
            logger: httpLogger)
        app.addServices(client, IdempotencyPruner(store: idempotency, logger: logger), AuditSealer(log: auditLog, logger: logger))
        app.addServices(background)
        app.addServices(services)
        return app
    }

    /// What runs in the background, sharing one Azure client (one token cache, one write pacer and
    /// one throttling pause per subscription) and one pool of Kubernetes clients: the job workers
    /// (`PODID_WORKERS`, every handler) and the health sweeps (`PODID_HEALTH_INTERVAL`). Built
    /// before anything runs, so that a bad Azure configuration stops start-up.
    public static func backgroundServices(config: PodidConfig, database: Store.PostgresDatabase, logger: Logger) throws -> [any Service] {
        var workerLogger = logger
        workerLogger[metadataKey: "component"] = "worker"
        var healthLogger = logger
        healthLogger[metadataKey: "component"] = "health"
        let azure = try Self.azureClient(config: config)
        let kubeClients = KubeClientPool()
        let identityStore = PostgresIdentityStore(database: database)
        let bindingStore = PostgresBindingStore(database: database)
        let clusterStore = PostgresClusterStore(database: database)
        let healthStore = PostgresHealthStore(database: database)
        let sweeper = HealthSweeper(
            clusters: clusterStore, bindings: bindingStore, identities: identityStore, teams: PostgresTeamStore(database: database),
            health: healthStore, connector: kubeClients, azure: azure, logger: healthLogger)
        let identities = IdentityWorkflow(store: identityStore, azure: azure, bindings: bindingStore, logger: workerLogger)
        let bindings = BindingWorkflow(bindings: bindingStore, identities: identityStore, clusters: clusterStore, connector: kubeClients,
                                       logger: workerLogger)
        var handlers: [String: any JobHandler] = [:]
        for kind in IdentityJobs.all { handlers[kind] = identities }
        for kind in BindingJobs.all { handlers[kind] = bindings }
        handlers[ClusterJobs.check] = ClusterCheckWorkflow(clusters: clusterStore, connector: kubeClients)
        handlers[HealthService.checkJob] = HealthCheckHandler(sweeper: sweeper)
        let runner = JobRunner(queue: PostgresJobQueue(database: database), handlers: handlers, workers: config.workers, logger: workerLogger)
        let scheduler = HealthScheduler(sweeper: sweeper, clusters: clusterStore, health: healthStore, interval: .seconds(config.healthInterval),
                                        historyDays: config.healthHistoryDays, logger: healthLogger)
        // The pool first: it is shut down last, after the workers and sweeps that use it.
        return [kubeClients, runner, scheduler]
    }

    /// The Azure client the configuration describes.
    static func azureClient(config: PodidConfig) throws -> ARMClient {
        let credential = try CredentialChain.credential(
            .init(tenantId: config.azureTenantId, clientId: config.azureClientId, clientSecret: config.azureClientSecret,
                  clientSecretFile: config.azureClientSecretFile, federatedTokenFile: config.azureFederatedTokenFile,
                  authorityHost: config.azureAuthorityHost, imdsEndpoint: config.azureIMDSEndpoint),
            client: HTTPClient.shared)
        return ARMClient(client: armHTTPClient, endpoint: config.azureARMEndpoint, credential: CachedCredential(credential),
                         identityWritesPerSecond: config.azureIdentityWritesPerSecond)
    }

    /// The HTTP client of Azure Resource Manager calls, for the life of the process (as
    /// `HTTPClient.shared`). Its pool allows as many connections to ARM as podid has workers at
    /// most (256), plus the health sweeps': with AsyncHTTPClient's default of 8 per host, 16
    /// workers took turns on 8 connections and provisioning ran at half speed.
    static let armHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 272
        configuration.connectionPool.idleTimeout = .seconds(60)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// `podid worker`: the workers alone, with their PostgreSQL client, and no HTTP server.
    public static func workerServices(config: PodidConfig, logger: Logger) throws -> [any Service] {
        let databaseURL = try config.requireDatabaseURL()
        var dbLogger = logger
        dbLogger[metadataKey: "component"] = "postgres"
        let client = PostgresClient(configuration: databaseURL.clientConfiguration(), backgroundLogger: dbLogger)
        let database = PostgresDatabase(client: client, logger: dbLogger)
        var config = config
        config.workers = max(config.workers, 1)
        return [client] + (try backgroundServices(config: config, database: database, logger: logger))
    }

    /// Runs `body` with a PostgreSQL client for `url` that runs only as long as `body` does (for
    /// one-shot commands such as `migrate`).
    public static func withClient<Result: Sendable>(
        _ url: DatabaseURL, logger: Logger, _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        // The body may lease a connection before run() has started, which PostgresNIO reports as a
        // warning on its background logger although the lease then waits and succeeds; keep only
        // errors there for these short-lived clients.
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: url.clientConfiguration(), backgroundLogger: background)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// Applies the pending migrations with the owning role and makes the runtime login role a member
    /// of `podid_runtime`.
    public static func migrate(config: PodidConfig, logger: Logger) async throws -> [Migration] {
        let owner = try config.requireMigrationDatabaseURL()
        let runtimeUser = config.databaseURL.flatMap { try? DatabaseURL($0).username }
        return try await withClient(owner, logger: logger) { client in
            try await MigrationRunner(client: client, migrations: try Migration.bundled(), logger: logger)
                .apply(runtimeUser: runtimeUser)
        }
    }

    /// Throws `MigrationError.pending` (or a mismatch) unless the database's migrations are current.
    public static func verifyMigrations(url: DatabaseURL, logger: Logger) async throws {
        try await withClient(url, logger: logger) { client in
            try await MigrationRunner(client: client, migrations: try Migration.bundled(), logger: logger).verify()
        }
    }

    /// One line per migration: version, state, file and when it was applied.
    public static func migrationStatus(config: PodidConfig, logger: Logger) async throws -> [String] {
        try await withClient(try config.requireMigrationDatabaseURL(), logger: logger) { client in
            try await MigrationRunner(client: client, migrations: try Migration.bundled(), logger: logger).status()
                .map { status in
                    let applied = status.appliedAt.map { " applied \(Timestamp.format($0))" } ?? ""
                    return "\(String(format: "%04d", status.version))  \(status.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))  \(status.fileName)\(applied)"
                }
        }
    }

    /// Registers (or updates) the simulated cluster as `local` for `podid dev`: a token connection to
    /// the Kubernetes simulator. Its connection check runs as a job, as for any cluster.
    public static func registerDevCluster(config: PodidConfig, apiServer: String, tokenFile: String, logger: Logger) async throws {
        let url = try config.requireDatabaseURL()
        try await withClient(url, logger: logger) { client in
            let store = PostgresClusterStore(database: Store.PostgresDatabase(client: client, logger: logger))
            let wanted = Cluster(name: "local", apiServer: apiServer, connection: .token(tokenFile: tokenFile, caFile: nil))
            let audit = { @Sendable (action: String) in
                AuditDraft(actor: "podid-dev", actorTeam: nil, action: action, outcome: .success, team: nil, resourceType: "cluster",
                           resourceName: "local", requestId: nil, details: ["apiServer": .string(apiServer)])
            }
            if let current = try await store.cluster(named: "local") {
                guard current.apiServer != wanted.apiServer || current.connection != wanted.connection else { return }
                var updated = current
                updated.apiServer = wanted.apiServer
                updated.connection = wanted.connection
                _ = try await store.replaceCluster(updated, ifVersion: current.version, job: ClusterJobs.checking(updated, requestId: nil)) { _ in
                    audit("cluster.updated")
                }
            } else {
                _ = try await store.insertCluster(wanted, job: ClusterJobs.checking(wanted, requestId: nil), audit: audit("cluster.created"))
            }
        }
    }

    /// Prunes sealed audit events before `before` as the owning role; how many went.
    public static func pruneAudit(before: Date, config: PodidConfig, logger: Logger) async throws -> Int64 {
        try await withClient(try config.requireMigrationDatabaseURL(), logger: logger) { client in
            try await PostgresAuditLog.prune(before: before, client: client, logger: logger)
        }
    }

    /// Start-up warnings about the configuration.
    public static func warnings(config: PodidConfig) -> [String] {
        var warnings: [String] = []
        if config.migrationDatabaseURL == nil || config.migrationDatabaseURL == config.databaseURL {
            warnings.append("PODID_MIGRATION_DATABASE_URL is unset or the same as PODID_DATABASE_URL: the server runs as the owning role, so the audit log's append-only guarantee is not enforced by the database")
        }
        return warnings
    }
}

/// Seals committed audit events into the hash chain, a few times a second. Several replicas may run
/// it: an advisory lock lets one seal at a time.
public struct AuditSealer: Service {
    let log: PostgresAuditLog
    let logger: Logger
    let interval: Duration

    /// Creates the sealer.
    public init(log: PostgresAuditLog, logger: Logger, interval: Duration = .milliseconds(200)) {
        self.log = log
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // Seal everything pending, in batches, before resting.
                while try await log.sealPending() > 0 {}
            } catch {
                logger.warning("sealing audit events failed; retrying", metadata: ["error": "\(PostgresErrors.serverMessage(error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        // A last pass, so that what was written before shutdown is sealed now rather than by the next start.
        _ = try? await log.sealPending()
    }
}

/// Deletes idempotency keys older than 24 hours, every ten minutes.
struct IdempotencyPruner: Service {
    let store: PostgresIdempotencyStore
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let pruned = try await store.prune()
                if pruned > 0 { logger.debug("pruned idempotency keys", metadata: ["count": "\(pruned)"]) }
            } catch {
                logger.warning("pruning idempotency keys failed", metadata: ["error": "\(PostgresErrors.serverMessage(error))"])
            }
            try? await gracefulShutdownAwareSleep(.seconds(600))
        }
    }

    private func gracefulShutdownAwareSleep(_ duration: Duration) async throws {
        try await cancelWhenGracefulShutdown {
            try await Task.sleep(for: duration)
        }
    }
}
