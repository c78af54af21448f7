import Foundation
import HTTPTypes

/// The simulated MIC (Managed Identity Controller), as aad-pod-identity v1.8 behaves: for each pod
/// whose `aadpodidbinding` label equals a binding's selector it keeps an AzureAssignedIdentity
/// `<pod>-<podNamespace>-<identity>` (in `default`, or in the identity's namespace when namespaced),
/// created `Created`, moved to `Assigned` only when the identity exists in Azure with that client id,
/// and removed when the pod, binding or identity goes.
extension KubeSimulator {
    static let assignedFinalizer = "azureassignedidentity.finalizers.aadpodidentity.k8s.io"
    static let resourceIDPattern = "^/subscriptions/(.+?)/resourcegroups/(.+?)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/(.+)$"

    /// Namespaces `default`, `kube-system` and the broker namespace, with MIC and NMI pods.
    public func seed() {
        for namespace in ["default", "kube-system", brokerNamespace] where object("namespaces", namespace: nil, name: namespace) == nil {
            _ = commitCreate(resource(group: "", plural: "namespaces")!, namespace: nil, name: namespace,
                             object: ["metadata": ["name": .string(namespace)]], manager: "podid-sim", operation: "Update")
        }
        reconcileBrokerPods()
    }

    /// MIC pods exist while the MIC runs; one NMI pod per node, ready unless a fault says otherwise.
    func reconcileBrokerPods() {
        guard let pods = resource(group: "", plural: "pods") else { return }
        let running = settings.withLock { $0.micRunning }
        for index in 0..<2 {
            let name = "mic-5f7b6d8c9-\(["a1b2c", "d3e4f"][index])"
            let exists = object("pods", namespace: brokerNamespace, name: name) != nil
            if running && !exists {
                _ = commitCreate(pods, namespace: brokerNamespace, name: name, object: [
                    "metadata": ["name": .string(name), "labels": ["app.kubernetes.io/component": "mic", "component": "mic", "app": "mic"]],
                    "spec": ["nodeName": .string(Self.nodes[index]),
                             "containers": .array([["name": "mic", "image": "mcr.microsoft.com/oss/azure/aad-pod-identity/mic:v1.8.17"]])],
                ], manager: "podid-sim", operation: "Update")
            } else if !running && exists {
                _ = delete(pods, namespace: brokerNamespace, name: name, body: [])
            }
        }
        for (index, node) in Self.nodes.enumerated() {
            let name = "nmi-\(["x7k2p", "q9m4w"][index])"
            if let current = object("pods", namespace: brokerNamespace, name: name) {
                let wanted = podReadiness(current)
                if wanted[["status", "conditions"]] != current[["status", "conditions"]] {
                    _ = update(pods, namespace: brokerNamespace, name: name, manager: "podid-sim", expectedRV: nil) { _, _ in .success(wanted) }
                }
            } else {
                _ = commitCreate(pods, namespace: brokerNamespace, name: name, object: [
                    "metadata": ["name": .string(name), "labels": ["app.kubernetes.io/component": "nmi", "component": "nmi", "app": "nmi"]],
                    "spec": ["nodeName": .string(node), "hostNetwork": true,
                             "containers": .array([["name": "nmi", "image": "mcr.microsoft.com/oss/azure/aad-pod-identity/nmi:v1.8.17"]])],
                ], manager: "podid-sim", operation: "Update")
            }
        }
    }

    struct Desired {
        var namespace: String
        var name: String
        var pod: JSON
        var binding: JSON
        var identity: JSON
    }

    /// One MIC pass; the simulator runs it every 250 ms while the MIC runs.
    public func micSync(now: Date = Date()) {
        let current = settings.withLock { $0 }
        guard current.micRunning, current.crdsServed,
              let assigned = resource(group: KubeSchema.podIdentityGroup, plural: "azureassignedidentities")
        else { return }
        let namespaced = current.micMode == "namespaced"
        let bindings = objects("azureidentitybindings").sorted {
            ($0[["metadata", "namespace"]]?.string ?? "", $0[["metadata", "name"]]?.string ?? "")
                < ($1[["metadata", "namespace"]]?.string ?? "", $1[["metadata", "name"]]?.string ?? "")
        }
        var identities: [String: JSON] = [:]
        for identity in objects("azureidentities") where identity[["metadata", "deletionTimestamp"]] == nil {
            identities["\(identity[["metadata", "namespace"]]?.string ?? "")/\(identity[["metadata", "name"]]?.string ?? "")"] = identity
        }
        var desired: [String: Desired] = [:]
        for pod in objects("pods") where pod[["metadata", "deletionTimestamp"]] == nil && pod[["spec", "nodeName"]]?.string != nil {
            guard let selector = pod[["metadata", "labels", "aadpodidbinding"]]?.string else { continue }
            let podName = pod[["metadata", "name"]]?.string ?? ""
            let podNamespace = pod[["metadata", "namespace"]]?.string ?? ""
            for binding in bindings where binding[["spec", "selector"]]?.string == selector {
                let bindingNamespace = binding[["metadata", "namespace"]]?.string ?? ""
                if namespaced && bindingNamespace != podNamespace { continue }
                guard let identityName = binding[["spec", "azureIdentity"]]?.string,
                      let identity = identities["\(bindingNamespace)/\(identityName)"]
                else { continue }
                let type = identity[["spec", "type"]]?.int ?? 0
                if type == 0 {
                    // MIC silently skips identities whose resourceID does not parse.
                    let resourceID = identity[["spec", "resourceID"]]?.string ?? ""
                    guard resourceID.range(of: Self.resourceIDPattern, options: [.regularExpression, .caseInsensitive]) != nil else { continue }
                }
                let name = "\(podName)-\(podNamespace)-\(identityName)"
                let namespace = namespaced ? bindingNamespace : "default"
                desired["\(namespace)/\(name)"] = Desired(namespace: namespace, name: name, pod: pod, binding: binding, identity: identity)
            }
        }

        var existing: [String: JSON] = [:]
        for object in objects("azureassignedidentities") {
            existing["\(object[["metadata", "namespace"]]?.string ?? "")/\(object[["metadata", "name"]]?.string ?? "")"] = object
        }
        // Create what is missing.
        for (key, want) in desired.sorted(by: { $0.key < $1.key }) where existing[key] == nil {
            if object("namespaces", namespace: nil, name: want.namespace) == nil { continue }
            let node = want.pod[["spec", "nodeName"]]?.string ?? ""
            _ = commitCreate(assigned, namespace: want.namespace, name: want.name, object: [
                "metadata": [
                    "name": .string(want.name), "labels": ["nodename": .string(node)],
                    "finalizers": .array([.string(Self.assignedFinalizer)]),
                ],
                "spec": [
                    "azureIdentityRef": Self.embedded(want.identity), "azureBindingRef": Self.embedded(want.binding),
                    "pod": want.pod[["metadata", "name"]] ?? .null, "podNamespace": want.pod[["metadata", "namespace"]] ?? .null,
                    "nodename": .string(node),
                ],
                "status": ["status": "Created", "availableReplicas": .int(1)],
            ], manager: "mic", operation: "Update")
            store.set("mic", key, ["createdAt": .double(now.timeIntervalSince1970)])
        }
        for (key, object) in existing.sorted(by: { $0.key < $1.key }) {
            let namespace = object[["metadata", "namespace"]]?.string
            let name = object[["metadata", "name"]]?.string ?? ""
            guard let want = desired[key] else {
                // The pod, binding or identity went: unassign, drop the finalizer, delete.
                _ = update(assigned, namespace: namespace, name: name, manager: "mic", expectedRV: nil) { current, _ in
                    var changed = current
                    changed[["status", "status"]] = "Unassigned"
                    changed[["metadata", "finalizers"]] = .array([])
                    return .success(changed)
                }
                _ = delete(assigned, namespace: namespace, name: name, body: [])
                store.set("mic", key, nil)
                continue
            }
            let identityRV = want.identity[["metadata", "resourceVersion"]]
            let bindingRV = want.binding[["metadata", "resourceVersion"]]
            if object[["spec", "azureIdentityRef", "metadata", "resourceVersion"]] != identityRV
                || object[["spec", "azureBindingRef", "metadata", "resourceVersion"]] != bindingRV
            {
                // An edited identity or binding re-drives the assignment.
                _ = update(assigned, namespace: namespace, name: name, manager: "mic", expectedRV: nil) { current, _ in
                    var changed = current
                    changed[["spec", "azureIdentityRef"]] = Self.embedded(want.identity)
                    changed[["spec", "azureBindingRef"]] = Self.embedded(want.binding)
                    changed[["status", "status"]] = "Created"
                    return .success(changed)
                }
                store.set("mic", key, ["createdAt": .double(now.timeIntervalSince1970)])
                continue
            }
            guard object[["status", "status"]]?.string == "Created" else { continue }
            // When the assignment was (re)created; another MIC pass may not have recorded it yet, so
            // fall back to the object's creation time rather than to "long ago".
            let createdAt: Double
            if case .double(let value)? = store.get("mic", key)?["createdAt"] {
                createdAt = value
            } else if let stamp = object[["metadata", "creationTimestamp"]]?.string,
                      let created = try? Date(stamp, strategy: Date.ISO8601FormatStyle()) {
                createdAt = created.timeIntervalSince1970
            } else {
                createdAt = now.timeIntervalSince1970
            }
            guard now.timeIntervalSince1970 - createdAt >= Double(current.assignDelayMs) / 1000 else { continue }
            let identityName = want.identity[["metadata", "name"]]?.string ?? ""
            let clientID = want.identity[["spec", "clientID"]]?.string ?? ""
            let resourceID = want.identity[["spec", "resourceID"]]?.string ?? ""
            let stuck = current.stuckIdentities.contains {
                $0 == identityName || $0.lowercased() == clientID.lowercased() || $0.lowercased() == resourceID.lowercased()
            }
            if stuck { continue }
            let type = want.identity[["spec", "type"]]?.int ?? 0
            if type == 0 && !identityExists(resourceID, clientID) { continue }
            _ = update(assigned, namespace: namespace, name: name, manager: "mic", expectedRV: nil) { current, _ in
                var changed = current
                changed[["status", "status"]] = "Assigned"
                return .success(changed)
            }
        }
    }

    /// A copy of an object as MIC embeds it (without managedFields).
    static func embedded(_ object: JSON) -> JSON {
        var copy = object
        copy[["metadata", "managedFields"]] = nil
        return copy
    }

    /// Runs the simulated cluster's background work until cancelled: the deployment, replica set
    /// and garbage collector controllers (`KubeSimulator+Controllers.swift`) every `interval`, which
    /// costs next to nothing while nothing changes; then the MIC and the namespace controller's
    /// cleanup, a pass every `interval` while the cluster changes, and at least every
    /// `idleInterval` when it does not (Azure identities appearing, assignments getting stuck). A
    /// MIC pass over tens of thousands of pods is not free, and an idle one found nothing to do.
    public func runMIC(interval: Duration = .milliseconds(250), idleInterval: Duration = .seconds(1)) async {
        var controllers = KubeControllerState()
        while !Task.isCancelled {
            // First, so that the MIC sees the pods the controllers made in the same pass.
            runControllers(&controllers)
            let version = currentResourceVersion
            let due = micDue.withLock { last in
                guard let last else { return true }
                return last.resourceVersion != version || ContinuousClock.now - last.at >= idleInterval
            }
            if due {
                micSync()
                finalizeNamespaces()
                micDue.withLock { $0 = (currentResourceVersion, ContinuousClock.now) }
            }
            try? await Task.sleep(for: interval)
        }
    }
}

extension KubeSimulator {
    /// Creates running pods directly (benchmarks and scale tests: thousands of pods without
    /// thousands of requests), spread over the simulated nodes. The simulated MIC treats them as
    /// any other pod.
    public func seedPods(_ pods: [(name: String, namespace: String, labels: [String: String])]) {
        guard let resource = resource(group: "", plural: "pods") else { return }
        for (index, pod) in pods.enumerated() {
            var labels: [String: JSON] = [:]
            for (key, value) in pod.labels { labels[key] = .string(value) }
            _ = commitCreate(resource, namespace: pod.namespace, name: pod.name, object: [
                "metadata": ["name": .string(pod.name), "labels": .object(labels)],
                "spec": ["nodeName": .string(Self.nodes[index % Self.nodes.count]),
                         "containers": .array([["name": "app", "image": "nginx"]])],
            ], manager: "podid-sim", operation: "Update")
        }
    }
}

extension KubeSimulator {
    /// Creates an object of any served kind directly (benchmarks and scale tests).
    public func seedObject(group: String, plural: String, namespace: String?, name: String, object: JSON) {
        guard let resource = resource(group: group, plural: plural) else { return }
        _ = commitCreate(resource, namespace: namespace, name: name, object: object, manager: "podid-sim", operation: "Update")
    }
}
