import App
import ArgumentParser
import Core
import Foundation
import Logging
import Simulators

/// `podid dev`: everything on one machine — a private PostgreSQL (unless PODID_DATABASE_URL is set),
/// migrations, a bootstrap admin token, and the API.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run podid for development: private PostgreSQL, migrations, admin token, API.",
        discussion: "Ctrl-C or SIGTERM stops the API and the private PostgreSQL. A second run reuses the data in PODID_DATA_DIR.")

    func run() async throws {
        var (config, logger, registry) = try Bootstrap.configure()
        PrivateDirectory.restrictNewFiles()
        try PrivateDirectory.prepare(config.dataDir)
        // Health sweeps every 10 s in dev (60 s by default elsewhere), so that changes show soon.
        if ProcessInfo.processInfo.environment["PODID_HEALTH_INTERVAL"] == nil { config.healthInterval = 10 }
        var local: LocalPostgres?
        if config.databaseURL == nil {
            let postgres = LocalPostgres(dataDir: config.dataDir, logger: logger)
            let instance = try postgres.start()
            config.databaseURL = instance.databaseURL
            config.migrationDatabaseURL = instance.migrationDatabaseURL
            local = postgres
        }
        defer { local?.stop() }

        let applied = try await PodidApplication.migrate(config: config, logger: logger)
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["files": "\(applied.map(\.fileName))"]) }
        // The audit chain is keyed in dev too, with checkpoints beside the data: what verify
        // reports here is what it reports in production.
        if config.auditKey == nil {
            let keyFile = URL(fileURLWithPath: config.dataDir).appendingPathComponent("audit.key")
            if !FileManager.default.fileExists(atPath: keyFile.path) {
                var bytes = [UInt8](repeating: 0, count: 32)
                for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
                try Data(bytes.map { String(format: "%02x", $0) }.joined().utf8).write(to: keyFile)
            }
            config.auditKey = try AuditKey(fileContent: try Data(contentsOf: keyFile))
            if config.auditCheckpoints == nil {
                config.auditCheckpoints = URL(fileURLWithPath: config.dataDir).appendingPathComponent("audit-checkpoints").path
            }
        }
        let tokenFile = URL(fileURLWithPath: config.dataDir).appendingPathComponent("admin-token")
        let tokenFromFile = config.adminToken == nil
        if tokenFromFile { config.adminToken = try DevAdminToken.loadOrCreate(at: tokenFile) }

        var kubeSettings = KubeSimulator.Settings()
        kubeSettings.micMode = config.simMicMode
        let simulators = try Simulators(dataDirectory: URL(fileURLWithPath: config.dataDir), kubeSettings: kubeSettings)
        // Every Azure endpoint podid would call, IMDS included, goes to the simulator unless set.
        let environment = ProcessInfo.processInfo.environment
        let simAzure = "http://\(config.simHost == "0.0.0.0" ? "127.0.0.1" : config.simHost):\(config.simAzurePort)"
        if environment["PODID_AZURE_ARM_ENDPOINT"] == nil { config.azureARMEndpoint = simAzure }
        if environment["PODID_AZURE_AUTHORITY_HOST"] == nil && environment["AZURE_AUTHORITY_HOST"] == nil { config.azureAuthorityHost = simAzure }
        if environment["PODID_AZURE_IMDS_ENDPOINT"] == nil { config.azureIMDSEndpoint = simAzure }
        if config.azureTenantId == nil { config.azureTenantId = simulators.seed.tenantId }
        if config.azureClientId == nil && config.azureClientSecret == nil && config.azureClientSecretFile == nil {
            config.azureClientId = simulators.azure.clientId
            config.azureClientSecret = simulators.azure.clientSecret
        }
        // The simulated cluster, registered as `local` (the simulator accepts the token `dev`), with
        // its token file in the data directory, where podid dev reads cluster credentials from
        // unless PODID_CLUSTER_CREDENTIALS_DIR says otherwise.
        let kubeTokenFile = URL(fileURLWithPath: config.dataDir).appendingPathComponent("sim-kube-token")
        if config.clusterCredentialDirectories.isEmpty {
            config.clusterCredentialDirectories = [URL(fileURLWithPath: config.dataDir).standardizedFileURL.path]
        } else if !CredentialDirectories(config.clusterCredentialDirectories).allows(kubeTokenFile.standardizedFileURL.path) {
            config.clusterCredentialDirectories.append(URL(fileURLWithPath: config.dataDir).standardizedFileURL.path)
        }
        try "dev\n".write(to: kubeTokenFile, atomically: true, encoding: .utf8)
        let simKube = "http://\(config.simHost == "0.0.0.0" ? "127.0.0.1" : config.simHost):\(config.simKubePort)"
        try await PodidApplication.registerDevCluster(config: config, apiServer: simKube, tokenFile: kubeTokenFile.standardizedFileURL.path,
                                                      logger: logger)
        let simPorts = SimPorts()
        let simServices = simulators.services(
            host: config.simHost, azurePort: config.simAzurePort, kubePort: config.simKubePort, logger: logger
        ) { azurePort, kubePort in
            await simPorts.set(azure: azurePort, kube: kubePort)
        }
        let banner = DevBanner(config: config, tokenFile: tokenFromFile ? tokenFile : nil, local: local != nil, seed: simulators.seed)
        let simHost = config.simHost
        let app = try PodidApplication.build(config: config, registry: registry, logger: logger, services: simServices) { port in
            let (azurePort, kubePort) = await simPorts.wait()
            // Written at once, not when the buffer fills: scripts wait for this text.
            FileHandle.standardOutput.write(Data((banner.text(port: port, azurePort: azurePort, kubePort: kubePort)
                + SimBanner.text(simulators, host: simHost, azurePort: azurePort, kubePort: kubePort)).utf8))
        }
        try await app.runService()
    }
}

/// The simulators' ports, known once both listen.
actor SimPorts {
    var ports: (Int, Int)?
    var waiters: [CheckedContinuation<(Int, Int), Never>] = []

    func set(azure: Int, kube: Int) {
        ports = (azure, kube)
        for waiter in waiters { waiter.resume(returning: (azure, kube)) }
        waiters.removeAll()
    }

    func wait() async -> (Int, Int) {
        if let ports { return ports }
        return await withCheckedContinuation { waiters.append($0) }
    }
}

/// The dev admin token: generated once and kept (mode 0600) in `PODID_DATA_DIR/admin-token`.
enum DevAdminToken {
    static func loadOrCreate(at file: URL) throws -> String {
        if let existing = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           existing.count >= 32
        {
            return existing
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let token = "podid_" + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (token + "\n").write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        return token
    }
}

/// What `podid dev` prints once it listens: where things are, and a walk-through that works as
/// printed (a test runs it): a team with a policy, an identity with a grant, its job, and the
/// result in the Azure simulator.
struct DevBanner {
    let config: PodidConfig
    let tokenFile: URL?
    let local: Bool
    let seed: Simulators.Seed

    func text(port: Int, azurePort: Int, kubePort: Int) -> String {
        let host = config.httpHost == "0.0.0.0" ? "127.0.0.1" : config.httpHost
        let base = "http://\(host):\(port)"
        let simHost = config.simHost == "0.0.0.0" ? "127.0.0.1" : config.simHost
        let tokenLine = tokenFile.map { "export TOKEN=$(cat \($0.path))" } ?? "export TOKEN=\"$PODID_ADMIN_TOKEN\""
        let database = local
            ? "private PostgreSQL (URLs in \(config.dataDir)/postgres.env); stops with podid"
            : "PODID_DATABASE_URL"
        let group = "/subscriptions/\(seed.subscriptionId)/resourceGroups/\(seed.resourceGroup)"
        let policy = #"{"name":"payments","displayName":"Payments","policy":{"subscriptions":["\#(seed.subscriptionId)"],"resourceGroups":["\#(seed.resourceGroup)"],"grants":[{"role":"Reader","scopePrefix":"\#(group)"}],"clusters":["local"],"namespaces":["payments"],"maxIdentities":10}}"#
        let identity = #"{"name":"orders-api","subscriptionId":"\#(seed.subscriptionId)","resourceGroup":"\#(seed.resourceGroup)","location":"\#(seed.location)","grants":[{"role":"Reader","scope":"\#(group)"}]}"#
        return """

            podid dev is running
              API       \(base)   (contract: \(base)/openapi.yaml)
              database  \(database)
              workers   \(config.workers), creating identities in the Azure simulator; health sweeps every \(config.healthInterval) s
              admin     token printed below\(tokenFile.map { ", kept in \($0.path)" } ?? " (PODID_ADMIN_TOKEN)")

              admin token: \(config.adminToken ?? "")

            Try it: a team, an identity with a grant, a binding in cluster local, a deployment whose pods carry its label, their assignments.
              \(tokenLine)
              curl -s -X POST \(base)/v1/teams -H "Authorization: Bearer $TOKEN" \\
                -H 'Content-Type: application/json' -d '\(policy)'
              curl -s -X POST \(base)/v1/teams/payments/identities -H "Authorization: Bearer $TOKEN" \\
                -H 'Content-Type: application/json' -d '\(identity)'
              sleep 5   # a job creates it in Azure: state pending -> provisioning -> ready (GET again until ready)
              curl -s \(base)/v1/teams/payments/identities/orders-api -H "Authorization: Bearer $TOKEN"
              curl -s '\(base)/v1/jobs?team=payments' -H "Authorization: Bearer $TOKEN"
              curl -s 'http://\(simHost):\(azurePort)\(group)/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31' -H 'Authorization: Bearer dev'
              kubectl --server http://\(simHost):\(kubePort) create namespace payments
              curl -s -X POST \(base)/v1/teams/payments/identities/orders-api/bindings -H "Authorization: Bearer $TOKEN" \\
                -H 'Content-Type: application/json' -d '{"name":"api","cluster":"local","selector":"payments-api"}'
              kubectl --server http://\(simHost):\(kubePort) create deployment orders-api --image=nginx --replicas=2 -n payments
              kubectl --server http://\(simHost):\(kubePort) patch deployment orders-api -n payments \\
                -p '{"spec":{"template":{"metadata":{"labels":{"aadpodidbinding":"payments-api"}}}}}'
              kubectl --server http://\(simHost):\(kubePort) rollout status deployment/orders-api -n payments
              sleep 3   # a job applies the AzureIdentity and AzureIdentityBinding in payments (local runs MIC namespaced); the simulated MIC assigns the pods
              curl -s \(base)/v1/teams/payments/identities/orders-api/bindings/api -H "Authorization: Bearer $TOKEN"
              kubectl --server http://\(simHost):\(kubePort) get azureassignedidentities -A -o yaml
              curl -s -X POST \(base)/v1/teams/payments/identities/orders-api/bindings/api/health -H "Authorization: Bearer $TOKEN" > /dev/null
              sleep 2   # a health sweep of the cluster, now: findings and hints per binding
              curl -s \(base)/v1/teams/payments/identities/orders-api/bindings/api/health -H "Authorization: Bearer $TOKEN"
              curl -s \(base)/v1/teams/payments/identities/orders-api/manifests -H "Authorization: Bearer $TOKEN"

            Ctrl-C stops podid\(local ? " and its PostgreSQL" : "").

            """
    }
}
