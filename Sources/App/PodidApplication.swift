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
        let pool = PostgresPool(client: client, logger: dbLogger, connectionWait: .seconds(config.databaseConnectWait),
                                denialWindow: TimeInterval(config.auditDenialWindow))
        let database = PostgresStore(pool: pool)

        // Exports read from a pool of their own, as many connections as exports may run at once.
        var exportConfiguration = databaseURL.clientConfiguration()
        exportConfiguration.options.maximumConnections = max(1, config.exportsMax)
        exportConfiguration.options.minimumConnections = 0
        let exportClient = PostgresClient(configuration: exportConfiguration, backgroundLogger: dbLogger)
        let exportPool = PostgresPool(client: exportClient, logger: dbLogger, connectionWait: .seconds(config.databaseConnectWait))
        let auditLog = PostgresAuditLog(database: pool, exports: exportPool, key: config.auditKey,
                                        checkpoints: try config.auditCheckpoints.map { try DirectoryCheckpoints(path: $0) })
        let idempotency = PostgresIdempotencyStore(database: pool)
        let healthStore = PostgresHealthStore(database: pool)
        let runner = MigrationRunner(client: client, migrations: try Migration.bundled(), logger: dbLogger)
        // Workers and health sweeps run where PODID_WORKERS says (0: the API only).
        let background = config.workers > 0 ? try Self.backgroundServices(config: config, pool: pool, logger: logger) : []

        let handler = APIHandler(
            teams: TeamService(database: database),
            tokens: TokenService(database: database, defaultExpiry: config.tokenDefaultExpiryDays > 0 ? TimeInterval(config.tokenDefaultExpiryDays) * 86_400 : nil),
            identities: IdentityService(database: database),
            clusters: ClusterService(database: database, credentials: CredentialDirectories(config.clusterCredentialDirectories)),
            bindings: BindingService(database: database),
            jobs: JobService(database: database),
            audit: AuditService(log: auditLog, audit: database.audit, denials: pool.denials,
                                streams: StreamSlots("audit streams", perToken: config.streamsPerToken, total: config.streamsMax),
                                exports: StreamSlots("audit exports", perToken: config.exportsPerToken, total: config.exportsMax),
                                exportDeadline: .seconds(config.exportTimeout)),
            health: HealthService(health: healthStore, database: database, requestedSweepSpacing: TimeInterval(config.healthCheckSpacing)),
            readiness: PostgresReadinessProbe(runner: runner),
            registry: registry)
        var httpLogger = logger
        httpLogger[metadataKey: "component"] = "http"
        let router = try Routes.router(
            handler: handler,
            authenticator: TokenAuthenticator(tokens: database.tokens, bootstrapAdminToken: config.adminToken,
                                              bootstrapTokenFile: config.adminTokenFile),
            idempotency: idempotency, registry: registry, metricsToken: config.metricsToken, rateLimiter: config.rateLimiter(),
            logger: httpLogger)

        // A connection that sends nothing for PODID_HTTP_IDLE_TIMEOUT seconds (between requests, or
        // while a request's head or body trickles in) is closed: slow clients cannot hold sockets.
        var app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: config.httpIdleTimeout > 0 ? .seconds(Int64(config.httpIdleTimeout)) : nil)),
            configuration: .init(address: .hostname(config.httpHost, port: config.httpPort), serverName: "podid"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? config.httpPort) },
            logger: httpLogger)
        let retention = Housekeeping.retention(jobs: PostgresJobQueue(database: pool), health: healthStore, idempotency: idempotency,
                                               audit: database.audit, jobRetentionDays: config.jobRetentionDays,
                                               healthHistoryDays: config.healthHistoryDays, logger: logger)
        app.addServices(client, exportClient, retention, Housekeeping.auditSealer(auditLog, logger: logger),
                        Housekeeping.denialFlusher(pool.denials, audit: database.audit, logger: logger,
                                                   every: .seconds(min(5, max(1, config.auditDenialWindow)))))
        app.addServices(background)
        app.addServices(services)
        return app
    }

    /// What runs in the background, sharing one Azure client (one token cache, one write pacer and
    /// one throttling pause per subscription) and one pool of Kubernetes clients: the job workers
    /// (`PODID_WORKERS`, every handler) and the health sweeps (`PODID_HEALTH_INTERVAL`). Built
    /// before anything runs, so that a bad Azure configuration stops start-up.
    public static func backgroundServices(config: PodidConfig, pool: PostgresPool, logger: Logger) throws -> [any Service] {
        var workerLogger = logger
        workerLogger[metadataKey: "component"] = "worker"
        var healthLogger = logger
        healthLogger[metadataKey: "component"] = "health"
        let azure = try Self.azureClient(config: config)
        let kubeClients = KubeClientPool(credentials: CredentialDirectories(config.clusterCredentialDirectories))
        let database = PostgresStore(pool: pool)
        let healthStore = PostgresHealthStore(database: pool)
        let sweeper = HealthSweeper(database: database, health: healthStore, connector: kubeClients, azure: azure, logger: healthLogger)
        let handlers = JobHandlers([
            IdentityWorkflow(database: database, azure: azure, logger: workerLogger),
            BindingWorkflow(database: database, connector: kubeClients, logger: workerLogger),
            ClusterCheckWorkflow(database: database, connector: kubeClients),
            HealthCheckHandler(sweeper: sweeper),
        ])
        precondition(handlers.unhandled.isEmpty, "job kinds without a handler: \(handlers.unhandled)")
        let runner = JobRunner(queue: PostgresJobQueue(database: pool), handlers: handlers, workers: config.workers, logger: workerLogger)
        let scheduler = HealthScheduler.service(sweeper: sweeper, database: database, interval: .seconds(config.healthInterval), logger: healthLogger)
        let renameLogger = workerLogger
        let renames = Housekeeping.once("queueing the renaming of Kubernetes objects", logger: workerLogger) {
            let queued = try await BindingService.queueRenames(in: database)
            if queued > 0 { renameLogger.notice("queued bindings to move their objects to the current names", metadata: ["count": "\(queued)"]) }
        }
        // The pool first: it is shut down last, after the workers and sweeps that use it.
        return [kubeClients, runner, scheduler, renames]
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
        let pool = PostgresPool(client: client, logger: dbLogger, connectionWait: .seconds(config.databaseConnectWait))
        var config = config
        config.workers = max(config.workers, 1)
        return [client] + (try backgroundServices(config: config, pool: pool, logger: logger))
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
    /// the Kubernetes simulator, in the simulated MIC's mode (`PODID_SIM_MIC_MODE`, namespaced unless set). Its connection check runs as a job, as for any cluster.
    public static func registerDevCluster(config: PodidConfig, apiServer: String, tokenFile: String, logger: Logger) async throws {
        let micMode = MICMode(rawValue: config.simMicMode) ?? .namespaced
        let url = try config.requireDatabaseURL()
        try await withClient(url, logger: logger) { client in
            let database = PostgresStore(pool: PostgresPool(client: client, logger: logger, connectionWait: .seconds(config.databaseConnectWait)))
            let connection = ClusterConnection.token(tokenFile: tokenFile, caFile: nil)
            let audit = { @Sendable (action: String) in
                AuditDraft(actor: "podid-dev", actorTeam: nil, action: action, outcome: .success, team: nil, resourceType: "cluster",
                           resourceName: "local", requestId: nil, details: ["apiServer": .string(apiServer)])
            }
            try await database.transaction { tx in
                if var current = try await tx.clusters.get("local", lock: .update) {
                    guard current.apiServer != apiServer || current.connection != connection || current.micMode != micMode else { return }
                    current.apiServer = apiServer
                    current.connection = connection
                    current.micMode = micMode
                    try await ClusterSharing.checkCluster(current, field: "PODID_SIM_MIC_MODE", in: tx)
                    current.version += 1
                    let stored = try await tx.clusters.update(current)
                    try await tx.enqueue(ClusterCheck.job(stored.name, requestId: nil), audited: audit("cluster.updated"))
                } else {
                    let cluster = Cluster(name: "local", apiServer: apiServer, connection: connection, micMode: micMode)
                    try await ClusterSharing.checkCluster(cluster, field: "PODID_SIM_MIC_MODE", in: tx)
                    let stored = try await tx.clusters.insert(cluster)
                    try await tx.enqueue(ClusterCheck.job(stored.name, requestId: nil), audited: audit("cluster.created"))
                }
            }
        }
    }

    /// A warning when PODID_DATABASE_URL's role may change the audit history itself (the owner,
    /// or a superuser): then the database does not enforce that podid only appends to it.
    public static func roleWarning(config: PodidConfig, logger: Logger) async -> String? {
        guard let url = try? config.requireDatabaseURL() else { return nil }
        let writes = try? await withClient(url, logger: logger) { client in
            try await client.query("SELECT has_table_privilege('audit_events', 'UPDATE') OR has_table_privilege('audit_seals', 'INSERT')",
                                   logger: logger).collect().first?.decode(Bool.self)
        }
        guard writes == true else { return nil }
        return "PODID_DATABASE_URL's role may change the audit history directly (it owns the tables, or is a superuser): run podid serve as the runtime role (podid_runtime), and keep the owner's URL for podid migrate and the migration job"
    }

    /// Prunes sealed audit events before `before` as the owning role; how many went.
    public static func pruneAudit(before: Date, config: PodidConfig, logger: Logger) async throws -> Int64 {
        try await withClient(try config.requireMigrationDatabaseURL(), logger: logger) { client in
            try await PostgresAuditLog.prune(before: before, client: client, key: config.auditKey, logger: logger)
        }
    }

    /// Start-up warnings about the configuration.
    public static func warnings(config: PodidConfig) -> [String] {
        var warnings: [String] = []
        if config.migrationDatabaseURL != nil && config.migrationDatabaseURL == config.databaseURL {
            warnings.append("PODID_MIGRATION_DATABASE_URL is the same as PODID_DATABASE_URL: the server runs as the owning role, so the audit log's append-only guarantee is not enforced by the database")
        }
        if config.auditKey == nil {
            warnings.append("PODID_AUDIT_KEY_FILE is unset: the audit chain is unkeyed SHA-256, which whoever holds the database's owner role can recompute after rewriting events; set a key (and PODID_AUDIT_CHECKPOINTS) to make it tamper-evident against them")
        }
        return warnings
    }
}
