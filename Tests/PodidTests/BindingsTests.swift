import Core
import Foundation
import HTTPTypes
import HummingbirdTesting
import Simulators
import Testing

/// Bindings: validation and policy in the API, and the jobs that write aad-pod-identity's objects
/// into the Kubernetes simulator, whose MIC then assigns the identity to labelled pods.
@Suite("Bindings", .timeLimit(.minutes(5)))
struct BindingsTests {
    static func fields(_ response: TestResponse) -> [String: String] {
        let errors = response.json["errors"] as? [[String: Any]] ?? []
        return Dictionary(errors.map { ($0["field"] as? String ?? "", $0["message"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
    }

    static func bind(_ client: any TestClientProtocol, team: String = "payments", identity: String = "api", _ body: String,
                     token: String = testAdminToken) async throws -> TestResponse {
        try await client.call(.post, "/v1/teams/\(team)/identities/\(identity)/bindings", token: token, json: body)
    }

    @Test("validation and policy: names, namespace, selector, cluster allowed, namespaced mode; selectors are per team in a cluster")
    func validation() async throws {
        try await withTestApp { client, _ in
            // `local` runs cluster mode for two teams that are one tenant (singleTeam).
            for (name, mode, single) in [("local", "cluster", true), ("strict", "namespaced", false), ("other", "cluster", false)] {
                #expect(try await client.call(.post, "/v1/clusters", token: testAdminToken,
                                              json: #"{"name":"\#(name)","connection":{"mode":"inCluster"},"micMode":"\#(mode)","singleTeam":\#(single)}"#).status == .created)
            }
            try await client.createTeam("payments", policy: bindingPolicy(namespaces: ["payments"], clusters: ["local", "strict"]))
            try await client.createTeam("search", policy: bindingPolicy(namespaces: ["search"], clusters: ["local"]))
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api")).status == .accepted)
            #expect(try await client.call(.post, "/v1/teams/search/identities", token: testAdminToken, json: identityBody("finder")).status == .accepted)

            var response = try await Self.bind(client, #"{"name":"Web_1","cluster":"local","namespace":"Bad","selector":"-x"}"#)
            #expect(response.status == .unprocessableContent)
            #expect(Set(Self.fields(response).keys) == ["name", "namespace", "selector"])
            response = try await Self.bind(client, #"{"name":"web","cluster":"nowhere"}"#)
            #expect(Self.fields(response)["cluster"]?.contains("no cluster named 'nowhere'") == true)
            response = try await Self.bind(client, #"{"name":"web","cluster":"other"}"#)
            #expect(Self.fields(response)["cluster"]?.contains("allowed: local, strict") == true, "\(response.body)")
            response = try await Self.bind(client, #"{"name":"web","cluster":"local","namespace":"kube-system"}"#)
            #expect(Self.fields(response)["namespace"]?.contains("allowed: aad-broker (the broker namespace), payments") == true, "\(response.body)")
            response = try await Self.bind(client, #"{"name":"web","cluster":"strict","namespace":"aad-broker"}"#)
            #expect(Self.fields(response)["namespace"]?.contains("namespaced") == true, "in namespaced mode the broker namespace is not enough: \(response.body)")
            response = try await Self.bind(client, #"{"name":"web","cluster":"strict"}"#)
            #expect(response.status == .accepted && response.json["namespace"] as? String == "payments",
                    "in namespaced mode the default is where the pods run, the team's only namespace: \(response.body)")

            // Defaults, podLabel and object names.
            response = try await Self.bind(client, #"{"name":"worker","cluster":"local"}"#)
            #expect(response.status == .accepted)
            #expect(response.json["namespace"] as? String == "aad-broker")
            let selector = try #require(response.json["selector"] as? String)
            #expect(selector.hasPrefix("worker-") && selector.count == 20, "a default selector nobody can guess: \(selector)")
            #expect((response.json["podLabel"] as? [String: String]) == ["aadpodidbinding": selector])
            #expect(response.json["azureIdentityName"] as? String == aiName("payments", "api"))
            #expect(response.json["azureIdentityBindingName"] as? String == aibName("payments", "api", "worker"))
            #expect(response.headers[.location] == "/v1/teams/payments/identities/api/bindings/worker")
            #expect(response.json["state"] as? String == "pending")

            // Selectors: a team may share one among its bindings; another team may not use it in that cluster.
            #expect(try await Self.bind(client, #"{"name":"batch","cluster":"local","selector":"payments-worker"}"#).status == .accepted)
            response = try await Self.bind(client, team: "search", identity: "finder", #"{"name":"steal","cluster":"local","selector":"payments-worker"}"#)
            #expect(response.status == .conflict)
            #expect((response.json["detail"] as? String)?.contains("cannot be used in cluster local") == true, "\(response.body)")
            #expect(!(response.json["detail"] as? String ?? "").contains("team"), "the answer names no team: \(response.body)")
            #expect(try await Self.bind(client, #"{"name":"worker","cluster":"local"}"#).status == .conflict, "name taken")

            // Changes: the selector, not the place; If-Match.
            response = try await client.call(.patch, "/v1/teams/payments/identities/api/bindings/worker", token: testAdminToken,
                                             json: #"{"namespace":"payments"}"#)
            #expect(Self.fields(response)["namespace"]?.contains("cannot change") == true)
            response = try await client.call(.patch, "/v1/teams/payments/identities/api/bindings/worker", token: testAdminToken,
                                             json: #"{"selector":"payments-jobs"}"#, headers: [.ifMatch: "\"1\""])
            #expect(response.status == .accepted)
            #expect(response.json["generation"] as? Int == 2)
            #expect(try await client.call(.patch, "/v1/teams/payments/identities/api/bindings/worker", token: testAdminToken,
                                          json: #"{"selector":"payments-jobs"}"#).status == .ok)

            // Roles: another team sees nothing; a viewer cannot write.
            let outsider = try await client.createToken(team: "search", role: "maintainer").secret
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api/bindings", token: outsider).status == .notFound)
            let viewer = try await client.createToken(team: "payments", role: "viewer").secret
            #expect(try await Self.bind(client, #"{"name":"v","cluster":"local"}"#, token: viewer).status == .forbidden)
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api/bindings", token: viewer).items.count == 3)

            // The identity cannot go while bound, unless asked to take its bindings along.
            response = try await client.call(.delete, "/v1/teams/payments/identities/api", token: testAdminToken)
            #expect(response.status == .conflict)
            #expect((response.json["detail"] as? String)?.contains("cascade=true") == true, "\(response.body)")
            response = try await client.call(.delete, "/v1/teams/payments/identities/api?cascade=true", token: testAdminToken)
            #expect(response.status == .accepted)
            let states = try await client.call(.get, "/v1/teams/payments/identities/api/bindings", token: testAdminToken).items.map { $0["state"] as? String }
            #expect(states.allSatisfy { $0 == "deleting" }, "\(states)")
            #expect(try await Self.bind(client, #"{"name":"late","cluster":"local"}"#).status == .conflict, "an identity being deleted cannot be bound")
        }
    }

    @Test("a binding writes lower-camel objects with podid's labels; MIC assigns a labelled pod in another namespace; delete cleans up")
    func endToEnd() async throws {
        try await withWorkerApp { client, database, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("payments", policy: bindingPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            // Bound before the identity is ready: the binding waits, without busy retries.
            let created = try await Self.bind(client, #"{"name":"web","cluster":"local","selector":"payments-api"}"#)
            #expect(created.status == .accepted)
            let identity = try await client.waitForIdentity("payments", "api", state: "ready")
            let ready = try await client.waitForBinding("payments", "api", "web", state: "ready")
            #expect((ready["message"] as? String)?.contains("aadpodidbinding=payments-api") == true)
            let applyJobs = try await client.call(.get, "/v1/jobs?kind=binding.apply", token: testAdminToken).items
            #expect(applyJobs.count <= 2, "one waiting run at most, then one that applied: \(applyJobs.count)")

            let ai = try #require(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))"))
            #expect(ai[["spec", "clientID"]]?.string == identity["clientId"] as? String)
            #expect(ai[["spec", "resourceID"]]?.string == identity["resourceId"] as? String)
            #expect(ai[["spec", "type"]]?.int == 0)
            #expect(ai[["spec", "ClientID"]] == nil && ai[["spec", "ResourceID"]] == nil, "no capitalised keys")
            #expect(ai[["metadata", "labels"]]?.stringMap == ["app.kubernetes.io/managed-by": "podid", "podid.io/team": "payments", "podid.io/identity": "api"])
            let aib = try #require(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName("payments", "api", "web"))"))
            #expect(aib[["spec", "azureIdentity"]]?.string == aiName("payments", "api"))
            #expect(aib[["spec", "selector"]]?.string == "payments-api")
            #expect(aib[["metadata", "labels"]]?.stringMap["podid.io/binding"] == "web")

            // A pod with the label, in another namespace (cluster mode): MIC assigns it.
            try await sims.createPod("orders-7d9f", namespace: "default", labels: ["aadpodidbinding": "payments-api"])
            let assignmentPath = "/apis/aadpodidentity.k8s.io/v1/namespaces/default/azureassignedidentities/orders-7d9f-default-\(aiName("payments", "api"))"
            #expect(try await eventually(timeout: .seconds(20)) {
                try await sims.kubeObject(assignmentPath)?[["status", "status"]]?.string == "Assigned"
            }, "the AzureAssignedIdentity <pod>-<ns>-<AzureIdentity> reaches Assigned")

            // A second binding shares the AzureIdentity; deleting the first keeps it, the last removes it.
            #expect(try await Self.bind(client, #"{"name":"batch","cluster":"local"}"#).status == .accepted)
            _ = try await client.waitForBinding("payments", "api", "batch", state: "ready")
            #expect(try await client.call(.delete, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken).status == .accepted)
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken).status == .notFound
            })
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName("payments", "api", "web"))") == nil)
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))") != nil,
                    "still used by binding batch")

            // Deleting the identity with cascade removes the last binding, the AzureIdentity, then the identity.
            #expect(try await client.call(.delete, "/v1/teams/payments/identities/api?cascade=true", token: testAdminToken).status == .accepted)
            #expect(try await client.waitForIdentityGone("payments", "api"))
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))") == nil)
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName("payments", "api", "batch"))") == nil)
            #expect(try await sims.azureIdentities().isEmpty)
            let actions = try await database.auditRows().map(\.action)
            for action in ["binding.created", "k8s.azureidentity.applied", "k8s.azureidentitybinding.applied", "binding.ready",
                           "binding.deleted", "k8s.azureidentitybinding.deleted", "k8s.azureidentity.deleted", "binding.removed", "identity.removed"] {
                #expect(actions.contains(action), "audited: \(action)")
            }
        }
    }

    @Test("objects podid did not create are never changed or deleted; the binding fails naming the object and its labels")
    func foreignObjects() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("payments", policy: bindingPolicy())
            // Someone applied an AzureIdentity by hand at the name podid would use.
            let manual = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"\#(aiName("payments", "api"))","labels":{"owner":"ops"}},"spec":{"type":0,"resourceID":"/x","clientID":"manual"}}"#
            #expect(try await send("POST", "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities", body: manual).status == 201)
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            _ = try await Self.bind(client, #"{"name":"web","cluster":"local"}"#)
            let failed = try await client.waitForBinding("payments", "api", "web", state: "failed")
            let error = failed["lastError"] as? String ?? ""
            #expect(error.contains("AzureIdentity aad-broker/\(aiName("payments", "api")) in cluster local exists and podid did not create it") && error.contains("owner=ops"), "\(error)")
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))")?[["spec", "clientID"]]?.string == "manual")
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName("payments", "api", "web"))") == nil)

            _ = try await client.call(.delete, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken)
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken).status == .notFound
            })
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))") != nil, "left alone")
        }
    }

    @Test("manifests: exactly what podid applies, valid against the v1.8.17 CRD schema closed to stray keys, and kubectl applies them to a fresh cluster")
    func manifests() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("payments", policy: bindingPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api/manifests", token: testAdminToken).status == .conflict,
                    "no clientId yet")
            _ = try await Self.bind(client, #"{"name":"web","cluster":"local","selector":"payments-api"}"#)
            _ = try await Self.bind(client, #"{"name":"jobs","cluster":"local","namespace":"default"}"#)
            _ = try await client.waitForBinding("payments", "api", "web", state: "ready")
            _ = try await client.waitForBinding("payments", "api", "jobs", state: "ready")
            let response = try await client.call(.get, "/v1/teams/payments/identities/api/manifests", token: testAdminToken)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("application/yaml") == true)
            let yaml = response.body
            #expect(yaml.components(separatedBy: "kind: \"AzureIdentity\"\n").count - 1 == 2, "one AzureIdentity per namespace")
            #expect(yaml.components(separatedBy: "kind: \"AzureIdentityBinding\"\n").count - 1 == 2)
            #expect(yaml.contains("#         aadpodidbinding: payments-api") || yaml.contains("#         aadpodidbinding: jobs-"), "\(yaml)")
            let filtered = try await client.call(.get, "/v1/teams/payments/identities/api/manifests?namespace=default", token: testAdminToken).body
            #expect(filtered.contains("namespace: \"default\"") && !filtered.contains("namespace: \"aad-broker\""))

            // What the cluster holds is what the export says (spec by spec).
            let live = try #require(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))"))
            #expect(yaml.contains("clientID: \"\(live[["spec", "clientID"]]?.string ?? "-")\""))

            // An independent validator (jsonschema) against the CRD's schema, closed to unknown keys.
            let file = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("manifests-\(UUID().uuidString).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let python = root.appendingPathComponent(".venv/bin/python").path
            let script = root.appendingPathComponent("scripts/validate-manifests.py").path
            let crd = root.appendingPathComponent("Sources/Simulators/Resources/aad-pod-identity/crd.yaml").path
            let (status, output) = try await runProgram(python, [script, crd, file.path], environment: ["PATH": "/usr/bin:/bin"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("4 objects valid"), "\(output)")
            // The validator would catch a capitalised key.
            let broken = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("broken-\(UUID().uuidString).yaml")
            try yaml.replacingOccurrences(of: "  selector:", with: "  Selector:").write(to: broken, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: broken) }
            let (brokenStatus, brokenOutput) = try await runProgram(python, [script, crd, broken.path], environment: ["PATH": "/usr/bin:/bin"])
            #expect(brokenStatus != 0 && brokenOutput.contains("Selector"), "\(brokenOutput)")

            // kubectl applies the export to a fresh simulated cluster.
            if let kubectl = ProcessInfo.processInfo.environment["PODID_TEST_KUBECTL"] {
                try await withSimulators { fresh in
                    let (applied, text) = try await runProgram(kubectl, ["--server", fresh.kubeURL, "apply", "-f", file.path],
                                                               environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
                    #expect(applied == 0, "\(text)")
                    #expect(text.contains("azureidentity.aadpodidentity.k8s.io/\(aiName("payments", "api")) created"), "\(text)")
                    #expect(try await fresh.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/default/azureidentitybindings/\(aibName("payments", "api", "jobs"))") != nil)
                }
            }
        }
    }

    @Test("when a binding carries another clientId than its identity's, the identity's next ready re-applies the AzureIdentity")
    func clientIdChange() async throws {
        try await withWorkerApp { client, database, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("payments", policy: bindingPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            _ = try await Self.bind(client, #"{"name":"web","cluster":"local"}"#)
            let ready = try await client.waitForBinding("payments", "api", "web", state: "ready")
            // Every apply queued so far has run (the identity's ready may have queued one more).
            #expect(try await eventually {
                try await client.call(.get, "/v1/jobs?kind=binding.apply", token: testAdminToken).items.allSatisfy { $0["state"] as? String == "succeeded" }
            })
            let clientId = try #require(try await client.call(.get, "/v1/teams/payments/identities/api", token: testAdminToken).json["clientId"] as? String)
            // The cluster's AzureIdentity and podid's record both carry an old clientId (as after a re-adoption).
            let path = "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))"
            let patched = try await send("PATCH", "\(sims.kubeURL)\(path)", body: #"{"spec":{"clientID":"00000000-0000-0000-0000-0000000000ff"}}"#,
                                         contentType: "application/merge-patch+json")
            #expect(patched.status == 200, "\(patched.text)")
            _ = try await database.withOwner { owner in
                try await owner.query("UPDATE bindings SET applied_client_id = 'old'", logger: TestDatabase.logger).collect()
            }
            #expect(ready["state"] as? String == "ready")
            _ = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken, json: #"{"tags":{"v":"2"}}"#,
                                      headers: [.init("X-Request-Id")!: "req-client-id"])
            // (Bounds for a loaded machine: the identity's job, then the binding's.)
            #expect(try await eventually(timeout: .seconds(90)) {
                try await sims.kubeObject(path)?[["spec", "clientID"]]?.string == clientId
            }, "re-applied with the identity's clientId")
            // The AzureIdentity may be put right by a health sweep's drift repair before the identity's
            // job queues its apply: wait for the apply rather than read the jobs once.
            #expect(try await eventually(timeout: .seconds(90)) {
                try await client.call(.get, "/v1/jobs?kind=binding.apply", token: testAdminToken).items
                    .contains { $0["requestId"] as? String == "req-client-id" }
            }, "queued by the identity's job for that change")
        }
    }
}
