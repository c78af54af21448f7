@testable import Cloud
import Core
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// What podid does with clusters, run unchanged against the Kubernetes simulator and — under
/// `make conformance` — a real kube-apiserver, so that the simulator is held to the real server.
/// What needs a kubelet, MIC or a fault switch is checked against the simulator only (the other
/// suites), and these scenarios say where they differ.
@Suite("Kubernetes scenarios (simulator and real API server)", .timeLimit(.minutes(5)))
struct KubeScenarioTests {
    static let broker = "aad-broker"

    static func identityObject(_ name: String, label: String, clientID: String? = nil) -> AzureIdentityObject {
        AzureIdentityObject(
            name: name, namespace: broker, labels: [PodidLabels.managedBy: "podid", "podid.io/scenario": label],
            resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)",
            clientID: clientID ?? "c-\(name)")
    }

    @Test("podid's view of the cluster: version, the aad-pod-identity kinds served, its permissions", arguments: KubeTarget.all)
    func discovery(target: KubeTarget) async throws {
        try await withSimulators { sims in
            let kube = try KubeEnvironment(target, sims: sims)
            try await kube.asPodid { client in
                let version = try await client.serverVersion()
                #expect(version.hasPrefix("v1."), "\(version)")
                let served = try await client.servedPodIdentityKinds()
                #expect(served.isSuperset(of: ["azureidentities", "azureidentitybindings", "azureassignedidentities"]), "\(served)")
                #expect(try await client.canI("create", .azureIdentity, namespace: Self.broker))
                #expect(try await client.canI("list", .pod, namespace: nil))
                if target == .apiServer {
                    // The simulator allows every verb unless a fault switch denies it; the real
                    // server holds podid to deploy/kubernetes/rbac.yaml.
                    #expect(try await client.canI("delete", .pod, namespace: "default") == false)
                    #expect(try await client.canI("create", KubeKind(group: "apps", version: "v1", plural: "deployments", kind: "Deployment"),
                                                  namespace: "default") == false)
                }
            }
        }
    }

    @Test("server-side apply with slashes in every resource id, re-apply, get, paged lists, delete preconditions", arguments: KubeTarget.all)
    func applyAndList(target: KubeTarget) async throws {
        try await withSimulators { sims in
            let kube = try KubeEnvironment(target, sims: sims)
            let label = KubeEnvironment.unique("s")
            let names = (1...5).map { "\(label)-\($0)" }
            try await kube.asPodid(pageSize: 2) { client in
                let first = try await client.apply(.azureIdentity, Self.identityObject(names[0], label: label).json, force: true)
                #expect(first.uid != nil)
                #expect(AzureIdentityObject(first).resourceID.hasPrefix("/subscriptions/"))
                let changed = try await client.apply(.azureIdentity, Self.identityObject(names[0], label: label, clientID: "c-changed").json, force: true)
                #expect(changed.uid == first.uid, "the same object")
                #expect(AzureIdentityObject(changed).clientID == "c-changed")
                #expect(Int(changed.resourceVersion ?? "") ?? 0 > Int(first.resourceVersion ?? "") ?? 0)
                let again = try await client.apply(.azureIdentity, Self.identityObject(names[0], label: label, clientID: "c-changed").json, force: true)
                #expect(again.resourceVersion == changed.resourceVersion, "an unchanged apply changes nothing")

                for name in names.dropFirst() { _ = try await client.apply(.azureIdentity, Self.identityObject(name, label: label).json, force: true) }
                let listed = try await client.list(.azureIdentity, namespace: nil, labelSelector: "podid.io/scenario=\(label)")
                #expect(Set(listed.map(\.name)) == Set(names), "five objects through pages of two")
                #expect(try await client.list(.azureIdentity, namespace: "default", labelSelector: "podid.io/scenario=\(label)").isEmpty)
                #expect(try await client.get(.azureIdentity, namespace: Self.broker, name: names[1])?.name == names[1])
                #expect(try await client.get(.azureIdentity, namespace: Self.broker, name: "\(label)-none") == nil)

                await #expect {
                    try await client.delete(.azureIdentity, namespace: Self.broker, name: names[0], uid: "00000000-0000-0000-0000-000000000000")
                } throws: { ($0 as? UpstreamError)?.kubeReason == .conflict }
                #expect(try await client.delete(.azureIdentity, namespace: Self.broker, name: names[0], uid: first.uid).existed)
                #expect(try await client.delete(.azureIdentity, namespace: Self.broker, name: names[0], uid: nil).existed == false)
                for name in names.dropFirst() { _ = try await client.delete(.azureIdentity, namespace: Self.broker, name: name, uid: nil) }
                #expect(try await client.list(.azureIdentity, namespace: nil, labelSelector: "podid.io/scenario=\(label)").isEmpty)
            }
        }
    }

    @Test("apply without force on a field another manager owns is a Conflict naming the field; with force podid takes it", arguments: KubeTarget.all)
    func applyConflicts(target: KubeTarget) async throws {
        try await withSimulators { sims in
            let kube = try KubeEnvironment(target, sims: sims)
            let name = KubeEnvironment.unique("b")
            let theirs = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"\#(name)","namespace":"aad-broker"},"spec":{"azureIdentity":"i","selector":"theirs"}}"#
            let created = try await kube.admin("PATCH", "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(name)?fieldManager=someone",
                                               theirs, contentType: "application/apply-patch+yaml")
            #expect(created.status == 201, "\(created.text)")
            let mine = AzureIdentityBindingObject(name: name, namespace: Self.broker, labels: [:], azureIdentity: "i", selector: "mine")
            try await kube.asPodid { client in
                await #expect {
                    try await client.apply(.azureIdentityBinding, mine.json, force: false)
                } throws: { error in
                    guard let error = error as? UpstreamError else { return false }
                    return error.kubeReason == .conflict && !error.retryable && error.message.contains(".spec.selector")
                        && error.message.contains("someone")
                }
                #expect(AzureIdentityBindingObject(try await client.apply(.azureIdentityBinding, mine.json, force: true)).selector == "mine")
                _ = try await client.delete(.azureIdentityBinding, namespace: Self.broker, name: name, uid: nil)
            }
        }
    }

    @Test("errors as the API server words them: missing namespace, invalid name, an apply body with \\/", arguments: KubeTarget.all)
    func errors(target: KubeTarget) async throws {
        try await withSimulators { sims in
            let kube = try KubeEnvironment(target, sims: sims)
            let missing = try await kube.admin("POST", "/apis/aadpodidentity.k8s.io/v1/namespaces/\(KubeEnvironment.unique("nowhere"))/azureidentities",
                                               #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"x"},"spec":{"type":0}}"#)
            #expect(missing.status == 404 && missing.json?.at("reason")?.stringValue == "NotFound", "\(missing.text)")
            let badName = try await kube.admin("POST", "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities",
                                               #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"Bad_Name"},"spec":{"type":0}}"#)
            #expect(badName.status == 422 && badName.json?.at("reason")?.stringValue == "Invalid", "\(badName.text)")
            let name = KubeEnvironment.unique("e")
            let escaped = try await kube.admin(
                "PATCH", "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(name)?fieldManager=podid",
                #"{"apiVersion":"aadpodidentity.k8s.io\/v1","kind":"AzureIdentity","metadata":{"name":"\#(name)","namespace":"aad-broker"},"spec":{"type":0,"resourceID":"\/subscriptions\/x","clientID":"c"}}"#,
                contentType: "application/apply-patch+yaml")
            #expect(escaped.status == 400, "\(escaped.text)")
            #expect(escaped.json?.at("message")?.stringValue?.contains("found unknown escape character") == true, "\(escaped.text)")
            #expect(try await kube.object(.azureIdentity, namespace: Self.broker, name) == nil)
        }
    }

    @Test("a cluster's check, a binding's objects applied, re-applied on change and deleted; foreign objects left alone", arguments: KubeTarget.all)
    func bindingLifecycle(target: KubeTarget) async throws {
        try await withWorkerApp { client, _, sims in
            let kube = try KubeEnvironment(target, sims: sims)
            let status = try await client.registerCluster(kube)
            #expect(status["reachable"] as? Bool == true, "\(status)")
            #expect(status["crdsServed"] as? Bool == true, "\(status)")
            let permissions = status["permissions"] as? [[String: Any]] ?? []
            #expect(!permissions.isEmpty && permissions.allSatisfy { $0["allowed"] as? Bool == true }, "podid's RBAC grants what it checks: \(permissions)")

            // Team names are unique: on a shared API server other scenarios write to aad-broker too.
            let team = KubeEnvironment.unique("t")
            try await client.createTeam(team, policy: bindingPolicy())
            _ = try await client.call(.post, "/v1/teams/\(team)/identities", token: testAdminToken, json: identityBody("api"))
            let identity = try await client.waitForIdentity(team, "api", state: "ready")
            let created = try await client.call(.post, "/v1/teams/\(team)/identities/api/bindings", token: testAdminToken,
                                                json: #"{"name":"web","cluster":"local","selector":"\#(team)-api"}"#)
            #expect(created.status == .accepted, "\(created.body)")
            let ready = try await client.waitForBinding(team, "api", "web", state: "ready")
            let aiName = try #require(ready["azureIdentityName"] as? String)
            let aibName = try #require(ready["azureIdentityBindingName"] as? String)

            let ai = try #require(try await kube.object(.azureIdentity, namespace: Self.broker, aiName))
            #expect(ai.json.at("spec", "resourceID")?.stringValue == identity["resourceId"] as? String)
            #expect(ai.json.at("spec", "clientID")?.stringValue == identity["clientId"] as? String)
            #expect(ai.json.at("spec", "type") == .number(0))
            #expect(ai.labels[PodidLabels.managedBy] == "podid" && ai.labels[PodidLabels.team] == team)
            let aib = try #require(try await kube.object(.azureIdentityBinding, namespace: Self.broker, aibName))
            #expect(AzureIdentityBindingObject(aib).selector == "\(team)-api")
            #expect(AzureIdentityBindingObject(aib).azureIdentity == aiName)
            #expect(aib.labels[PodidLabels.binding] == "web")
            var managers: [String] = []
            if case .array(let entries)? = aib.json.at("metadata", "managedFields") {
                managers = entries.compactMap { $0.at("manager")?.stringValue }
            }
            #expect(managers.contains(KubeClient.fieldManager), "podid's field manager: \(managers)")

            // A change of selector re-applies the binding object.
            let patched = try await client.call(.patch, "/v1/teams/\(team)/identities/api/bindings/web", token: testAdminToken,
                                                json: #"{"selector":"\#(team)-jobs"}"#)
            #expect(patched.status == .accepted, "\(patched.body)")
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/\(team)/identities/api/bindings/web", token: testAdminToken).json["observedGeneration"] as? Int == 2
            })
            let reapplied = try #require(try await kube.object(.azureIdentityBinding, namespace: Self.broker, aibName))
            #expect(AzureIdentityBindingObject(reapplied).selector == "\(team)-jobs")
            #expect(reapplied.uid == aib.uid, "updated in place")

            // Someone's own AzureIdentityBinding at the name a second binding would use: never touched.
            let foreignName = KubeNames.azureIdentityBinding(team: team, identity: "api", binding: "batch")
            let foreign = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"\#(foreignName)","labels":{"owner":"ops"}},"spec":{"azureIdentity":"other","selector":"ops"}}"#
            #expect(try await kube.admin("POST", "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings", foreign).status == 201)
            _ = try await client.call(.post, "/v1/teams/\(team)/identities/api/bindings", token: testAdminToken, json: #"{"name":"batch","cluster":"local"}"#)
            let failed = try await client.waitForBinding(team, "api", "batch", state: "failed")
            #expect((failed["lastError"] as? String)?.contains("owner=ops") == true, "\(failed)")
            let untouched = try #require(try await kube.object(.azureIdentityBinding, namespace: Self.broker, foreignName))
            #expect(AzureIdentityBindingObject(untouched).selector == "ops")
            _ = try await client.call(.delete, "/v1/teams/\(team)/identities/api/bindings/batch", token: testAdminToken)
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/\(team)/identities/api/bindings/batch", token: testAdminToken).status == .notFound
            })
            #expect(try await kube.object(.azureIdentityBinding, namespace: Self.broker, foreignName) != nil, "left alone when its binding goes")

            // The last binding's delete removes both objects.
            _ = try await client.call(.delete, "/v1/teams/\(team)/identities/api/bindings/web", token: testAdminToken)
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/\(team)/identities/api/bindings/web", token: testAdminToken).status == .notFound
            })
            #expect(try await kube.object(.azureIdentityBinding, namespace: Self.broker, aibName) == nil)
            #expect(try await kube.object(.azureIdentity, namespace: Self.broker, aiName) == nil)
            _ = try await kube.admin("DELETE", "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(foreignName)")
        }
    }

    @Test("a health sweep lists the cluster by pages and repairs drift; without MIC the finding says so", arguments: KubeTarget.all)
    func healthAndDrift(target: KubeTarget) async throws {
        try await withWorkerApp { client, database, sims in
            let kube = try KubeEnvironment(target, sims: sims)
            try await client.registerCluster(kube)
            let team = KubeEnvironment.unique("h")
            let namespace = KubeEnvironment.unique("apps")
            try await kube.createNamespace(namespace)
            try await client.createTeam(team, policy: bindingPolicy(namespaces: [namespace]))
            _ = try await client.call(.post, "/v1/teams/\(team)/identities", token: testAdminToken, json: identityBody("api"))
            _ = try await client.call(.post, "/v1/teams/\(team)/identities/api/bindings", token: testAdminToken,
                                      json: #"{"name":"web","cluster":"local","selector":"\#(team)-api"}"#)
            let ready = try await client.waitForBinding(team, "api", "web", state: "ready")
            let aibName = try #require(ready["azureIdentityBindingName"] as? String)
            try await kube.createPod("orders-1", namespace: namespace, labels: ["aadpodidbinding": "\(team)-api"])
            let path = "/v1/teams/\(team)/identities/api/bindings/web"

            var health = try await HealthTests.check(client, binding: path)
            if target.hasMIC {
                #expect(try await eventually {
                    HealthTests.codes(try await HealthTests.check(client, binding: path)).isEmpty
                }, "the simulated MIC assigns the pod: \(health)")
            } else {
                // No MIC runs in the test API server's broker namespace (and pods stay Pending).
                #expect(HealthTests.codes(health).contains("MICNotRunning"), "\(health)")
                #expect(health["status"] as? String == "unhealthy")
            }

            // Drift: the AzureIdentityBinding deleted by hand is re-applied by the next sweep.
            let deleted = try await kube.admin("DELETE", "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName)")
            #expect(deleted.status == 200, "\(deleted.text)")
            health = try await HealthTests.check(client, binding: path)
            #expect(HealthTests.codes(health).contains("AzureIdentityBindingMissing"), "\(health)")
            // By the binding's repair job, which the sweep queued.
            #expect(try await eventually {
                try await kube.object(.azureIdentityBinding, namespace: Self.broker, aibName).map { AzureIdentityBindingObject($0).selector } == "\(team)-api"
            }, "re-applied")
            #expect(try await eventually { try await database.auditRows().contains { $0.action == "k8s.azureidentitybinding.reapplied" } })

            _ = try await client.call(.delete, "/v1/teams/\(team)/identities/api?cascade=true", token: testAdminToken)
            #expect(try await client.waitForIdentityGone(team, "api"))
            await kube.deleteNamespace(namespace)
        }
    }

    @Test("kubectl, 1.20 and current, as a team uses it: namespace, deployment whose template gets the label, what podid applied, explain, namespace deletion",
          arguments: KubeTarget.all, KubectlClient.allCases)
    func kubectl(target: KubeTarget, client: KubectlClient) async throws {
        try await KubectlSession.withHome { home in
            try await withSimulators { sims in
                let kube = try KubeEnvironment(target, sims: sims)
                let k = client.session(server: kube.server, home: home, token: kube.adminToken, caFile: kube.caFile)
                let namespace = KubeEnvironment.unique("team")
                #expect(try await k.ok("create", "namespace", namespace).contains("namespace/\(namespace) created"))
                // One replica: the real server's rolling update surges one pod from the new template and,
                // with no pod ever Ready there, goes no further; the simulator's pods are Ready at once.
                #expect(try await k.ok("create", "deployment", "cart", "--image=nginx", "--replicas=1", "-n", namespace).contains("deployment.apps/cart created"))
                let patch = #"{"spec":{"template":{"metadata":{"labels":{"aadpodidbinding":"\#(namespace)-cart"}}}}}"#
                #expect(try await k.ok("patch", "deployment", "cart", "-n", namespace, "-p", patch).contains("deployment.apps/cart patched"))
                let pods = try await poll(timeout: .seconds(30)) {
                    try await k.ok("get", "pods", "-n", namespace, "-l", "aadpodidbinding=\(namespace)-cart", "-o", "name").split(separator: "\n")
                } until: { $0.count == 1 }
                #expect(pods.count == 1, "the controllers make the pod from the new template (Pending without a kubelet on the real server): \(pods)")
                let owner = try await k.ok("get", String(pods.first ?? ""), "-n", namespace, "-o", "jsonpath={.metadata.ownerReferences[0].kind}")
                #expect(owner == "ReplicaSet")

                // What podid applies, as kubectl shows it.
                let name = KubeEnvironment.unique("k")
                let applied = try await kube.asPodid { try await $0.apply(.azureIdentity, Self.identityObject(name, label: name).json, force: true) }
                let shown = try await k.ok("get", "azureidentities", "-n", Self.broker, name, "-o", "jsonpath={.metadata.uid} {.spec.resourceID}")
                #expect(shown == "\(applied.uid ?? "") \(AzureIdentityObject(applied).resourceID)")
                #expect(try await k.ok("api-resources").contains("azureidentities"))
                if client == .current {
                    #expect(try await k.ok("explain", "azureidentity.spec").contains("resourceID"))
                }
                #expect(try await k.ok("delete", "azureidentity", name, "-n", Self.broker).contains("deleted"))
                #expect(try await k.ok("delete", "namespace", namespace, "--timeout=90s", timeout: .seconds(120)).contains("deleted"))
                #expect(try await k.run("get", "namespace", namespace).0 != 0, "the namespace is gone")
            }
        }
    }
}
