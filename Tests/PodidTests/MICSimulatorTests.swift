import Foundation
import Simulators
import Testing

/// The simulated MIC against the behaviour in aad-pod-identity's reference.
@Suite("Simulated MIC", .timeLimit(.minutes(5)))
struct MICSimulatorTests {
    static let group = "/apis/aadpodidentity.k8s.io/v1"

    /// Creates an identity in the Azure simulator and the matching AzureIdentity and binding.
    static func bind(_ sims: RunningSimulators, identity: String, selector: String, inAzure: Bool = true, namespace: String = "aad-broker") async throws {
        var clientID = "11111111-1111-1111-1111-111111111111"
        if inAzure {
            let created = try await send("PUT", AzureSimulatorTests.identityURL(sims.azureURL, identity), body: #"{"location":"westeurope"}"#)
            clientID = created.json[["properties", "clientId"]]?.string ?? ""
        }
        #expect(try await send("POST", "\(sims.kubeURL)\(group)/namespaces/\(namespace)/azureidentities",
                               body: KubeSimulatorTests.identityJSON(identity, namespace: namespace, clientID: clientID)).status == 201)
        #expect(try await send("POST", "\(sims.kubeURL)\(group)/namespaces/\(namespace)/azureidentitybindings",
                               body: KubeSimulatorTests.bindingJSON("\(identity)-binding", identity: identity, selector: selector, namespace: namespace)).status == 201)
    }

    static func createPod(_ sims: RunningSimulators, _ name: String, namespace: String, selector: String) async throws {
        _ = try await send("POST", "\(sims.kubeURL)/api/v1/namespaces", body: #"{"metadata":{"name":"\#(namespace)"}}"#)
        #expect(try await send("POST", "\(sims.kubeURL)/api/v1/namespaces/\(namespace)/pods",
                               body: KubeSimulatorTests.podJSON(name, labels: ["aadpodidbinding": selector])).status == 201)
    }

    /// The assignments by name with their status, after the MIC had time to act.
    static func assignments(_ sims: RunningSimulators, waitMs: Int = 0) async throws -> [String: String] {
        if waitMs > 0 { try await Task.sleep(for: .milliseconds(waitMs)) }
        let list = try await send("GET", "\(sims.kubeURL)\(group)/azureassignedidentities")
        var result: [String: String] = [:]
        for item in list.json["items"]?.array ?? [] {
            result["\(item[["metadata", "namespace"]]?.string ?? "")/\(item[["metadata", "name"]]?.string ?? "")"] = item[["status", "status"]]?.string ?? ""
        }
        return result
    }

    @Test("a labelled pod in another namespace gets <pod>-<ns>-<identity> in default: Created, then Assigned; it goes with the pod")
    func assigns() async throws {
        try await withSimulators { sims in
            sims.kube.configure { $0.assignDelayMs = 600_000 }
            try await Self.bind(sims, identity: "payments-api", selector: "payments-api")
            try await Self.createPod(sims, "api-0", namespace: "payments", selector: "payments-api")
            sims.kube.micSync()
            #expect(try await Self.assignments(sims) == ["default/api-0-payments-payments-api": "Created"])
            let object = try await send("GET", "\(sims.kubeURL)\(Self.group)/namespaces/default/azureassignedidentities/api-0-payments-payments-api")
            #expect(object.json[["spec", "pod"]] == "api-0")
            #expect(object.json[["spec", "podNamespace"]] == "payments")
            #expect(object.json[["spec", "azureIdentityRef", "metadata", "name"]] == "payments-api")
            #expect(object.json[["metadata", "finalizers"]] == ["azureassignedidentity.finalizers.aadpodidentity.k8s.io"])
            #expect(object.json[["metadata", "labels", "nodename"]]?.string != nil)
            sims.kube.configure { $0.assignDelayMs = 0 }
            sims.kube.micSync()
            #expect(try await Self.assignments(sims) == ["default/api-0-payments-payments-api": "Assigned"])

            #expect(try await send("DELETE", "\(sims.kubeURL)/api/v1/namespaces/payments/pods/api-0").status == 200)
            sims.kube.micSync()
            #expect(try await Self.assignments(sims).isEmpty)
        }
    }

    @Test("an identity missing in Azure, or stuck by the fault switch, stays Created; a malformed resourceID is skipped")
    func staysCreated() async throws {
        try await withSimulators { sims in
            sims.kube.configure { $0.assignDelayMs = 0 }
            try await Self.bind(sims, identity: "ghost", selector: "sel", inAzure: false)
            try await Self.bind(sims, identity: "stuck", selector: "sel")
            // Capitalised keys are pruned, leaving no resourceID: MIC ignores the identity.
            _ = try await send("POST", "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentities",
                               body: #"{"metadata":{"name":"legacy"},"spec":{"type":0,"ResourceID":"/subscriptions/x/resourcegroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/legacy","ClientID":"c"}}"#)
            _ = try await send("POST", "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentitybindings",
                               body: KubeSimulatorTests.bindingJSON("legacy-binding", identity: "legacy", selector: "sel"))
            sims.kube.configure { $0.stuckIdentities = ["stuck"] }
            try await Self.createPod(sims, "p", namespace: "apps", selector: "sel")
            sims.kube.micSync()
            sims.kube.micSync()
            #expect(try await Self.assignments(sims) == ["default/p-apps-ghost": "Created", "default/p-apps-stuck": "Created"])
            sims.kube.configure { $0.stuckIdentities = [] }
            sims.kube.micSync()
            #expect(try await Self.assignments(sims)["default/p-apps-stuck"] == "Assigned")
            #expect(try await Self.assignments(sims)["default/p-apps-ghost"] == "Created")
        }
    }

    @Test("namespaced mode matches only pods in the binding's namespace and puts the assignment there")
    func namespacedMode() async throws {
        try await withSimulators { sims in
            sims.kube.configure { $0.micMode = "namespaced"; $0.assignDelayMs = 0 }
            _ = try await send("POST", "\(sims.kubeURL)/api/v1/namespaces", body: #"{"metadata":{"name":"apps"}}"#)
            try await Self.bind(sims, identity: "app-id", selector: "sel", namespace: "apps")
            try await Self.createPod(sims, "inside", namespace: "apps", selector: "sel")
            try await Self.createPod(sims, "outside", namespace: "other", selector: "sel")
            sims.kube.micSync()
            sims.kube.micSync()
            #expect(try await Self.assignments(sims) == ["apps/inside-apps-app-id": "Assigned"])
        }
    }

    @Test("a stopped MIC has no pods and assigns nothing; NMI not ready shows on its pod")
    func brokerFaults() async throws {
        try await withSimulators { sims in
            let broker = "\(sims.kubeURL)/api/v1/namespaces/aad-broker/pods"
            let before = try await send("GET", "\(broker)?labelSelector=component%3Dmic")
            #expect(before.json["items"]?.array?.count == 2)
            _ = try await send("PATCH", "\(sims.kubeURL)/_sim/settings", body: #"{"micRunning":false,"nmiNotReadyNodes":["*"]}"#, token: nil)
            #expect(try await send("GET", "\(broker)?labelSelector=component%3Dmic").json["items"]?.array?.isEmpty == true)
            let nmi = try await send("GET", "\(broker)?labelSelector=component%3Dnmi")
            let ready = (nmi.json["items"]?.array ?? []).map { pod in
                (pod[["status", "conditions"]]?.array ?? []).first { $0["type"] == "Ready" }?["status"]?.string
            }
            #expect(ready == ["False", "False"])
            try await Self.bind(sims, identity: "app-id", selector: "sel")
            try await Self.createPod(sims, "p", namespace: "apps", selector: "sel")
            sims.kube.micSync()
            #expect(try await Self.assignments(sims).isEmpty)
            _ = try await send("PATCH", "\(sims.kubeURL)/_sim/settings", body: #"{"micRunning":true,"nmiNotReadyNodes":[]}"#, token: nil)
            sims.kube.micSync()
            #expect(try await Self.assignments(sims).count == 1)
        }
    }
}
