@testable import Cloud
import Core
import Foundation
import HummingbirdTesting
import NIOHTTP1
import Testing

/// The Kubernetes API server a scenario runs against: the in-process simulator (always), or the
/// real kube-apiserver that `make conformance` starts with `scripts/kube-apiserver`, which exports
/// its address, CA and tokens as `PODID_TEST_KUBE_*`.
enum KubeTarget: String, Sendable, CustomTestStringConvertible {
    case simulator
    case apiServer

    /// The real API server's settings, when `make conformance` runs the suite.
    struct RealServer: Sendable {
        var server: String
        var caFile: String
        var adminToken: String
        var podidToken: String

        static let configured: RealServer? = {
            let environment = ProcessInfo.processInfo.environment
            guard let server = environment["PODID_TEST_KUBE_SERVER"], !server.isEmpty,
                  let caFile = environment["PODID_TEST_KUBE_CA_FILE"], let admin = environment["PODID_TEST_KUBE_ADMIN_TOKEN"],
                  let podid = environment["PODID_TEST_KUBE_TOKEN"]
            else { return nil }
            return RealServer(server: server, caFile: caFile, adminToken: admin, podidToken: podid)
        }()
    }

    /// The targets of this run: the simulator, and the real API server when one is configured.
    static var all: [KubeTarget] { RealServer.configured == nil ? [.simulator] : [.simulator, .apiServer] }

    var testDescription: String { self == .simulator ? "Kubernetes simulator" : "real kube-apiserver" }

    /// Whether MIC (and a kubelet) run: the simulator plays both; the real API server in the tests
    /// has neither, so pods stay Pending and nothing assigns identities.
    var hasMIC: Bool { self == .simulator }
}

/// One scenario's view of its Kubernetes target: how podid connects, and an admin client for
/// setting up and checking what podid did (on the simulator both use its token).
struct KubeEnvironment: Sendable {
    let target: KubeTarget
    let server: String
    let caFile: String?
    /// The token podid uses: on the real server a user bound by deploy/kubernetes/rbac.yaml.
    let podidToken: String
    let adminToken: String

    init(_ target: KubeTarget, sims: RunningSimulators) throws {
        self.target = target
        switch target {
        case .simulator:
            server = sims.kubeURL
            caFile = nil
            podidToken = "dev"
            adminToken = "dev"
        case .apiServer:
            guard let real = KubeTarget.RealServer.configured else {
                throw TestSetupError("no real API server configured (PODID_TEST_KUBE_SERVER); `make conformance` starts one")
            }
            server = real.server
            caFile = real.caFile
            podidToken = real.podidToken
            adminToken = real.adminToken
        }
    }

    func connection(token: String) throws -> KubeConnection {
        var ca: [UInt8]?
        if let caFile {
            guard let data = FileManager.default.contents(atPath: caFile) else { throw TestSetupError("cannot read \(caFile)") }
            ca = Array(data)
        }
        return KubeConnection(server: server, certificateAuthority: ca, auth: .token(token))
    }

    /// Runs `body` with a client that connects as podid does.
    func asPodid<R: Sendable>(pageSize: Int = 500, _ body: @Sendable (KubeClient) async throws -> R) async throws -> R {
        try await Self.with(try KubeClient(connection: try connection(token: podidToken), pageSize: pageSize), body)
    }

    /// Runs `body` with an admin client.
    func asAdmin<R: Sendable>(_ body: @Sendable (KubeClient) async throws -> R) async throws -> R {
        try await Self.with(try KubeClient(connection: try connection(token: adminToken)), body)
    }

    static func with<R: Sendable>(_ client: KubeClient, _ body: @Sendable (KubeClient) async throws -> R) async throws -> R {
        let result: Result<R, any Error>
        do { result = .success(try await body(client)) } catch { result = .failure(error) }
        try await client.shutdown()
        return try result.get()
    }

    /// A name no other scenario on a shared API server uses.
    static func unique(_ prefix: String) -> String {
        "\(prefix)\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(6))"
    }

    /// Sends a JSON request as the admin and returns the answer whatever its status.
    func admin(_ method: String, _ path: String, _ body: String? = nil, contentType: String = "application/json") async throws -> HTTPExchange {
        try await asAdmin { kube in
            try await kube.attempt(.init(rawValue: method), path, body: body.map { Array($0.utf8) }, contentType: body == nil ? nil : contentType)
        }
    }

    /// An object as the admin reads it, or nil when there is none.
    func object(_ kind: KubeKind, namespace: String?, _ name: String) async throws -> KubeObject? {
        try await asAdmin { try await $0.get(kind, namespace: namespace, name: name) }
    }

    /// Creates a namespace (as the admin).
    func createNamespace(_ name: String) async throws {
        let answer = try await admin("POST", "/api/v1/namespaces", #"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"\#(name)"}}"#)
        #expect(answer.status == 201, "creating namespace \(name): \(answer.text)")
    }

    /// Creates a pod with labels (as the admin). On the real API server it stays Pending.
    func createPod(_ name: String, namespace: String, labels: [String: String]) async throws {
        let labelText = labels.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
        let answer = try await admin("POST", "/api/v1/namespaces/\(namespace)/pods",
                                     #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","labels":{\#(labelText)}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}"#)
        #expect(answer.status == 201, "creating pod \(namespace)/\(name): \(answer.text)")
    }

    /// Deletes a namespace (as the admin), without waiting for it to go.
    func deleteNamespace(_ name: String) async {
        _ = try? await admin("DELETE", "/api/v1/namespaces/\(name)")
    }

    /// The cluster registration podid gets for this target: a token connection (with the CA for the real server).
    func clusterBody(name: String) throws -> String {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-kube-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokenFile = directory.appendingPathComponent("token")
        try "\(podidToken)\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let ca = caFile.map { #","caFile":"\#($0)""# } ?? ""
        return #"{"name":"\#(name)","apiServer":"\#(server)","connection":{"mode":"token","tokenFile":"\#(tokenFile.path)"\#(ca)}}"#
    }
}

extension TestClientProtocol {
    /// Registers the target as cluster `name` and waits for its first check.
    @discardableResult
    func registerCluster(_ kube: KubeEnvironment, name: String = "local") async throws -> [String: Any] {
        let response = try await call(.post, "/v1/clusters", token: testAdminToken, json: try kube.clusterBody(name: name))
        #expect(response.status == .created, "registering cluster \(name): \(response.body)")
        let deadline = ContinuousClock.now + .seconds(30)
        var status: [String: Any] = [:]
        repeat {
            status = try await call(.get, "/v1/clusters/\(name)", token: testAdminToken).json["status"] as? [String: Any] ?? [:]
            if !status.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        return status
    }
}
