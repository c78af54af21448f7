import App
import Core
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import Metrics
import Prometheus
import Simulators
import Testing

let devSubscription = "00000000-0000-0000-0000-000000000000"
let devGroupScope = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev"

/// A team policy that allows the dev subscription and resource group, Reader and Storage Blob Data
/// Reader on the resource group, and `max` identities.
func devPolicy(max: Int = 10) -> String {
    #"{"subscriptions":["\#(devSubscription)"],"resourceGroups":["podid-dev"],"grants":[{"role":"Reader","scopePrefix":"\#(devGroupScope)"},{"role":"Storage Blob Data Reader","scopePrefix":"\#(devGroupScope)"}],"clusters":[],"namespaces":[],"maxIdentities":\#(max)}"#
}

/// An identity body in the dev resource group.
func identityBody(_ name: String, grants: [String] = ["Reader"], extra: String = "") -> String {
    let grantList = grants.map { #"{"role":"\#($0)","scope":"\#(devGroupScope)"}"# }.joined(separator: ",")
    return #"{"name":"\#(name)","subscriptionId":"\#(devSubscription)","resourceGroup":"podid-dev","location":"westeurope","grants":[\#(grantList)]\#(extra)}"#
}

/// Where the tests' podid reads cluster credentials (PODID_CLUSTER_CREDENTIALS_DIR): the temporary
/// directory the tests write token files into, the kubeconfig directory the API tests name, and
/// the directory of the real API server's CA (`make conformance`).
let testCredentialDirectories = [NSTemporaryDirectory(), "/etc/podid"]
    + [ProcessInfo.processInfo.environment["PODID_TEST_KUBE_CA_FILE"]].compactMap { $0 }.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }

/// The AzureIdentity podid writes for `identity` of `team`.
func aiName(_ team: String, _ identity: String) -> String { KubeNames.azureIdentity(team: team, identity: identity) }

/// The AzureIdentityBinding podid writes for `binding`.
func aibName(_ team: String, _ identity: String, _ binding: String) -> String {
    KubeNames.azureIdentityBinding(team: team, identity: identity, binding: binding)
}

/// Runs `body` against a podid app whose workers talk to in-process simulators.
func withWorkerApp<R: Sendable>(
    workers: Int = 4, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), live: Bool = false, configureAzure: @Sendable (inout AzureSimulator.Settings) -> Void = { $0.principalNotFoundSeconds = 0.5 },
    configure: @Sendable (inout PodidConfig) -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol, TestDatabase, RunningSimulators) async throws -> R
) async throws -> R {
    try await withSimulators { sims in
        sims.azure.configure(configureAzure)
        let database = try await TestDatabase.make()
        var config = PodidConfig()
        config.databaseConnectWait = TestDatabase.connectionWaitSeconds
        config.clusterCredentialDirectories = testCredentialDirectories
        config.databaseURL = database.runtimeURLText
        config.migrationDatabaseURL = database.ownerURLText
        config.adminToken = testAdminToken
        config.httpPort = 0
        config.workers = workers
        config.azureARMEndpoint = sims.azureURL
        config.azureAuthorityHost = sims.azureURL
        config.azureIMDSEndpoint = sims.azureURL
        config.azureTenantId = sims.simulators.seed.tenantId
        config.azureClientId = sims.azure.clientId
        config.azureClientSecret = sims.azure.clientSecret
        config.azureIdentityWritesPerSecond = 50
        // Tests poll as fast as they like; the attack tests that need the limits set them.
        config.rateLimitPerToken = 0
        config.rateLimitPerTeam = 0
        // The test client keeps one connection for a whole test: no idle timeout unless a test sets one.
        config.httpIdleTimeout = 0
        config.healthCheckSpacing = 0
        configure(&config)
        var logger = Logger(label: "podid.test")
        logger.logLevel = ProcessInfo.processInfo.environment["PODID_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let app = try PodidApplication.build(config: config, registry: registry, logger: logger)
        do {
            let result = try await app.test(live ? .live : .router) { client in
                try await body(client, database, sims)
            }
            await database.drop()
            return result
        } catch {
            await database.drop()
            throw error
        }
    }
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(30), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

/// Fetches a value every 100 ms until `done` holds or `timeout` passes; returns the last one.
func poll<T: Sendable>(timeout: Duration = .seconds(30), _ fetch: @Sendable () async throws -> T,
                       until done: (T) -> Bool) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var value = try await fetch()
    while !done(value) && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(100))
        value = try await fetch()
    }
    return value
}

extension TestClientProtocol {
    /// Waits until the identity reaches `state` (or the timeout), returning its last JSON.
    func waitForIdentity(_ team: String, _ name: String, state: String, token: String = testAdminToken,
                         timeout: Duration = .seconds(40)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: TestResponse
        repeat {
            last = try await call(.get, "/v1/teams/\(team)/identities/\(name)", token: token)
            if last.json["state"] as? String == state { return last.json }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        Issue.record("identity \(team)/\(name) did not reach \(state): \(last.status) \(last.body)")
        return last.json
    }

    /// Waits until the identity is gone (404).
    func waitForIdentityGone(_ team: String, _ name: String, timeout: Duration = .seconds(40)) async throws -> Bool {
        try await eventually(timeout: timeout) {
            try await call(.get, "/v1/teams/\(team)/identities/\(name)", token: testAdminToken).status == .notFound
        }
    }

    /// The jobs of one identity, newest first.
    func jobs(of team: String, _ name: String) async throws -> [[String: Any]] {
        let resource = "/v1/teams/\(team)/identities/\(name)".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return try await call(.get, "/v1/jobs?resource=\(resource)", token: testAdminToken).items
    }
}

extension RunningSimulators {
    /// The identities in the dev resource group, as the Azure simulator lists them.
    func azureIdentities() async throws -> [JSON] {
        let answer = try await send("GET", "\(azureURL)/subscriptions/\(devSubscription)/resourceGroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31")
        return answer.json["value"]?.array ?? []
    }

    /// The role assignments of `principalId` at or below the subscription.
    func roleAssignments(principalId: String) async throws -> [JSON] {
        let filter = "principalId eq '\(principalId)'".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let answer = try await send("GET", "\(azureURL)/subscriptions/\(devSubscription)/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=\(filter)")
        return answer.json["value"]?.array ?? []
    }

    /// Creates an identity directly in Azure (outside podid) with `tags`.
    func createAzureIdentity(_ name: String, tags: [String: String] = [:]) async throws -> JSON {
        let tagText = tags.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
        let answer = try await send(
            "PUT", "\(azureURL)/subscriptions/\(devSubscription)/resourceGroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)?api-version=2023-01-31",
            body: #"{"location":"westeurope","tags":{\#(tagText)}}"#)
        #expect(answer.status == 201, "creating \(name) in the simulator: \(answer.text)")
        return answer.json
    }
}

/// The registry swift-metrics reports to in this test process (as `main` sets it up in podid), for
/// tests of the job and Azure metrics. Other tests' counters land here too: assert on labels.
enum ProcessMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

extension TestClientProtocol {
    /// Registers the Kubernetes simulator as cluster `name` (a token connection; the token file
    /// lives in a fresh temporary directory).
    @discardableResult
    /// The cluster runs MIC in `cluster` mode marked `singleTeam` (the test's teams are one tenant)
    /// unless `extra` says otherwise.
    func registerSimCluster(_ sims: RunningSimulators, name: String = "local", extra: String = #","singleTeam":true"#) async throws -> TestResponse {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-kube-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokenFile = directory.appendingPathComponent("token")
        try "dev\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let response = try await call(.post, "/v1/clusters", token: testAdminToken, json: #"{"name":"\#(name)","apiServer":"\#(sims.kubeURL)","connection":{"mode":"token","tokenFile":"\#(tokenFile.path)"}\#(extra)}"#)
        #expect(response.status == .created, "registering cluster \(name): \(response.body)")
        return response
    }

    /// Waits until the binding reaches `state`, returning its last JSON.
    func waitForBinding(_ team: String, _ identity: String, _ name: String, state: String, timeout: Duration = .seconds(40)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: TestResponse
        repeat {
            last = try await call(.get, "/v1/teams/\(team)/identities/\(identity)/bindings/\(name)", token: testAdminToken)
            if last.json["state"] as? String == state { return last.json }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        Issue.record("binding \(team)/\(identity)/\(name) did not reach \(state): \(last.status) \(last.body)")
        return last.json
    }
}

/// A team policy that also allows cluster `local` and the namespaces given.
func bindingPolicy(namespaces: [String] = ["default"], clusters: [String] = ["local"]) -> String {
    devPolicy().replacingOccurrences(of: #""clusters":[],"namespaces":[]"#, with: #""clusters":[\#(clusters.map { "\"\($0)\"" }.joined(separator: ","))],"namespaces":[\#(namespaces.map { "\"\($0)\"" }.joined(separator: ","))]"#)
}

extension RunningSimulators {
    /// An object from the Kubernetes simulator, or nil on 404.
    func kubeObject(_ path: String) async throws -> JSON? {
        let answer = try await send("GET", "\(kubeURL)\(path)")
        return answer.status == 200 ? answer.json : nil
    }

    /// Creates a pod with labels in a namespace of the Kubernetes simulator.
    func createPod(_ name: String, namespace: String = "default", labels: [String: String]) async throws {
        let labelText = labels.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
        let answer = try await send("POST", "\(kubeURL)/api/v1/namespaces/\(namespace)/pods",
                                    body: #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","labels":{\#(labelText)}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}"#)
        #expect(answer.status == 201, "creating pod \(namespace)/\(name): \(answer.text)")
    }
}
