@testable import Cloud
import Core
import Foundation
import Simulators
import Testing

/// The Kubernetes client against the Kubernetes simulator, kubeconfig parsing, and kubectl.
@Suite("Kubernetes client", .timeLimit(.minutes(5)))
struct KubeClientTests {
    static func withKube<R: Sendable>(
        auth: KubeConnection.Auth = .token("dev"), pageSize: Int = 500,
        _ body: @Sendable (RunningSimulators, KubeClient) async throws -> R
    ) async throws -> R {
        try await withSimulators { sims in
            let client = try KubeClient(connection: KubeConnection(server: sims.kubeURL, auth: auth), pageSize: pageSize)
            let result: Result<R, any Error>
            do { result = .success(try await body(sims, client)) } catch { result = .failure(error) }
            try await client.shutdown()
            return try result.get()
        }
    }

    static func identity(_ name: String, selector: String = "s") -> AzureIdentityObject {
        AzureIdentityObject(
            name: name, namespace: "aad-broker", labels: [PodidLabels.managedBy: "podid"],
            resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)",
            clientID: "c-\(name)")
    }

    @Test("server-side apply creates and updates; get; list pages through continue tokens")
    func crud() async throws {
        try await Self.withKube(pageSize: 2) { (sims: RunningSimulators, kube: KubeClient) async throws in
            let applied = try await kube.apply(.azureIdentity, Self.identity("one").json, force: true)
            #expect(applied.uid != nil)
            #expect(AzureIdentityObject(applied).clientID == "c-one")
            var changed = Self.identity("one")
            changed.clientID = "c-two"
            let updated = try await kube.apply(.azureIdentity, changed.json, force: true)
            #expect(updated.uid == applied.uid)
            #expect(AzureIdentityObject(updated).clientID == "c-two")
            let apply = try #require(sims.kube.requestLog.all.first { $0.operation == "azureidentities.patch" })
            #expect(apply.query.contains("fieldManager=podid"))

            #expect(try await kube.get(.azureIdentity, namespace: "aad-broker", name: "one")?.uid == applied.uid)
            #expect(try await kube.get(.azureIdentity, namespace: "aad-broker", name: "none") == nil)

            for name in ["two", "three", "four"] { _ = try await kube.apply(.azureIdentity, Self.identity(name).json, force: true) }
            sims.kube.requestLog.clear()
            let all = try await kube.list(.azureIdentity, namespace: nil, labelSelector: "\(PodidLabels.managedBy)=podid")
            #expect(Set(all.map(\.name)) == ["one", "two", "three", "four"])
            #expect(sims.kube.requestLog.all.filter { $0.operation == "azureidentities.list" }.count == 2, "two pages of two")
            #expect(try await kube.list(.azureIdentity, namespace: "default", labelSelector: nil).isEmpty)
        }
    }

    @Test("a delete whose uid precondition fails is a Conflict; a missing object is existed=false")
    func deletePreconditions() async throws {
        try await Self.withKube { (_: RunningSimulators, kube: KubeClient) async throws in
            let applied = try await kube.apply(.azureIdentity, Self.identity("one").json, force: true)
            await #expect {
                try await kube.delete(.azureIdentity, namespace: "aad-broker", name: "one", uid: "00000000-0000-0000-0000-000000000000")
            } throws: { ($0 as? UpstreamError)?.kubeReason == .conflict }
            #expect(try await kube.delete(.azureIdentity, namespace: "aad-broker", name: "one", uid: applied.uid).existed)
            #expect(try await kube.delete(.azureIdentity, namespace: "aad-broker", name: "one", uid: nil).existed == false)
        }
    }

    @Test("apply without force on a field another manager owns is a Conflict; with force it takes it")
    func applyConflicts() async throws {
        try await Self.withKube { (sims: RunningSimulators, kube: KubeClient) async throws in
            let other = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"b","namespace":"aad-broker"},"spec":{"azureIdentity":"i","selector":"theirs"}}"#
            #expect(try await send("PATCH", "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/b?fieldManager=someone",
                                   body: other, contentType: "application/apply-patch+yaml").status == 201)
            let mine = AzureIdentityBindingObject(name: "b", namespace: "aad-broker", labels: [:], azureIdentity: "i", selector: "mine")
            await #expect {
                try await kube.apply(.azureIdentityBinding, mine.json, force: false)
            } throws: { ($0 as? UpstreamError).map { $0.kubeReason == .conflict && !$0.retryable } ?? false }
            #expect(AzureIdentityBindingObject(try await kube.apply(.azureIdentityBinding, mine.json, force: true)).selector == "mine")
        }
    }

    @Test("Status errors decode into typed reasons; 429 and 5xx are retryable with Retry-After; a plain 404 means not served")
    func errors() async throws {
        try await Self.withKube { (sims: RunningSimulators, kube: KubeClient) async throws in
            await #expect {
                try await kube.apply(.azureIdentity, Self.identity("Bad_Name").json, force: true)
            } throws: { ($0 as? UpstreamError)?.kubeReason == .invalid }
            sims.kube.configure { $0.faults = [SimFaultRule(operation: "pods.list", throttleRate: 1, retryAfterSeconds: 4)] }
            await #expect {
                try await kube.list(.pod, namespace: nil, labelSelector: nil)
            } throws: { error in
                guard let error = error as? UpstreamError else { return false }
                return error.kubeReason == .tooManyRequests && error.retryable && error.retryAfter == .seconds(4)
            }
            sims.kube.configure { $0.faults = [SimFaultRule(operation: "pods.list", errorRate: 1)] }
            await #expect { try await kube.list(.pod, namespace: nil, labelSelector: nil) } throws: { ($0 as? UpstreamError)?.retryable == true }
            sims.kube.configure { $0.faults = [SimFaultRule(operation: "azureidentities.patch", forbiddenRate: 1)] }
            await #expect {
                try await kube.apply(.azureIdentity, Self.identity("denied").json, force: true)
            } throws: { ($0 as? UpstreamError).map { $0.kubeReason == .forbidden && !$0.retryable } ?? false }
            sims.kube.configure { $0.faults = []; $0.crdsServed = false }
            await #expect {
                try await kube.list(.azureIdentity, namespace: nil, labelSelector: nil)
            } throws: { ($0 as? UpstreamError)?.kubeReason == .resourceNotServed }
            #expect(try await kube.servedPodIdentityKinds().isEmpty)
            sims.kube.configure { $0.crdsServed = true }
            #expect(try await kube.servedPodIdentityKinds().isSuperset(of: Set(KubeKind.podIdentityKinds.map(\.plural))))
            await #expect {
                try await kube.list(.pod, namespace: nil, labelSelector: "a in x")
            } throws: { ($0 as? UpstreamError)?.kubeReason == .badRequest }
        }
        try await Self.withKube(auth: .token("wrong")) { (_: RunningSimulators, kube: KubeClient) async throws in
            await #expect { try await kube.list(.pod, namespace: nil, labelSelector: nil) } throws: { ($0 as? UpstreamError)?.kubeReason == .unauthorized }
        }
    }

    @Test("an expired continue token restarts the list from scratch, a bounded number of times")
    func expiredContinue() async throws {
        try await Self.withKube(pageSize: 1) { (sims: RunningSimulators, kube: KubeClient) async throws in
            for name in ["a", "b"] { _ = try await kube.apply(.azureIdentity, Self.identity(name).json, force: true) }
            sims.kube.configure { $0.continueTTLSeconds = -1 }
            sims.kube.requestLog.clear()
            await #expect { try await kube.list(.azureIdentity, namespace: nil, labelSelector: nil) } throws: { ($0 as? UpstreamError)?.status == 410 }
            let firstPages = sims.kube.requestLog.all.filter { $0.operation == "azureidentities.list" && !$0.query.contains("continue=") }
            #expect(firstPages.count == 4, "the first attempt and three restarts")
            sims.kube.configure { $0.continueTTLSeconds = 300 }
            #expect(try await kube.list(.azureIdentity, namespace: nil, labelSelector: nil).count == 2)
        }
    }

    @Test("SelfSubjectAccessReview answers what podid may do")
    func accessReview() async throws {
        try await Self.withKube { (sims: RunningSimulators, kube: KubeClient) async throws in
            #expect(try await kube.canI("create", .azureIdentity, namespace: "aad-broker"))
            sims.kube.configure { $0.deniedVerbs = ["azureidentities:create"] }
            #expect(try await kube.canI("create", .azureIdentity, namespace: "aad-broker") == false)
            #expect(try await kube.canI("list", .azureIdentity, namespace: nil))
        }
    }

    @Test("a token file is re-read after a 401, so a rotated token takes effect")
    func tokenRotation() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try "wrong\n".write(to: file, atomically: true, encoding: .utf8)
        try await Self.withKube(auth: .tokenFile(file.path)) { (_: RunningSimulators, kube: KubeClient) async throws in
            await #expect { try await kube.list(.pod, namespace: nil, labelSelector: nil) } throws: { ($0 as? UpstreamError)?.kubeReason == .unauthorized }
            try "dev\n".write(to: file, atomically: true, encoding: .utf8)
            #expect(try await kube.list(.pod, namespace: nil, labelSelector: nil).count >= 4, "MIC and NMI pods")
        }
    }

    @Test("typed objects write only lower-camel keys and notice capitalised legacy keys")
    func typedObjects() async throws {
        let json = Self.identity("x").json
        let spec = json.at("spec")?.members ?? [:]
        #expect(Set(spec.keys) == ["type", "resourceID", "clientID"])
        try await Self.withKube { (sims: RunningSimulators, kube: KubeClient) async throws in
            sims.kube.configure { $0.preserveUnknownFields = true }
            let legacy = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"old","namespace":"aad-broker"},"spec":{"type":0,"ResourceID":"/x","ClientID":"c"}}"#
            _ = try await send("POST", "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities", body: legacy)
            let legacyBinding = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"old","namespace":"aad-broker"},"spec":{"AzureIdentity":"old","Selector":"s"}}"#
            _ = try await send("POST", "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings", body: legacyBinding)
            let identity = AzureIdentityObject(try #require(try await kube.get(.azureIdentity, namespace: "aad-broker", name: "old")))
            #expect(identity.legacyKeys == ["spec.ClientID", "spec.ResourceID"])
            #expect(identity.resourceID.isEmpty, "aad-pod-identity reads only resourceID")
            let binding = AzureIdentityBindingObject(try #require(try await kube.get(.azureIdentityBinding, namespace: "aad-broker", name: "old")))
            #expect(binding.legacyKeys == ["spec.AzureIdentity", "spec.Selector"])
        }
    }

    @Test("podid's client and the real kubectl see the same objects")
    func sameAsKubectl() async throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        try await Self.withKube { (sims: RunningSimulators, kube: KubeClient) async throws in
            let applied = try await kube.apply(.azureIdentity, Self.identity("shared").json, force: true)
            let kubectl = KubectlClient.debian120.session(server: sims.kubeURL, home: home)
            let (status, output) = try await kubectl.run("get", "azureidentities", "-n", "aad-broker", "shared", "-o", "json")
            #expect(status == 0, "\(output)")
            let seen = try JSONDecoder().decode(JSONValue.self, from: Data(output.utf8))
            #expect(seen.at("metadata", "uid")?.stringValue == applied.uid)
            #expect(seen.at("metadata", "resourceVersion")?.stringValue == applied.resourceVersion)
            #expect(seen.at("spec", "clientID")?.stringValue == "c-shared")

            let pod = home.appendingPathComponent("pod.yaml")
            try "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-kubectl\n  namespace: default\n  labels:\n    aadpodidbinding: s\nspec:\n  containers:\n  - name: a\n    image: nginx\n"
                .write(to: pod, atomically: true, encoding: .utf8)
            #expect(try await kubectl.run("apply", "--validate=false", "-f", pod.path).0 == 0)
            let pods = try await kube.list(.pod, namespace: nil, labelSelector: "aadpodidbinding=s").map(PodObject.init)
            #expect(pods.map(\.name) == ["from-kubectl"])
            #expect(pods.first?.ready == true)
            #expect(pods.first?.nodeName != nil)
        }
    }
}

@Suite("Kubernetes connections", .timeLimit(.minutes(5)))
struct KubeConnectionTests {
    static let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    @Test("kubeconfig: current context, a named context, token, token file, client certificate data, CA file relative to the file")
    func kubeconfig() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.pem.write(to: directory.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        let certificate = Data("CERT".utf8).base64EncodedString()
        let key = Data("KEY".utf8).base64EncodedString()
        let text = """
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
            - name: dev
              cluster:
                server: https://dev.example:443
                certificate-authority: ca.crt
            - name: prod
              cluster:
                server: https://prod.example:443
                certificate-authority-data: \(Data(Self.pem.utf8).base64EncodedString())
            - name: kind
              cluster:
                server: https://127.0.0.1:6443
                insecure-skip-tls-verify: true
            contexts:
            - name: dev
              context: {cluster: dev, user: dev-user, namespace: apps}
            - name: prod
              context: {cluster: prod, user: prod-user}
            - name: kind
              context: {cluster: kind, user: kind-user}
            - name: aad
              context: {cluster: prod, user: aad-user}
            - name: broken
              context: {cluster: missing, user: dev-user}
            users:
            - name: dev-user
              user: {token: abc}
            - name: prod-user
              user: {tokenFile: token}
            - name: kind-user
              user: {client-certificate-data: \(certificate), client-key-data: \(key)}
            - name: aad-user
              user:
                exec: {command: kubelogin}
            """
        let file = directory.appendingPathComponent("config")
        try text.write(to: file, atomically: true, encoding: .utf8)

        let dev = try KubeConnection.kubeconfig(path: file.path, files: .anywhere)
        #expect(dev.server == "https://dev.example:443")
        #expect(dev.auth == .token("abc"))
        #expect(dev.namespace == "apps")
        #expect(dev.certificateAuthority == Array(Self.pem.utf8))
        let prod = try KubeConnection.kubeconfig(path: file.path, context: "prod", files: .anywhere)
        #expect(prod.auth == .tokenFile(directory.appendingPathComponent("token").path))
        #expect(prod.certificateAuthority == Array(Self.pem.utf8))
        let kind = try KubeConnection.kubeconfig(path: file.path, context: "kind", files: .anywhere)
        #expect(kind.insecureSkipTLSVerify)
        #expect(kind.auth == .clientCertificate(certificate: Array("CERT".utf8), key: Array("KEY".utf8)))

        for (context, fragment) in [("nope", "no context 'nope'"), ("broken", "not defined"), ("aad", "exec")] {
            #expect {
                try KubeConnection.kubeconfig(path: file.path, context: context, files: .anywhere)
            } throws: { "\($0)".contains(fragment) }
        }
        #expect { try KubeConnection.kubeconfig(text: "clusters: []", directory: "/") } throws: { "\($0)".contains("current-context") }
        #expect { try KubeConnection.kubeconfig(text: ": : :", directory: "/") } throws: { $0 is KubeConfigError }
        #expect { try KubeConnection.kubeconfig(path: "/nonexistent/config", files: .anywhere) } throws: { "\($0)".contains("cannot read") }
        let noKey = text.replacingOccurrences(of: ", client-key-data: \(key)", with: "")
        #expect { try KubeConnection.kubeconfig(text: noKey, directory: directory.path, context: "kind") } throws: { "\($0)".contains("no client key") }
    }

    @Test("in-cluster: service host and port, token, CA and namespace files; clear errors when missing")
    func inCluster() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        #expect { try KubeConnection.inCluster(environment: environment, directory: directory.path) } throws: { "\($0)".contains("token") }
        try "jwt".write(to: directory.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        #expect { try KubeConnection.inCluster(environment: environment, directory: directory.path) } throws: { "\($0)".contains("ca.crt") }
        try Self.pem.write(to: directory.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        try "podid-system\n".write(to: directory.appendingPathComponent("namespace"), atomically: true, encoding: .utf8)
        let connection = try KubeConnection.inCluster(environment: environment, directory: directory.path)
        #expect(connection.server == "https://10.0.0.1:443")
        #expect(connection.auth == .tokenFile(directory.appendingPathComponent("token").path))
        #expect(connection.namespace == "podid-system")
        #expect(try KubeConnection.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"],
                                             directory: directory.path).server == "https://[fd00::1]:443")
        #expect { try KubeConnection.inCluster(environment: [:], directory: directory.path) } throws: { "\($0)".contains("KUBERNETES_SERVICE_HOST") }
        #expect { try KubeConnection.tokenFile(server: "ftp://x", tokenFile: "/x", caFile: nil, files: .anywhere) } throws: { $0 is KubeConfigError }
    }
}
