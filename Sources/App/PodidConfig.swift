import Core
import Foundation
import Logging

/// A configuration value that stops start-up, naming the variable.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The environment variable at fault.
    public var variable: String
    /// What is wrong and what is expected.
    public var message: String

    public var description: String { "\(variable): \(message)" }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// Human-readable lines.
    case text
    /// One JSON object per line.
    case json
}

/// podid's typed configuration, read once at start-up from `PODID_*` environment variables.
public struct PodidConfig: Sendable {
    /// `PODID_HTTP_HOST`: the address the API listens on.
    public var httpHost = "127.0.0.1"
    /// `PODID_HTTP_PORT`: the API's port (0 picks a free one).
    public var httpPort = 8080
    /// `PODID_LOG_LEVEL`: trace, debug, info, notice, warning, error or critical.
    public var logLevel: Logger.Level = .info
    /// `PODID_LOG_FORMAT`: text or json.
    public var logFormat: LogFormat = .text
    /// `PODID_ADMIN_TOKEN`: a bootstrap admin token (at least 32 characters). Secret.
    public var adminToken: String?
    /// `PODID_ADMIN_TOKEN_FILE`: a file of bootstrap admin tokens, one per line, read again within a
    /// second of a change, so that the token rotates without a restart (new line in, old line out).
    public var adminTokenFile: String?
    /// `PODID_METRICS_TOKEN`: when set, `GET /metrics` answers only with `Authorization: Bearer`
    /// and this token (32 to 512 visible ASCII characters). Secret.
    public var metricsToken: String?
    /// `PODID_TOKEN_DEFAULT_EXPIRY_DAYS`: the expiry of a new token created without `expiresAt`
    /// (0: such tokens never expire).
    public var tokenDefaultExpiryDays = 90
    /// `PODID_RATE_LIMIT_PER_TOKEN`: requests per second one token may send, with bursts of ten
    /// seconds' worth (0: no limit).
    public var rateLimitPerToken = 100.0
    /// `PODID_RATE_LIMIT_PER_TEAM`: requests per second all of one team's tokens together may send,
    /// with bursts of ten seconds' worth (0: no limit).
    public var rateLimitPerTeam = 200.0
    /// `PODID_WORKERS`: background job workers in `serve`.
    public var workers = 4
    /// `PODID_HEALTH_INTERVAL`: seconds between health sweeps of a cluster.
    public var healthInterval = 60
    /// `PODID_HEALTH_CHECK_SPACING`: the least seconds between a cluster's last sweep and one that
    /// `POST …/health` asks for (0: none).
    public var healthCheckSpacing = 10
    /// `PODID_AUDIT_DENIAL_WINDOW`: seconds over which a caller's repeated denials of one operation
    /// fold into one audit event (0: every denial is written).
    public var auditDenialWindow = 60
    /// `PODID_HEALTH_HISTORY_DAYS`: how long health status changes are kept.
    public var healthHistoryDays = 30
    /// `PODID_HTTP_IDLE_TIMEOUT`: seconds a connection may send nothing (between requests or within
    /// one) before it is closed; 0 turns it off.
    public var httpIdleTimeout = 60
    /// `PODID_STREAMS_PER_TOKEN`: audit streams one token may hold open at once (0: no limit).
    public var streamsPerToken = 4
    /// `PODID_STREAMS_MAX`: audit streams the process serves at once (0: no limit).
    public var streamsMax = 200
    /// `PODID_EXPORTS_PER_TOKEN`: audit exports one token may run at once (0: no limit).
    public var exportsPerToken = 2
    /// `PODID_EXPORTS_MAX`: audit exports the process runs at once; also the size of their own
    /// connection pool.
    public var exportsMax = 4
    /// `PODID_EXPORT_TIMEOUT`: seconds an export may take before it is cut off.
    public var exportTimeout = 600
    /// `PODID_AUDIT_KEY_FILE`: the audit chain's key (at least 32 bytes), kept outside PostgreSQL.
    public var auditKey: AuditKey?
    /// `PODID_AUDIT_CHECKPOINTS`: a directory (a volume every replica shares) for signed checkpoints
    /// of the audit chain's head.
    public var auditCheckpoints: String?
    /// `PODID_JOB_RETENTION_DAYS`: how long finished jobs (succeeded, failed, cancelled) are kept.
    public var jobRetentionDays = 30
    /// `PODID_AUDIT_RETENTION_DAYS`: how many days `podid db prune-audit` keeps by default (unset:
    /// keep forever).
    public var auditRetentionDays: Int?
    /// `PODID_DATABASE_CONNECT_WAIT`: seconds a request waits for a database connection before
    /// podid answers 503.
    public var databaseConnectWait = 5
    /// `PODID_DATABASE_URL`: the runtime role's connection URL. Secret (holds a password).
    public var databaseURL: String?
    /// `PODID_MIGRATION_DATABASE_URL`: the owning role's URL for migrations; defaults to `databaseURL`. Secret.
    public var migrationDatabaseURL: String?
    /// `PODID_CLUSTER_CREDENTIALS_DIR`: the directories (`:`-separated, absolute) podid reads
    /// cluster credential files from; none by default (`podid dev`: its data directory).
    public var clusterCredentialDirectories: [String] = []
    /// `PODID_DATA_DIR`: where `podid dev` keeps its PostgreSQL, admin token and simulator state.
    public var dataDir = ".podid"
    /// `PODID_SIM_HOST`: the address the simulators listen on.
    public var simHost = "127.0.0.1"
    /// `PODID_SIM_AZURE_PORT`: the Azure simulator's port.
    public var simAzurePort = 8081
    /// `PODID_SIM_KUBE_PORT`: the Kubernetes simulator's port.
    public var simKubePort = 8082
    /// `PODID_SIM_MIC_MODE`: `namespaced` (the simulated MIC matches only pods in the binding's
    /// namespace, MIC's --forceNamespaced: what a cluster that teams share runs) or `cluster` (pods
    /// in every namespace). `podid dev` registers `local` in the same mode.
    public var simMicMode = "namespaced"
    /// `PODID_AZURE_TENANT_ID` (else `AZURE_TENANT_ID`): the tenant of podid's own Azure identity.
    public var azureTenantId: String?
    /// `PODID_AZURE_CLIENT_ID` (else `AZURE_CLIENT_ID`): podid's own client id.
    public var azureClientId: String?
    /// `PODID_AZURE_CLIENT_SECRET`: a client secret. Secret.
    public var azureClientSecret: String?
    /// `PODID_AZURE_CLIENT_SECRET_FILE`: a file holding the client secret.
    public var azureClientSecretFile: String?
    /// `AZURE_FEDERATED_TOKEN_FILE`: the projected service-account token the workload-identity
    /// webhook injects.
    public var azureFederatedTokenFile: String?
    /// `PODID_AZURE_AUTHORITY_HOST` (else `AZURE_AUTHORITY_HOST`): the Entra endpoint.
    public var azureAuthorityHost = "https://login.microsoftonline.com"
    /// `PODID_AZURE_ARM_ENDPOINT`: Azure Resource Manager.
    public var azureARMEndpoint = "https://management.azure.com"
    /// `PODID_AZURE_IMDS_ENDPOINT`: the instance metadata service.
    public var azureIMDSEndpoint = "http://169.254.169.254"
    /// `PODID_AZURE_IDENTITY_WRITES_PER_SECOND`: identity writes per second per subscription.
    public var azureIdentityWritesPerSecond = 2.0

    /// Every variable this type reads, for the configuration reference.
    public static let variables = [
        "PODID_HTTP_HOST", "PODID_HTTP_PORT", "PODID_LOG_LEVEL", "PODID_LOG_FORMAT", "PODID_ADMIN_TOKEN",
        "PODID_ADMIN_TOKEN_FILE", "PODID_METRICS_TOKEN", "PODID_TOKEN_DEFAULT_EXPIRY_DAYS",
        "PODID_RATE_LIMIT_PER_TOKEN", "PODID_RATE_LIMIT_PER_TEAM", "PODID_HEALTH_CHECK_SPACING", "PODID_AUDIT_DENIAL_WINDOW", "PODID_WORKERS", "PODID_HEALTH_INTERVAL", "PODID_AUDIT_RETENTION_DAYS", "PODID_HEALTH_HISTORY_DAYS", "PODID_DATABASE_URL", "PODID_MIGRATION_DATABASE_URL",
        "PODID_DATABASE_CONNECT_WAIT", "PODID_CLUSTER_CREDENTIALS_DIR",
        "PODID_DATA_DIR", "PODID_SIM_HOST", "PODID_SIM_AZURE_PORT", "PODID_SIM_KUBE_PORT", "PODID_SIM_MIC_MODE",
        "PODID_AZURE_TENANT_ID", "PODID_AZURE_CLIENT_ID", "PODID_AZURE_CLIENT_SECRET", "PODID_AZURE_CLIENT_SECRET_FILE",
        "PODID_AZURE_AUTHORITY_HOST", "PODID_AZURE_ARM_ENDPOINT", "PODID_AZURE_IMDS_ENDPOINT",
        "PODID_AZURE_IDENTITY_WRITES_PER_SECOND", "PODID_JOB_RETENTION_DAYS", "PODID_HTTP_IDLE_TIMEOUT", "PODID_STREAMS_PER_TOKEN",
        "PODID_STREAMS_MAX", "PODID_EXPORTS_PER_TOKEN", "PODID_EXPORTS_MAX", "PODID_EXPORT_TIMEOUT", "PODID_AUDIT_KEY_FILE",
        "PODID_AUDIT_CHECKPOINTS",
    ]

    /// The defaults.
    public init() {}

    /// Reads the configuration from `environment`; a bad value throws a `ConfigError` naming it.
    public static func load(from environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> PodidConfig
    {
        var config = PodidConfig()
        func value(_ name: String) -> String? {
            guard let raw = environment[name] else { return nil }
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigError(variable: name, message: "must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
            }
            return number
        }
        if let host = value("PODID_HTTP_HOST") { config.httpHost = host }
        if let port = try integer("PODID_HTTP_PORT", 0...65535) { config.httpPort = port }
        if let level = value("PODID_LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigError(variable: "PODID_LOG_LEVEL", message: "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got '\(level)'")
            }
            config.logLevel = parsed
        }
        if let format = value("PODID_LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigError(variable: "PODID_LOG_FORMAT", message: "must be 'text' or 'json', got '\(format)'")
            }
            config.logFormat = parsed
        }
        for (name, keyPath) in [("PODID_ADMIN_TOKEN", \PodidConfig.adminToken), ("PODID_METRICS_TOKEN", \PodidConfig.metricsToken)]
            as [(String, WritableKeyPath<PodidConfig, String?>)]
        {
            guard let token = value(name) else { continue }
            guard BootstrapTokens.isValid(token) else {
                throw ConfigError(variable: name, message: "must be 32 to 512 visible ASCII characters (for example the output of `openssl rand -base64 32`)")
            }
            config[keyPath: keyPath] = token
        }
        if let file = value("PODID_ADMIN_TOKEN_FILE") {
            do {
                _ = try BootstrapTokens.read(file: file)
            } catch let error as BootstrapTokens.FileError {
                throw ConfigError(variable: "PODID_ADMIN_TOKEN_FILE", message: error.message)
            }
            config.adminTokenFile = file
        }
        if let file = value("PODID_AUDIT_KEY_FILE") {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError(variable: "PODID_AUDIT_KEY_FILE", message: "cannot read '\(file)': it must name a readable file holding the audit key")
            }
            do {
                config.auditKey = try AuditKey(fileContent: data)
            } catch let error as DomainError {
                throw ConfigError(variable: "PODID_AUDIT_KEY_FILE", message: error.detail)
            }
        }
        if let directory = value("PODID_AUDIT_CHECKPOINTS") {
            guard config.auditKey != nil else {
                throw ConfigError(variable: "PODID_AUDIT_CHECKPOINTS", message: "checkpoints are signed with the audit key: set PODID_AUDIT_KEY_FILE too")
            }
            config.auditCheckpoints = directory
        }
        if let days = try integer("PODID_TOKEN_DEFAULT_EXPIRY_DAYS", 0...3650) { config.tokenDefaultExpiryDays = days }
        for (name, keyPath) in [("PODID_RATE_LIMIT_PER_TOKEN", \PodidConfig.rateLimitPerToken),
                                ("PODID_RATE_LIMIT_PER_TEAM", \PodidConfig.rateLimitPerTeam)] as [(String, WritableKeyPath<PodidConfig, Double>)] {
            guard let text = value(name) else { continue }
            guard let rate = Double(text), rate >= 0, rate <= 1_000_000 else {
                throw ConfigError(variable: name, message: "must be requests per second, a number from 0 (no limit) to 1000000, got '\(text)'")
            }
            config[keyPath: keyPath] = rate
        }
        if let workers = try integer("PODID_WORKERS", 0...256) { config.workers = workers }
        if let spacing = try integer("PODID_HEALTH_CHECK_SPACING", 0...3600) { config.healthCheckSpacing = spacing }
        if let window = try integer("PODID_AUDIT_DENIAL_WINDOW", 0...3600) { config.auditDenialWindow = window }
        if let days = try integer("PODID_AUDIT_RETENTION_DAYS", 1...36_500) { config.auditRetentionDays = days }
        if let days = try integer("PODID_HEALTH_HISTORY_DAYS", 1...3650) { config.healthHistoryDays = days }
        if let days = try integer("PODID_JOB_RETENTION_DAYS", 1...3650) { config.jobRetentionDays = days }
        if let seconds = try integer("PODID_HTTP_IDLE_TIMEOUT", 0...3600) { config.httpIdleTimeout = seconds }
        if let count = try integer("PODID_STREAMS_PER_TOKEN", 0...10_000) { config.streamsPerToken = count }
        if let count = try integer("PODID_STREAMS_MAX", 0...100_000) { config.streamsMax = count }
        if let count = try integer("PODID_EXPORTS_PER_TOKEN", 0...100) { config.exportsPerToken = count }
        if let count = try integer("PODID_EXPORTS_MAX", 1...100) { config.exportsMax = count }
        if let seconds = try integer("PODID_EXPORT_TIMEOUT", 10...86_400) { config.exportTimeout = seconds }
        if let interval = try integer("PODID_HEALTH_INTERVAL", 5...86_400) { config.healthInterval = interval }
        if let wait = try integer("PODID_DATABASE_CONNECT_WAIT", 1...300) { config.databaseConnectWait = wait }
        for name in ["PODID_DATABASE_URL", "PODID_MIGRATION_DATABASE_URL"] {
            guard let url = value(name) else { continue }
            do {
                _ = try DatabaseURL(url)
            } catch let error as DatabaseURL.ParseError {
                throw ConfigError(variable: name, message: error.message)
            }
            if name == "PODID_DATABASE_URL" { config.databaseURL = url } else { config.migrationDatabaseURL = url }
        }
        if let dir = value("PODID_DATA_DIR") { config.dataDir = dir }
        if let dirs = value("PODID_CLUSTER_CREDENTIALS_DIR") {
            let list = dirs.split(separator: ":").map { String($0) }.filter { !$0.isEmpty }
            let clean = CredentialDirectories(list)
            guard !list.isEmpty, clean.paths.count == list.count else {
                throw ConfigError(variable: "PODID_CLUSTER_CREDENTIALS_DIR",
                                  message: "must be absolute directories separated by ':' (such as /etc/podid/clusters), without '.' or '..' segments, got '\(dirs)'")
            }
            config.clusterCredentialDirectories = clean.paths
        }
        if let host = value("PODID_SIM_HOST") { config.simHost = host }
        if let port = try integer("PODID_SIM_AZURE_PORT", 0...65535) { config.simAzurePort = port }
        if let port = try integer("PODID_SIM_KUBE_PORT", 0...65535) { config.simKubePort = port }

        if let mode = value("PODID_SIM_MIC_MODE") {
            guard ["cluster", "namespaced"].contains(mode) else {
                throw ConfigError(variable: "PODID_SIM_MIC_MODE", message: "must be 'cluster' or 'namespaced', got '\(mode)'")
            }
            config.simMicMode = mode
        }

        // Azure: podid's own variables first, then the ones the workload-identity webhook injects.
        config.azureTenantId = value("PODID_AZURE_TENANT_ID") ?? value("AZURE_TENANT_ID")
        config.azureClientId = value("PODID_AZURE_CLIENT_ID") ?? value("AZURE_CLIENT_ID")
        config.azureClientSecret = value("PODID_AZURE_CLIENT_SECRET")
        config.azureClientSecretFile = value("PODID_AZURE_CLIENT_SECRET_FILE")
        config.azureFederatedTokenFile = value("AZURE_FEDERATED_TOKEN_FILE")
        if let tenant = config.azureTenantId, !tenant.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) {
            throw ConfigError(variable: "PODID_AZURE_TENANT_ID", message: "must be a tenant id (a GUID) or a domain, got '\(tenant)'")
        }
        for (name, fallback, keyPath) in [
            ("PODID_AZURE_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST", \PodidConfig.azureAuthorityHost),
            ("PODID_AZURE_ARM_ENDPOINT", nil, \PodidConfig.azureARMEndpoint),
            ("PODID_AZURE_IMDS_ENDPOINT", nil, \PodidConfig.azureIMDSEndpoint),
        ] as [(String, String?, WritableKeyPath<PodidConfig, String>)] {
            guard let text = value(name) ?? fallback.flatMap(value) else { continue }
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
                throw ConfigError(variable: value(name) != nil ? name : fallback ?? name, message: "must be an http(s) URL, got '\(text)'")
            }
            config[keyPath: keyPath] = text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        if let text = value("PODID_AZURE_IDENTITY_WRITES_PER_SECOND") {
            guard let rate = Double(text), rate > 0, rate <= 1000 else {
                throw ConfigError(variable: "PODID_AZURE_IDENTITY_WRITES_PER_SECOND", message: "must be a number above 0 and at most 1000, got '\(text)'")
            }
            config.azureIdentityWritesPerSecond = rate
        }
        return config
    }

    /// The rate limiter of these settings: bursts of ten seconds' worth; 0 turns a limit off.
    public func rateLimiter() -> RateLimiter {
        func limit(_ rate: Double) -> RateLimit? {
            rate > 0 ? RateLimit(perSecond: rate, burst: max(1, Int((rate * 10).rounded(.up)))) : nil
        }
        return RateLimiter(perToken: limit(rateLimitPerToken), perTeam: limit(rateLimitPerTeam))
    }

    /// The runtime database URL, or an error naming the variable.
    public func requireDatabaseURL() throws -> DatabaseURL {
        guard let url = databaseURL else {
            throw ConfigError(variable: "PODID_DATABASE_URL", message: "is required: the runtime role's URL, such as postgres://podid_app:secret@db:5432/podid")
        }
        return try DatabaseURL(url)
    }

    /// The migration database URL (`PODID_MIGRATION_DATABASE_URL`, else `PODID_DATABASE_URL`).
    public func requireMigrationDatabaseURL() throws -> DatabaseURL {
        if let url = migrationDatabaseURL { return try DatabaseURL(url) }
        guard let url = databaseURL else {
            throw ConfigError(variable: "PODID_MIGRATION_DATABASE_URL", message: "is required (or PODID_DATABASE_URL): the owning role's URL, such as postgres://podid_owner:secret@db:5432/podid")
        }
        return try DatabaseURL(url)
    }
}
