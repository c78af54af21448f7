import Core
import Workers
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Simulators
import Testing

/// The evaluator on observed states (pure), and sweeps against the simulators: each fault gives its
/// finding and clears when undone; drift is re-applied; a big cluster costs list pages, not requests
/// per binding.
@Suite("Assignment health", .timeLimit(.minutes(5)))
struct HealthTests {
    // MARK: evaluator

    static let now = Date()
    static let cluster = Cluster(name: "local", apiServer: "http://x", connection: .inCluster)
    static let identity = Identity(team: "payments", name: "api", subscriptionId: devSubscription, resourceGroup: "podid-dev", location: "westeurope",
                                   tags: [:], grants: [], deletionPolicy: .delete, adoptResourceId: nil, adoptedByAdmin: false,
                                   resourceId: "/subscriptions/\(devSubscription)/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/api",
                                   clientId: "11111111-1111-1111-1111-111111111111", state: .ready, observedGeneration: 1)
    static let binding = Binding(team: "payments", identity: "api", name: "web", cluster: "local", namespace: "aad-broker", selector: "payments-api",
                                 state: .ready, observedGeneration: 1)
    static let policy = TeamPolicy(subscriptions: [devSubscription], resourceGroups: ["podid-dev"], grants: [], clusters: ["local"], namespaces: ["default"], maxIdentities: 5)

    static func pod(_ name: String, namespace: String = "default", label: String? = "payments-api", node: String = "node-1", ready: Bool = true) -> PodObject {
        var labels: [String: JSONValue] = [:]
        if let label { labels["aadpodidbinding"] = .string(label) }
        return PodObject(KubeObject(.object([
            "metadata": .object(["name": .string(name), "namespace": .string(namespace), "labels": .object(labels)]),
            "spec": .object(["nodeName": .string(node)]),
            "status": .object(["phase": "Running", "conditions": .array([.object(["type": "Ready", "status": .string(ready ? "True" : "False")])])]),
        ])))
    }

    static func assignment(pod: String, namespace: String = "default", status: String = "Assigned", age: TimeInterval = 10) -> AzureAssignedIdentityObject {
        AzureAssignedIdentityObject(KubeObject(.object([
            "metadata": .object(["name": .string("\(pod)-\(namespace)-\(binding.azureIdentityObjectName)"), "namespace": "default",
                                 "creationTimestamp": .string(Timestamp.format(now.addingTimeInterval(-age)))]),
            "spec": .object(["pod": .string(pod), "podNamespace": .string(namespace), "nodename": "node-1",
                             "azureIdentityRef": .object(["metadata": .object(["name": .string(binding.azureIdentityObjectName), "namespace": "aad-broker"]),
                                                          "spec": .object(["clientID": .string(identity.clientId ?? "")])]),
                             "azureBindingRef": .object(["metadata": .object(["name": .string(binding.bindingObjectName)])])]),
            "status": .object(["status": .string(status)]),
        ])))
    }

    /// A healthy cluster for the binding: its objects, one labelled pod assigned, MIC and NMI up.
    static func healthy() -> (pods: [PodObject], assignments: [AzureAssignedIdentityObject], ais: [AzureIdentityObject],
                              aibs: [AzureIdentityBindingObject], mic: [PodObject], nmi: [PodObject]) {
        ([pod("orders-1")], [assignment(pod: "orders-1")],
         [AzureIdentityObject(KubeObject(binding.azureIdentityObject(resourceID: identity.resourceId!, clientID: identity.clientId!).json))],
         [AzureIdentityBindingObject(KubeObject(binding.bindingObject.json))],
         [pod("mic-1", namespace: "aad-broker", label: nil)], [pod("nmi-1", namespace: "aad-broker", label: nil, node: "node-1")])
    }

    static func codes(_ change: (inout (pods: [PodObject], assignments: [AzureAssignedIdentityObject], ais: [AzureIdentityObject],
                                       aibs: [AzureIdentityBindingObject], mic: [PodObject], nmi: [PodObject])) -> Void = { _ in },
                      cluster: Cluster = cluster, azure: AzureIdentityObservation = AzureIdentityObservation(exists: true, clientId: identity.clientId),
                      binding: Binding = binding, policy: TeamPolicy = policy) -> [String] {
        var state = healthy()
        change(&state)
        let observed = ClusterObservation(labelledPods: state.pods, assignments: state.assignments, azureIdentities: state.ais,
                                          bindings: state.aibs, micPods: state.mic, nmiPods: state.nmi, observedAt: now)
        return HealthEvaluator.evaluate(binding: binding, identity: identity, cluster: cluster, policy: policy, observed: observed, azure: azure)
            .map(\.code).sorted()
    }

    @Test("the evaluator: a healthy observation has no findings; each fault its own code; statuses roll up")
    func evaluator() {
        // A narrowed policy: the cluster, the identity's resource group, a grant no longer allowed.
        var narrowed = Self.policy
        narrowed.clusters = []
        #expect(Self.codes(policy: narrowed) == ["OutsidePolicy"])
        narrowed = Self.policy
        narrowed.resourceGroups = ["elsewhere"]
        #expect(Self.codes(policy: narrowed) == ["OutsidePolicy"])
        #expect(Self.codes() == [])
        #expect(Self.codes { $0.pods = [] ; $0.assignments = [] } == ["NoPodsWithSelector"])
        #expect(Self.codes { $0.assignments = [] } == ["PodWithoutAssignment"])
        #expect(Self.codes { $0.assignments = [Self.assignment(pod: "orders-1", status: "Created", age: 600)] } == ["AssignmentStuckCreated"])
        #expect(Self.codes { $0.assignments = [Self.assignment(pod: "orders-1", status: "Created", age: 30)] } == [], "young Created is normal")
        #expect(Self.codes { $0.assignments.append(Self.assignment(pod: "gone-1")) } == ["AssignmentForMissingPod"])
        #expect(Self.codes { $0.ais = [] } == ["AzureIdentityMissing"])
        #expect(Self.codes { $0.aibs = [] } == ["AzureIdentityBindingMissing"])
        #expect(Self.codes { $0.ais[0].clientID = "other" } == ["AzureIdentityChanged"])
        #expect(Self.codes { $0.aibs[0].selector = "other" } == ["AzureIdentityBindingChanged"])
        #expect(Self.codes { $0.ais[0].labels = ["owner": "ops"] } == ["AzureIdentityNotPodids"])
        #expect(Self.codes { $0.aibs[0].legacyKeys = ["spec.Selector"] } == ["LegacyKeys"])
        #expect(Self.codes(azure: AzureIdentityObservation(exists: false)) == ["IdentityMissingInAzure"])
        #expect(Self.codes(azure: AzureIdentityObservation(exists: true, clientId: "22222222-2222-2222-2222-222222222222")) == ["ClientIdMismatch"])
        #expect(Self.codes(azure: AzureIdentityObservation(exists: true, clientId: Self.identity.clientId, kubeletIsOperator: false)) == ["KubeletLacksOperator"])
        let gone = RecordedAssignment(role: "Reader", scope: devGroupScope, roleDefinitionId: "r", assignmentId: "/x", owned: true)
        #expect(Self.codes(azure: AzureIdentityObservation(exists: true, clientId: Self.identity.clientId, missingAssignments: [gone])) == ["RoleAssignmentMissing"])
        #expect(Self.codes { $0.mic = [] } == ["MICNotRunning"])
        #expect(Self.codes { $0.nmi = [Self.pod("nmi-1", namespace: "aad-broker", label: nil, ready: false)] } == ["NMINotReady"])
        #expect(Self.codes { $0.nmi = [] } == ["NMINotReady"])
        #expect(Self.codes {
            $0.assignments.append(AzureAssignedIdentityObject(KubeObject(.object([
                "metadata": .object(["name": "orders-1-default-other", "namespace": "default"]),
                "spec": .object(["pod": "orders-1", "podNamespace": "default",
                                 "azureIdentityRef": .object(["metadata": .object(["name": "other", "namespace": "aad-broker"])])]),
                "status": .object(["status": "Assigned"])]))))
        } == ["MultipleIdentities"])
        #expect(Self.codes { $0.ais.append(AzureIdentityObject(name: Self.binding.azureIdentityObjectName, namespace: "default", labels: [:], resourceID: "/x", clientID: "y")) }
                == ["DuplicateAzureIdentityName"])
        #expect(Self.codes { $0.pods.append(Self.pod("intruder", namespace: "kube-system")); $0.assignments.append(Self.assignment(pod: "intruder", namespace: "kube-system")) }
                == ["ForeignNamespacePod"], "in cluster mode a pod outside the team's namespaces receives the identity")
        #expect(Self.codes { $0.pods.append(Self.pod("typo", label: "payments-apii")) } == ["UnmatchedPodLabel"])
        // A near-miss label on a pod in another team's namespace is not this team's to see.
        #expect(Self.codes { $0.pods.append(Self.pod("theirs", namespace: "search", label: "payments-apii")) } == [],
                "no finding names another team's pod")
        #expect(Self.codes { $0.pods.append(Self.pod("stranger", label: "search-indexer")) } == [], "an unrelated label is someone else's business")
        var namespaced = Self.cluster
        namespaced.micMode = .namespaced
        let inBroker = Binding(team: "payments", identity: "api", name: "web", cluster: "local", namespace: "default", selector: "payments-api",
                               state: .ready, observedGeneration: 1)
        #expect(Self.codes({ state in
            state.ais = [AzureIdentityObject(KubeObject(inBroker.azureIdentityObject(resourceID: Self.identity.resourceId!, clientID: Self.identity.clientId!).json))]
            state.aibs = [AzureIdentityBindingObject(KubeObject(inBroker.bindingObject.json))]
            state.assignments = []
            state.pods = [Self.pod("elsewhere", namespace: "payments")]
        }, cluster: namespaced, binding: inBroker) == ["NoPodsWithSelector", "PodOutsideBindingNamespace"])

        let observed = ClusterObservation(unreachable: "connection refused")
        let unreachable = HealthEvaluator.evaluate(binding: Self.binding, identity: Self.identity, cluster: Self.cluster, policy: Self.policy,
                                                   observed: observed, azure: AzureIdentityObservation(exists: nil))
        #expect(unreachable.map(\.code) == ["ClusterUnreachable"])
        #expect(HealthEvaluator.status(unreachable) == .unknown)
        #expect(HealthEvaluator.status([]) == .healthy)
        #expect(HealthStatus.worst([.healthy, .degraded, .unhealthy, .unknown]) == .unhealthy)
        #expect(HealthStatus.worst([.healthy, .degraded]) == .degraded)
        #expect(HealthEvaluator.editDistance("payments-apii", "payments-api", limit: 2) == 1)
        #expect(HealthEvaluator.editDistance("payments-web", "payments-api", limit: 2) == 3)
        for code in Self.codes({ $0.mic = []; $0.ais = [] }) { #expect(FindingCode(rawValue: code) != nil) }
    }

    // MARK: sweeps

    /// Runs a check now and waits until it has looked (a newer observedAt).
    static func check(_ client: any TestClientProtocol, binding path: String = "/v1/teams/payments/identities/api/bindings/web") async throws -> [String: Any] {
        // A result observed after this moment: a periodic sweep that was already running when the
        // test changed the cluster may finish in between, with what it saw before the change.
        let asked = Date().addingTimeInterval(-0.001)
        let queued = try await client.call(.post, "\(path)/health", token: testAdminToken)
        #expect(queued.status == .accepted, "\(queued.body)")
        var latest: [String: Any] = [:]
        let format = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        #expect(try await eventually(timeout: .seconds(30)) {
            let json = try await client.call(.get, "\(path)/health", token: testAdminToken).json
            guard let text = json["observedAt"] as? String, let observed = try? format.parse(text) else { return false }
            return observed >= asked
        })
        latest = try await client.call(.get, "\(path)/health", token: testAdminToken).json
        return latest
    }

    /// The simulated cluster, team payments, identity api and its binding web (selector payments-api), ready.
    static func readyBinding(_ client: any TestClientProtocol, _ sims: RunningSimulators) async throws {
        try await client.registerSimCluster(sims)
        try await client.createTeam("payments", policy: bindingPolicy())
        _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
        _ = try await client.call(.post, "/v1/teams/payments/identities/api/bindings", token: testAdminToken,
                                  json: #"{"name":"web","cluster":"local","selector":"payments-api"}"#)
        _ = try await client.waitForBinding("payments", "api", "web", state: "ready")
    }

    static func codes(_ health: [String: Any]) -> Set<String> {
        Set((health["findings"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String })
    }

    @Test("faults give findings within one sweep and clear when undone; drift is re-applied; status changes are audited")
    func sweeps() async throws {
        try await withWorkerApp(registry: ProcessMetrics.registry) { client, database, sims in
            try await Self.readyBinding(client, sims)
            try await sims.createPod("orders-1", labels: ["aadpodidbinding": "payments-api"])
            #expect(try await eventually {
                try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/default/azureassignedidentities/orders-1-default-\(aiName("payments", "api"))")?[["status", "status"]]?.string == "Assigned"
            })
            var health = try await Self.check(client)
            #expect(health["status"] as? String == "healthy", "\(health)")

            // MIC stopped.
            sims.kube.configure { $0.micRunning = false }
            #expect(try await eventually { try await sims.kubeObject("/api/v1/namespaces/aad-broker/pods/mic-5f7b6d8c9-a1b2c") == nil })
            health = try await Self.check(client)
            #expect(health["status"] as? String == "unhealthy")
            #expect(Self.codes(health).contains("MICNotRunning"), "\(health)")
            let finding = (health["findings"] as? [[String: Any]])?.first { $0["code"] as? String == "MICNotRunning" }
            #expect((finding?["hint"] as? String)?.contains("component=mic") == true)
            sims.kube.configure { $0.micRunning = true }
            #expect(try await eventually { try await sims.kubeObject("/api/v1/namespaces/aad-broker/pods/mic-5f7b6d8c9-a1b2c") != nil })
            #expect(try await Self.check(client)["status"] as? String == "healthy")

            // A mislabelled pod.
            try await sims.createPod("orders-typo", labels: ["aadpodidbinding": "payments-apii"])
            health = try await Self.check(client)
            #expect(Self.codes(health) == ["UnmatchedPodLabel"], "\(health)")
            #expect(health["status"] as? String == "unhealthy")
            _ = try await send("DELETE", "\(sims.kubeURL)/api/v1/namespaces/default/pods/orders-typo")
            #expect(try await Self.check(client)["status"] as? String == "healthy")

            // NMI not ready on the pod's node.
            sims.kube.configure { $0.nmiNotReadyNodes = ["*"] }
            try await Task.sleep(for: .milliseconds(600))
            health = try await Self.check(client)
            #expect(Self.codes(health).contains("NMINotReady"), "\(health)")
            sims.kube.configure { $0.nmiNotReadyNodes = [] }
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await Self.check(client)["status"] as? String == "healthy")

            // A pod outside the team's namespaces carries its selector (cluster mode: it gets the identity).
            try await sims.createPod("intruder", namespace: "kube-system", labels: ["aadpodidbinding": "payments-api"])
            health = try await Self.check(client)
            #expect(Self.codes(health).contains("ForeignNamespacePod"), "\(health)")
            _ = try await send("DELETE", "\(sims.kubeURL)/api/v1/namespaces/kube-system/pods/intruder")

            // Drift: the AzureIdentityBinding deleted by hand is re-applied by the sweep.
            let aibPath = "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName("payments", "api", "web"))"
            #expect(try await send("DELETE", "\(sims.kubeURL)\(aibPath)").status == 200)
            health = try await Self.check(client)
            #expect(Self.codes(health).contains("AzureIdentityBindingMissing"), "\(health)")
            // By the binding's repair job, which the sweep queued.
            #expect(try await eventually { try await sims.kubeObject(aibPath) != nil }, "re-applied")
            #expect(try await eventually { try await database.auditRows().contains { $0.action == "k8s.azureidentitybinding.reapplied" } })
            #expect(try await client.call(.get, "/v1/jobs?kind=binding.repair", token: testAdminToken).items.first?["state"] as? String == "succeeded")
            #expect(try await eventually(timeout: .seconds(30)) { try await Self.check(client)["status"] as? String == "healthy" })

            // A role assignment removed in Azure: a finding (the identity's next job creates it again).
            let assignmentId = try #require(((try await client.call(.get, "/v1/teams/payments/identities/api", token: testAdminToken)
                .json["roleAssignments"] as? [[String: Any]])?.first)?["assignmentId"] as? String)
            #expect(try await send("DELETE", "\(sims.azureURL)\(assignmentId)?api-version=2022-04-01").status == 200)
            health = try await Self.check(client)
            #expect(Self.codes(health).contains("RoleAssignmentMissing"), "\(health)")
            // The gauges live in the process-wide registry, where other tests' sweeps of their own
            // cluster "local" publish too: the next sweep of this one shows its numbers.
            #expect(try await eventually(timeout: .seconds(30)) {
                let metrics = try await client.call(.get, "/metrics").body
                return metrics.contains(#"podid_health_findings{cluster="local",code="RoleAssignmentMissing"} 1"#)
                    && metrics.contains(#"podid_health_bindings{cluster="local",status="unhealthy"} 1"#)
                    && metrics.contains(#"podid_health_assignments{cluster="local",state="Assigned"}"#)
            }, "gauges by code, status and state")

            // The identity deleted in Azure: a finding, and never a silent recreation.
            let resourceId = try #require(try await client.call(.get, "/v1/teams/payments/identities/api", token: testAdminToken).json["resourceId"] as? String)
            #expect(try await send("DELETE", "\(sims.azureURL)\(resourceId)?api-version=2023-01-31").status == 200)
            health = try await Self.check(client)
            #expect(Self.codes(health).contains("IdentityMissingInAzure"), "\(health)")
            #expect(try await sims.azureIdentities().isEmpty, "podid did not recreate it")
            // Recreated by hand with the same name: a new clientId, which podid reports rather than accepts.
            _ = try await sims.createAzureIdentity("api")
            health = try await Self.check(client)
            #expect(Self.codes(health).contains("ClientIdMismatch"), "\(health)")

            // The roll-up and the history.
            let summary = try await client.call(.get, "/v1/health", token: testAdminToken).json
            #expect(((summary["teams"] as? [String: Any])?["payments"] as? [String: Any])?["unhealthy"] as? Int == 1)
            #expect(((summary["clusters"] as? [String: Any])?["local"] as? [String: Any])?["status"] as? String == "unhealthy")
            let changes = try await database.auditRows().filter { $0.action == "health.changed" }
            #expect(changes.count >= 8, "every status change is audited: \(changes.count)")
            let binding = try await client.call(.get, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken).json
            #expect(binding["health"] as? String == "unhealthy")
            let history = try await database.withOwner { client in
                try await client.query("SELECT count(*)::int FROM binding_health_history", logger: TestDatabase.logger).collect()[0].decode(Int.self)
            }
            #expect(history == changes.count)

            // Team isolation of the summary and the checks.
            try await client.createTeam("search", policy: bindingPolicy())
            let other = try await client.createToken(team: "search", role: "maintainer").secret
            let theirs = try await client.call(.get, "/v1/health", token: other).json
            #expect((theirs["teams"] as? [String: Any])?.isEmpty == true)
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api/bindings/web/health", token: other).status == .notFound)
            let viewer = try await client.createToken(team: "payments", role: "viewer").secret
            #expect(try await client.call(.post, "/v1/teams/payments/identities/api/bindings/web/health", token: viewer).status == .forbidden)
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api/bindings/web/health", token: viewer).status == .ok)
        }
    }

    @Test("with a kubelet identity configured, a missing Managed Identity Operator grant is found, and clears once granted")
    func kubeletOperator() async throws {
        try await withWorkerApp { client, _, sims in
            let kubelet = "0000aaaa-0000-0000-0000-00000000beef"
            sims.azure.seedPrincipal(kubelet)
            try await client.registerSimCluster(sims, extra: #","kubeletIdentity":{"objectId":"\#(kubelet)"}"#)
            try await client.createTeam("payments", policy: bindingPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            _ = try await client.call(.post, "/v1/teams/payments/identities/api/bindings", token: testAdminToken,
                                      json: #"{"name":"web","cluster":"local","selector":"payments-api"}"#)
            _ = try await client.waitForBinding("payments", "api", "web", state: "ready")
            var health = try await Self.check(client)
            #expect(Self.codes(health).contains("KubeletLacksOperator"), "\(health)")
            // Granted on the resource group (above the identity), as AKS docs advise.
            let mio = "/subscriptions/\(devSubscription)/providers/Microsoft.Authorization/roleDefinitions/\(HealthSweeper.managedIdentityOperator)"
            let granted = try await send("PUT", "\(sims.azureURL)\(devGroupScope)/providers/Microsoft.Authorization/roleAssignments/\(UUID().uuidString.lowercased())?api-version=2022-04-01",
                                         body: #"{"properties":{"roleDefinitionId":"\#(mio)","principalId":"\#(kubelet)","principalType":"ServicePrincipal"}}"#)
            #expect(granted.status == 201, "\(granted.text)")
            health = try await Self.check(client)
            #expect(!Self.codes(health).contains("KubeletLacksOperator"), "\(health)")
        }
    }

    @Test("a check asked for while another sweep holds the cluster waits for it and then sweeps: its answer is observed after the request")
    func checkDuringRunningSweep() async throws {
        try await withWorkerApp { client, database, sims in
            try await Self.readyBinding(client, sims)
            let path = "/v1/teams/payments/identities/api/bindings/web/health"
            let asked = Date().addingTimeInterval(-0.001)
            // Another replica's sweep of `local` (its session lock), running from before the request.
            try await database.withOwner { owner in
                try await owner.withConnection { connection in
                    _ = try await connection.query("SELECT pg_advisory_lock(hashtext('podid-health:local'))", logger: TestDatabase.logger).collect()
                    let queued = try await client.call(.post, path, token: testAdminToken)
                    #expect(queued.status == .accepted, "\(queued.body)")
                    #expect(try await eventually(timeout: .seconds(30)) {
                        try await client.call(.get, "/v1/jobs?kind=health.check", token: testAdminToken).items.first?["state"] as? String == "running"
                    })
                    try await Task.sleep(for: .milliseconds(800))
                    _ = try await connection.query("SELECT pg_advisory_unlock(hashtext('podid-health:local'))", logger: TestDatabase.logger).collect()
                }
            }
            // The periodic sweep runs every 60 s here: only the check itself can answer this soon.
            let format = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
            #expect(try await eventually(timeout: .seconds(30)) {
                let json = try await client.call(.get, path, token: testAdminToken).json
                guard let text = json["observedAt"] as? String, let observed = try? format.parse(text) else { return false }
                return observed >= asked
            })
            // (A periodic sweep may take the lock first; the check then waits for it too.)
            #expect(try await eventually(timeout: .seconds(60)) {
                try await client.call(.get, "/v1/jobs?kind=health.check", token: testAdminToken).items.first?["state"] as? String == "succeeded"
            })
            let job = try await client.call(.get, "/v1/jobs?kind=health.check", token: testAdminToken).items.first
            let steps = job?["steps"] as? [[String: Any]] ?? []
            #expect(steps.last?["outcome"] as? String == "succeeded", "\(steps)")
        }
    }

    @Test("a repair queued from a stale read of a binding deleted since brings nothing back; an apply that finds its objects already as wanted audits them once")
    func repairAfterDeletion() async throws {
        try await withWorkerApp { client, database, sims in
            try await Self.readyBinding(client, sims)
            let stale = try #require(try await database.withRuntimeStore { try await $0.bindings.get(team: "payments", identity: "api", name: "web", lock: .none) })
            let aibPath = "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(aibName("payments", "api", "web"))"
            let aiPath = "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(aiName("payments", "api"))"

            // An apply that finds both objects as wanted, with the events of their writing lost
            // (a worker stopped between writing and recording): audited now, once.
            _ = try await database.withOwner {
                try await $0.query("DELETE FROM audit_events WHERE action LIKE 'k8s.%.applied'", logger: TestDatabase.logger).collect()
            }
            for round in 1...2 {
                let id = try await database.withRuntimeStore { store in
                    try await store.transaction { try await $0.jobs.enqueue(BindingApply.job(stale, requestId: "again-\(round)")) }
                }
                #expect(try await eventually {
                    try await client.call(.get, "/v1/jobs/\(id.uuidString.lowercased())", token: testAdminToken).json["state"] as? String == "succeeded"
                })
                let applied = try await database.auditRows().filter { $0.action.hasPrefix("k8s.") && $0.action.hasSuffix(".applied") }
                #expect(applied.count == 2, "round \(round): \(applied.map(\.action))")
            }

            // The binding is deleted; a repair a sweep queued from its earlier read runs after that.
            #expect(try await send("DELETE", "\(sims.kubeURL)\(aibPath)").status == 200)
            let deleted = try await client.call(.delete, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken)
            #expect(deleted.status == .accepted, "\(deleted.body)")
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/payments/identities/api/bindings/web", token: testAdminToken).status == .notFound
            })
            let repair = try await database.withRuntimeStore { store in
                try await store.transaction { try await $0.jobs.enqueue(BindingRepair.job(stale, requestId: nil)) }
            }
            #expect(try await eventually {
                try await client.call(.get, "/v1/jobs/\(repair.uuidString.lowercased())", token: testAdminToken).json["state"] as? String == "succeeded"
            })
            #expect(try await sims.kubeObject(aibPath) == nil, "the deleted binding's AzureIdentityBinding stays deleted")
            #expect(try await sims.kubeObject(aiPath) == nil, "and so does its AzureIdentity")
            #expect(try await !database.auditRows().contains { $0.action.hasSuffix(".reapplied") })
        }
    }

    @Test("a sweep over 10,000 pods and 1,000 bindings lists by pages and makes no request per binding")
    func scale() async throws {
        try await withWorkerApp(workers: 1) { client, database, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("payments", policy: bindingPolicy())
            sims.kube.configure { $0.micRunning = false }
            // 1,000 ready identities and bindings, their objects in the cluster, 10 labelled pods each.
            _ = try await database.withOwner { owner in
                try await owner.query(
                    """
                    INSERT INTO identities (team, name, subscription_id, resource_group, location, state, resource_id, client_id, principal_id,
                                            generation, observed_generation)
                    SELECT 'payments', 'id-' || g, \(devSubscription), 'podid-dev', 'westeurope', 'ready',
                           '/subscriptions/\(unescaped: devSubscription)/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-' || g,
                           'client-' || g, 'principal-' || g, 1, 1
                    FROM generate_series(1, 1000) AS g
                    """, logger: TestDatabase.logger).collect()
                try await owner.query(
                    """
                    INSERT INTO bindings (team, identity, name, cluster, namespace, selector, state, generation, observed_generation)
                    SELECT 'payments', 'id-' || g, 'web', 'local', 'aad-broker', 'sel-' || g, 'ready', 1, 1 FROM generate_series(1, 1000) AS g
                    """, logger: TestDatabase.logger).collect()
            }
            var pods: [(name: String, namespace: String, labels: [String: String])] = []
            for index in 1...1000 {
                let binding = Binding(team: "payments", identity: "id-\(index)", name: "web", cluster: "local", namespace: "aad-broker",
                                      selector: "sel-\(index)", state: .ready, observedGeneration: 1)
                let resourceId = "/subscriptions/\(devSubscription)/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-\(index)"
                sims.kube.seedObject(group: "aadpodidentity.k8s.io", plural: "azureidentities", namespace: "aad-broker", name: binding.azureIdentityObjectName,
                                     object: JSON.parse(Data(binding.azureIdentityObject(resourceID: resourceId, clientID: "client-\(index)").json.canonicalText.utf8)) ?? .null)
                sims.kube.seedObject(group: "aadpodidentity.k8s.io", plural: "azureidentitybindings", namespace: "aad-broker", name: binding.bindingObjectName,
                                     object: JSON.parse(Data(binding.bindingObject.json.canonicalText.utf8)) ?? .null)
                for replica in 0..<10 { pods.append(("app-\(index)-\(replica)", "default", ["aadpodidbinding": "sel-\(index)"])) }
            }
            sims.kube.seedPods(pods)
            // The cluster's connection check is done before the count starts.
            #expect(try await eventually { try await client.call(.get, "/v1/clusters/local", token: testAdminToken).json["status"] is [String: Any] })
            sims.kube.requestLog.clear()
            sims.azure.requestLog.clear()

            let queued = try await client.call(.post, "/v1/teams/payments/identities/id-1/bindings/web/health", token: testAdminToken)
            #expect(queued.status == .accepted)
            #expect(try await eventually(timeout: .seconds(120)) {
                try await database.withOwner { owner in
                    try await owner.query("SELECT count(*)::int FROM binding_health", logger: TestDatabase.logger).collect()[0].decode(Int.self)
                } == 1000
            })
            let kube = sims.kube.requestLog.all
            let lists = kube.filter { $0.method == "GET" && !$0.path.contains("/namespaces/aad-broker/azureidentit") || $0.query.contains("limit") }
            #expect(kube.allSatisfy { $0.method == "GET" || $0.method == "POST" && $0.path.contains("selfsubjectaccessreviews") },
                    "a sweep only reads: \(Set(kube.map { "\($0.method) \($0.operation)" }))")
            // 10,000 pods in pages of 500, 1,000 objects of each kind in pages of 500: a few dozen requests in all.
            #expect(kube.count <= 40, "\(kube.count) Kubernetes requests: \(lists.map(\.path))")
            let azure = sims.azure.requestLog.all.filter { $0.operation != "token.entra" }
            #expect(azure.allSatisfy { $0.operation == "identity.list" }, "\(Set(azure.map(\.operation)))")
            #expect(azure.count <= 15, "one identity list (paged) for the resource group: \(azure.count)")
            let statuses = try await database.withOwner { owner in
                try await owner.query("SELECT DISTINCT status FROM binding_health", logger: TestDatabase.logger).collect().map { try $0.decode(String.self) }
            }
            #expect(statuses == ["unhealthy"], "MIC is stopped and the identities are not in Azure")
        }
    }
}
