import Foundation
import HTTPTypes

/// The kube-controller-manager controllers the simulator plays for the workload kinds:
/// - the deployment controller: a ReplicaSet `<deployment>-<pod-template-hash>` per pod template,
///   rolling updates (maxSurge / maxUnavailable) and Recreate, revisions, history cleanup, and the
///   status and conditions `kubectl rollout status` reads;
/// - the replica set controller: pods `<replicaset>-<5 chars>` from the template, scaled up and down,
///   adopted and released by selector, replaced when deleted;
/// - the garbage collector: dependents of deleted owners (by `ownerReferences`), the `orphan` and
///   `foregroundDeletion` finalizers.
/// A pass acts only on what the store's change feed says changed since the last one (and on
/// deadlines that came due), from indexes kept up to date with that feed — never on a rescan of
/// every object, so that a cluster of tens of thousands of pods costs nothing while it is idle.
extension KubeSimulator {
    /// The field manager (and event reporter) of the controllers' writes.
    static let controllerManager = "kube-controller-manager"
    /// The revision of a deployment and of each of its ReplicaSets.
    static let revisionAnnotation = "deployment.kubernetes.io/revision"
    /// Earlier revisions of a ReplicaSet rolled back to.
    static let revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
    /// The deployment's replicas when the ReplicaSet was last scaled.
    static let desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
    /// Replicas plus maxSurge when the ReplicaSet was last scaled.
    static let maxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
    /// Deployment annotations the controller does not copy to its ReplicaSets.
    static let annotationsNotCopied: Set<String> = [
        "kubectl.kubernetes.io/last-applied-configuration", revisionAnnotation, revisionHistoryAnnotation,
        desiredReplicasAnnotation, maxReplicasAnnotation, "deprecated.deployment.rollback.to",
    ]
    /// How long events live, as kube-apiserver's `--event-ttl` default.
    static let eventTTL: Duration = .seconds(3600)

    /// One controller pass: absorbs the store's changes, then collects garbage and syncs the
    /// deployments and replica sets that changed (or whose pods did), repeating while that work
    /// writes more (a rollout takes a few rounds), up to `rounds`.
    func runControllers(_ state: inout KubeControllerState, rounds: Int = 25) {
        for _ in 0..<rounds {
            absorbChanges(&state)
            let now = ContinuousClock.now
            for (key, due) in state.due where due <= now {
                state.due[key] = nil
                if key.hasPrefix("deployments|") { state.dirtyDeployments.insert(key) }
                if key.hasPrefix("replicasets|") { state.dirtyReplicaSets.insert(key) }
            }
            expireEvents(&state, now: now)
            if state.gcCandidates.isEmpty && state.finalizing.isEmpty && state.dirtyDeployments.isEmpty && state.dirtyReplicaSets.isEmpty {
                return
            }
            let before = store.followedPosition
            collectGarbage(&state)
            let deployments = state.dirtyDeployments.sorted()
            state.dirtyDeployments = []
            for key in deployments { syncDeployment(key, &state) }
            let replicaSets = state.dirtyReplicaSets.sorted()
            state.dirtyReplicaSets = []
            for key in replicaSets { syncReplicaSet(key, &state) }
            // Nothing written: the rest (objects waiting on finalizers) waits for the next change.
            if store.followedPosition == before { return }
        }
    }

    // MARK: indexes

    /// Brings the indexes up to date with the store: everything at the first pass (or when the
    /// feed lost track), then only the keys written since.
    func absorbChanges(_ state: inout KubeControllerState) {
        if let position = state.position, let (changes, next) = store.changes(since: position) {
            state.position = next
            var seen = Set<String>()
            for change in changes where seen.insert(change.key).inserted { reindex(change.key, &state) }
            return
        }
        let due = state.due
        state = KubeControllerState()
        state.due = due
        state.position = store.follow("objects")
        for (key, _) in store.all("objects").sorted(by: { $0.key < $1.key }) { reindex(key, &state) }
    }

    /// Re-reads one object and updates what the indexes say about it, marking the controllers'
    /// work it causes.
    func reindex(_ key: String, _ state: inout KubeControllerState) {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { return }
        let plural = parts[0]
        let namespace = parts[1]
        let oldUID = state.uidOf[key]
        let oldOwners = state.ownersOf[key] ?? []
        if let oldUID, state.keyOf[oldUID] == key { state.keyOf[oldUID] = nil }
        for owner in oldOwners {
            state.dependents[owner.uid]?.remove(key)
            if state.dependents[owner.uid]?.isEmpty == true { state.dependents[owner.uid] = nil }
        }
        state.uidOf[key] = nil
        state.ownersOf[key] = nil
        state.finalizing.remove(key)
        state.orphanPods[namespace]?.remove(key)

        let current = store.get("objects", key)
        let uid = current?[["metadata", "uid"]]?.string
        if let oldUID, oldUID != uid, let dependents = state.dependents[oldUID] {
            // The owner went (or was replaced by a namesake): its dependents' references dangle.
            state.gcCandidates.formUnion(dependents)
        }
        let owners = current.map(KubeControllerState.OwnerRef.all) ?? []
        // The controllers of the old and the new version both have something to look at.
        for owner in oldOwners + owners where owner.controller {
            guard let ownerKey = state.keyOf[owner.uid] else { continue }
            if ownerKey.hasPrefix("deployments|") { state.dirtyDeployments.insert(ownerKey) }
            if ownerKey.hasPrefix("replicasets|") { state.dirtyReplicaSets.insert(ownerKey) }
        }
        guard let current, let uid else {
            switch plural {
            case "deployments": state.deployments[namespace]?.remove(key)
            case "replicasets":
                state.replicaSets[namespace]?.remove(key)
                state.selectors[key] = nil
                state.selectorJSON[key] = nil
                state.adoptionCandidates[key] = nil
                state.adoptionScans.remove(key)
            default: break
            }
            return
        }
        state.uidOf[key] = uid
        state.keyOf[uid] = key
        if !owners.isEmpty {
            state.ownersOf[key] = owners
            for owner in owners { state.dependents[owner.uid, default: []].insert(key) }
            state.gcCandidates.insert(key)
        }
        let deleting = current[["metadata", "deletionTimestamp"]] != nil
        let finalizers = (current[["metadata", "finalizers"]]?.array ?? []).compactMap(\.string)
        if deleting && (finalizers.contains(Self.orphanFinalizer) || finalizers.contains(Self.foregroundFinalizer)) {
            state.finalizing.insert(key)
        }
        let labels = current[["metadata", "labels"]]?.stringMap ?? [:]
        let controlled = owners.contains { $0.controller }
        switch plural {
        case "deployments":
            state.deployments[namespace, default: []].insert(key)
            state.dirtyDeployments.insert(key)
        case "replicasets":
            state.replicaSets[namespace, default: []].insert(key)
            let selector = LabelSelector(json: current[["spec", "selector"]])
            if oldUID != uid || state.selectorJSON[key] != current[["spec", "selector"]] {
                // A new replica set (or a new selector) looks at every orphan pod of its namespace.
                state.adoptionScans.insert(key)
            }
            state.selectors[key] = selector
            state.selectorJSON[key] = current[["spec", "selector"]]
            state.dirtyReplicaSets.insert(key)
            if !controlled && !deleting {
                for deployment in state.deployments[namespace] ?? [] { state.dirtyDeployments.insert(deployment) }
            }
        case "pods":
            if !controlled && !deleting {
                state.orphanPods[namespace, default: []].insert(key)
                for replicaSet in state.replicaSets[namespace] ?? [] {
                    guard let selector = state.selectors[replicaSet], !selector.requirements.isEmpty, selector.matches(labels) else { continue }
                    state.adoptionCandidates[replicaSet, default: []].insert(key)
                    state.dirtyReplicaSets.insert(replicaSet)
                }
            }
        case "events":
            if oldUID != uid { state.events.append((ContinuousClock.now + Self.eventTTL, key)) }
        default:
            break
        }
    }

    // MARK: garbage collector

    /// Deletes dependents whose owners are all gone (dropping the references to gone owners from
    /// the others), and finishes `orphan` and `foregroundDeletion` deletions.
    func collectGarbage(_ state: inout KubeControllerState) {
        for key in state.finalizing.sorted() {
            guard let owner = store.get("objects", key), owner[["metadata", "deletionTimestamp"]] != nil,
                  let uid = owner[["metadata", "uid"]]?.string
            else { continue }
            let finalizers = (owner[["metadata", "finalizers"]]?.array ?? []).compactMap(\.string)
            let dependents = (state.dependents[uid] ?? []).sorted().compactMap { dependentKey -> (String, JSON)? in
                guard let dependent = store.get("objects", dependentKey),
                      KubeControllerState.OwnerRef.all(dependent).contains(where: { $0.uid == uid })
                else { return nil }
                return (dependentKey, dependent)
            }
            if finalizers.contains(Self.orphanFinalizer) {
                for (dependentKey, _) in dependents {
                    edit(dependentKey) { dependent in
                        let kept = (dependent[["metadata", "ownerReferences"]]?.array ?? []).filter { $0["uid"]?.string != uid }
                        dependent[["metadata", "ownerReferences"]] = kept.isEmpty ? nil : .array(kept)
                    }
                }
                removeFinalizer(Self.orphanFinalizer, from: key)
            } else if finalizers.contains(Self.foregroundFinalizer) {
                var blocked = false
                for (dependentKey, dependent) in dependents {
                    if dependent[["metadata", "deletionTimestamp"]] == nil, let dependentResource = resource(forKey: dependentKey) {
                        // A dependent with dependents of its own goes in the foreground too.
                        let hasDependents = dependent[["metadata", "uid"]]?.string.flatMap { state.dependents[$0] }?.isEmpty == false
                        let options: JSON = ["kind": "DeleteOptions", "apiVersion": "v1",
                                             "propagationPolicy": hasDependents ? "Foreground" : "Background"]
                        _ = delete(dependentResource, namespace: dependent[["metadata", "namespace"]]?.string,
                                   name: dependent[["metadata", "name"]]?.string ?? "", body: Array(options.data))
                    }
                    let blocking = KubeControllerState.OwnerRef.all(dependent).contains { $0.uid == uid && $0.blockOwnerDeletion }
                    if blocking && store.get("objects", dependentKey) != nil { blocked = true }
                }
                if !blocked { removeFinalizer(Self.foregroundFinalizer, from: key) }
            }
        }
        let candidates = state.gcCandidates.sorted()
        state.gcCandidates = []
        for key in candidates {
            guard let dependent = store.get("objects", key), dependent[["metadata", "deletionTimestamp"]] == nil,
                  let resource = resource(forKey: key)
            else { continue }
            let owners = KubeControllerState.OwnerRef.all(dependent)
            let gone = owners.filter { state.keyOf[$0.uid] == nil }
            if gone.isEmpty { continue }
            if gone.count == owners.count {
                _ = delete(resource, namespace: dependent[["metadata", "namespace"]]?.string,
                           name: dependent[["metadata", "name"]]?.string ?? "",
                           body: Array((["kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"] as JSON).data))
            } else {
                let goneUIDs = Set(gone.map(\.uid))
                edit(key) { object in
                    object[["metadata", "ownerReferences"]] = .array((object[["metadata", "ownerReferences"]]?.array ?? []).filter {
                        !goneUIDs.contains($0["uid"]?.string ?? "")
                    })
                }
            }
        }
    }

    /// Drops one finalizer (which completes the deletion when it was the last).
    func removeFinalizer(_ finalizer: String, from key: String) {
        edit(key) { object in
            object[["metadata", "finalizers"]] = .array((object[["metadata", "finalizers"]]?.array ?? []).filter { $0.string != finalizer })
        }
    }

    /// The kind a store key belongs to.
    func resource(forKey key: String) -> KubeResource? {
        guard let plural = key.split(separator: "|", maxSplits: 1).first else { return nil }
        return resources.first { $0.plural == plural }
    }

    /// Changes one object as kube-controller-manager does (no precondition: the change is made
    /// to the stored version); the object after, or nil when the write was refused.
    @discardableResult
    func edit(_ key: String, subresource: String? = nil, _ change: (inout JSON) -> Void) -> JSON? {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let resource = resource(forKey: key) else { return nil }
        let namespace = parts[1].isEmpty ? nil : parts[1]
        let answer = update(resource, namespace: namespace, name: parts[2], manager: Self.controllerManager, expectedRV: nil,
                            subresource: subresource) { current, _ in
            var changed = current
            change(&changed)
            return .success(changed)
        }
        guard answer.status == .ok else { return nil }
        return store.get("objects", key)
    }

    // MARK: events

    /// Records a `Normal` event about `object`, as the controllers' event recorders do.
    func recordEvent(_ object: JSON, resource: KubeResource, reason: String, message: String, component: String, type: String = "Normal") {
        guard let events = self.resource(group: "", plural: "events"), let namespace = object[["metadata", "namespace"]]?.string else { return }
        let involvedName = object[["metadata", "name"]]?.string ?? ""
        let nanos = UInt64(Date().timeIntervalSince1970 * 1_000_000_000) &+ UInt64.random(in: 0..<1000)
        let name = "\(involvedName).\(String(nanos, radix: 16))"
        let now = kubeTimestamp()
        _ = commitCreate(events, namespace: namespace, name: name, object: [
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "involvedObject": [
                "kind": .string(resource.kind), "namespace": .string(namespace), "name": .string(involvedName),
                "uid": object[["metadata", "uid"]] ?? .null, "apiVersion": .string(resource.apiVersion),
                "resourceVersion": object[["metadata", "resourceVersion"]] ?? .null,
            ],
            "reason": .string(reason), "message": .string(message), "source": ["component": .string(component)],
            "firstTimestamp": .string(now), "lastTimestamp": .string(now), "count": 1, "type": .string(type),
            "eventTime": .null, "reportingComponent": "", "reportingInstance": "",
        ], manager: Self.controllerManager, operation: "Update")
    }

    /// Deletes events older than the TTL.
    func expireEvents(_ state: inout KubeControllerState, now: ContinuousClock.Instant) {
        guard let first = state.events.first, first.0 <= now, let events = resource(group: "", plural: "events") else { return }
        let expired = state.events.prefix { $0.0 <= now }
        state.events.removeFirst(expired.count)
        for (_, key) in expired {
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { continue }
            _ = delete(events, namespace: parts[1], name: parts[2], body: [])
        }
    }

    // MARK: replica set controller

    /// Makes a replica set's pods match its spec: adopts matching orphans, releases pods whose
    /// labels stopped matching, creates or deletes pods, and writes its status.
    func syncReplicaSet(_ key: String, _ state: inout KubeControllerState) {
        guard let replicaSets = resource(forKey: key), let podsResource = resource(group: "", plural: "pods"),
              let replicaSet = store.get("objects", key), let uid = replicaSet[["metadata", "uid"]]?.string,
              let namespace = replicaSet[["metadata", "namespace"]]?.string
        else {
            state.adoptionCandidates[key] = nil
            state.adoptionScans.remove(key)
            return
        }
        let name = replicaSet[["metadata", "name"]]?.string ?? ""
        let deleting = replicaSet[["metadata", "deletionTimestamp"]] != nil
        let selector = LabelSelector(json: replicaSet[["spec", "selector"]])
        func matches(_ pod: JSON) -> Bool {
            guard let selector, !selector.requirements.isEmpty else { return false }
            return selector.matches(pod[["metadata", "labels"]]?.stringMap ?? [:])
        }
        var pods: [JSON] = []
        for podKey in (state.dependents[uid] ?? []).sorted() where podKey.hasPrefix("pods|") {
            guard let pod = store.get("objects", podKey), Self.controllerRef(pod)?.uid == uid else { continue }
            if matches(pod) || pod[["metadata", "deletionTimestamp"]] != nil {
                pods.append(pod)
            } else if !deleting {
                // Relabelled out of the selector: released (and replaced).
                edit(podKey) { Self.removeOwnerReference(uid, from: &$0) }
            }
        }
        var candidates = state.adoptionCandidates.removeValue(forKey: key) ?? []
        if state.adoptionScans.remove(key) != nil { candidates.formUnion(state.orphanPods[namespace] ?? []) }
        if !deleting {
            let reference = Self.ownerReference(replicaSet, resource: replicaSets)
            for podKey in candidates.sorted() {
                guard let pod = store.get("objects", podKey), Self.controllerRef(pod) == nil,
                      pod[["metadata", "deletionTimestamp"]] == nil, matches(pod)
                else { continue }
                if let adopted = edit(podKey, { Self.addOwnerReference(reference, to: &$0) }) { pods.append(adopted) }
            }
        }
        var active = pods.filter(Self.isActive)
        let desired = Int(replicaSet[["spec", "replicas"]]?.int ?? 1)
        var failure: (reason: String, message: String)?
        if !deleting && active.count < desired {
            let reference = Self.ownerReference(replicaSet, resource: replicaSets)
            // As the controller's burst limit: at most 500 pods a sync.
            for _ in 0..<min(desired - active.count, 500) {
                var pod = Self.pod(from: replicaSet, reference: reference)
                var created: JSON?
                var refusal: HTTPResponse.Status?
                for _ in 0..<3 {
                    let podName = Self.generatedName("\(name)-")
                    pod[["metadata", "name"]] = .string(podName)
                    let answer = commitCreate(podsResource, namespace: namespace, name: podName, object: pod,
                                              manager: Self.controllerManager, operation: "Update")
                    if answer.status == .created {
                        created = store.get("objects", Self.key("pods", namespace, podName))
                        break
                    }
                    refusal = answer.status
                    if answer.status != .conflict { break }
                }
                guard let created else {
                    // A terminating namespace refuses new pods; the controller does not report that.
                    let terminating = object("namespaces", namespace: nil, name: namespace)?[["metadata", "deletionTimestamp"]] != nil
                    if !(refusal == .forbidden && terminating) {
                        failure = ("FailedCreate", "pods \"\(name)-\" could not be created: the API server answered \(refusal?.code ?? 0)")
                    }
                    break
                }
                active.append(created)
                recordEvent(replicaSet, resource: replicaSets, reason: "SuccessfulCreate",
                            message: "Created pod: \(created[["metadata", "name"]]?.string ?? "")", component: "replicaset-controller")
            }
        } else if !deleting && active.count > desired {
            // Not ready first, then the most recently created.
            let ranked = active.sorted { a, b in
                let (readyA, readyB) = (Self.isReady(a), Self.isReady(b))
                if readyA != readyB { return !readyA }
                let (createdA, createdB) = (a[["metadata", "creationTimestamp"]]?.string ?? "", b[["metadata", "creationTimestamp"]]?.string ?? "")
                if createdA != createdB { return createdA > createdB }
                return (a[["metadata", "name"]]?.string ?? "") > (b[["metadata", "name"]]?.string ?? "")
            }
            for pod in ranked.prefix(active.count - desired) {
                let podName = pod[["metadata", "name"]]?.string ?? ""
                _ = delete(podsResource, namespace: namespace, name: podName, body: [])
                active.removeAll { $0[["metadata", "name"]]?.string == podName }
                recordEvent(replicaSet, resource: replicaSets, reason: "SuccessfulDelete", message: "Deleted pod: \(podName)",
                            component: "replicaset-controller")
            }
        }

        // Status.
        let templateLabels = replicaSet[["spec", "template", "metadata", "labels"]]?.stringMap ?? [:]
        let minReady = Double(replicaSet[["spec", "minReadySeconds"]]?.int ?? 0)
        var ready = 0
        var available = 0
        var nextAvailable: Double?
        let now = Date()
        for pod in active where Self.isReady(pod) {
            ready += 1
            let since = (pod[["status", "startTime"]]?.string).flatMap { try? Date($0, strategy: Date.ISO8601FormatStyle()) } ?? now
            let wait = minReady - now.timeIntervalSince(since)
            if wait <= 0 {
                available += 1
            } else {
                nextAvailable = min(nextAvailable ?? wait, wait)
            }
        }
        if let nextAvailable { state.due[key] = ContinuousClock.now + .milliseconds(Int(nextAvailable * 1000) + 50) }
        let fullyLabeled = active.filter { pod in
            let labels = pod[["metadata", "labels"]]?.stringMap ?? [:]
            return templateLabels.allSatisfy { labels[$0.key] == $0.value }
        }.count
        var status: JSON = ["replicas": .int(Int64(active.count))]
        for (field, value) in [("fullyLabeledReplicas", fullyLabeled), ("readyReplicas", ready), ("availableReplicas", available)] where value > 0 {
            status[field] = .int(Int64(value))
        }
        if let generation = replicaSet[["metadata", "generation"]]?.int { status["observedGeneration"] = .int(generation) }
        var conditions = (replicaSet[["status", "conditions"]]?.array ?? []).filter { $0["type"] != "ReplicaFailure" }
        if let failure {
            let previous = replicaSet[["status", "conditions"]]?.array?.first { $0["type"] == "ReplicaFailure" }
            conditions.append(["type": "ReplicaFailure", "status": "True", "reason": .string(failure.reason), "message": .string(failure.message),
                               "lastTransitionTime": previous?["lastTransitionTime"] ?? .string(kubeTimestamp())])
        }
        if !conditions.isEmpty { status["conditions"] = .array(conditions) }
        if replicaSet["status"] != status {
            edit(key, subresource: "status") { $0["status"] = status }
        }
    }

    /// A pod for a replica set, from its template: labels, annotations, finalizers and spec, with
    /// the replica set as controller.
    static func pod(from replicaSet: JSON, reference: JSON) -> JSON {
        let template = replicaSet[["spec", "template"]] ?? .object([:])
        var metadata: JSON = ["generateName": .string("\(replicaSet[["metadata", "name"]]?.string ?? "")-"),
                              "ownerReferences": .array([reference])]
        for field in ["labels", "annotations", "finalizers"] {
            if let value = template[["metadata", field]], value != .null { metadata[field] = value }
        }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"] ?? .object([:])]
    }

    /// Whether a pod counts for its ReplicaSet: not being deleted, not finished.
    static func isActive(_ pod: JSON) -> Bool {
        let phase = pod[["status", "phase"]]?.string
        return pod[["metadata", "deletionTimestamp"]] == nil && phase != "Succeeded" && phase != "Failed"
    }

    /// Whether a pod has the Ready condition.
    static func isReady(_ pod: JSON) -> Bool {
        pod[["status", "conditions"]]?.array?.contains { $0["type"] == "Ready" && $0["status"] == "True" } == true
    }

    /// An owner reference to `owner` as its controller.
    static func ownerReference(_ owner: JSON, resource: KubeResource) -> JSON {
        [
            "apiVersion": .string(resource.apiVersion), "kind": .string(resource.kind),
            "name": owner[["metadata", "name"]] ?? "", "uid": owner[["metadata", "uid"]] ?? "",
            "controller": true, "blockOwnerDeletion": true,
        ]
    }

    /// The owner reference marked `controller: true`, if any.
    static func controllerRef(_ object: JSON) -> KubeControllerState.OwnerRef? {
        KubeControllerState.OwnerRef.all(object).first { $0.controller }
    }

    /// Adds (or replaces, by uid) an owner reference, as adoption does.
    static func addOwnerReference(_ reference: JSON, to object: inout JSON) {
        var references = object[["metadata", "ownerReferences"]]?.array ?? []
        references.removeAll { $0["uid"] == reference["uid"] }
        references.append(reference)
        object[["metadata", "ownerReferences"]] = .array(references)
    }

    /// Removes the owner reference to `uid` (and the list when it empties), as release and orphaning do.
    static func removeOwnerReference(_ uid: String, from object: inout JSON) {
        let kept = (object[["metadata", "ownerReferences"]]?.array ?? []).filter { $0["uid"]?.string != uid }
        object[["metadata", "ownerReferences"]] = kept.isEmpty ? nil : .array(kept)
    }

    // MARK: deployment controller

    /// One sync of a deployment, as the deployment controller's `syncDeployment`: claims its
    /// replica sets, finds or creates the one of the current template, scales by the strategy,
    /// cleans up old revisions, and writes the revision annotation and the status.
    func syncDeployment(_ key: String, _ state: inout KubeControllerState) {
        guard let replicaSets = resource(group: "apps", plural: "replicasets"), let deployments = resource(forKey: key),
              var deployment = store.get("objects", key), deployment[["metadata", "deletionTimestamp"]] == nil,
              let uid = deployment[["metadata", "uid"]]?.string, let namespace = deployment[["metadata", "namespace"]]?.string,
              let selector = LabelSelector(json: deployment[["spec", "selector"]]), !selector.requirements.isEmpty
        else { return }
        let name = deployment[["metadata", "name"]]?.string ?? ""
        let replicas = Int(deployment[["spec", "replicas"]]?.int ?? 1)
        let reference = Self.ownerReference(deployment, resource: deployments)

        // Claim: owned replica sets that still match, orphans that match (adopted); release the rest.
        var owned: [JSON] = []
        for rsKey in (state.replicaSets[namespace] ?? []).sorted() {
            guard let replicaSet = store.get("objects", rsKey) else { continue }
            let labels = replicaSet[["metadata", "labels"]]?.stringMap ?? [:]
            let controller = Self.controllerRef(replicaSet)
            if controller?.uid == uid {
                if selector.matches(labels) {
                    owned.append(replicaSet)
                } else {
                    edit(rsKey) { Self.removeOwnerReference(uid, from: &$0) }
                }
            } else if controller == nil, replicaSet[["metadata", "deletionTimestamp"]] == nil, selector.matches(labels) {
                if let adopted = edit(rsKey, { Self.addOwnerReference(reference, to: &$0) }) { owned.append(adopted) }
            }
        }
        owned.sort { ($0[["metadata", "creationTimestamp"]]?.string ?? "", $0[["metadata", "name"]]?.string ?? "")
            < ($1[["metadata", "creationTimestamp"]]?.string ?? "", $1[["metadata", "name"]]?.string ?? "") }
        let template = deployment[["spec", "template"]]
        var newRS = owned.first { Self.sameTemplate($0[["spec", "template"]], template) }
        var oldRSs = owned.filter { $0[["metadata", "uid"]] != newRS?[["metadata", "uid"]] }
        let paused = deployment[["spec", "paused"]] == true
        let recreate = deployment[["spec", "strategy", "type"]] == "Recreate"
        let (surge, maxUnavailable) = Self.fenceposts(deployment)
        let previousStatus = deployment["status"] ?? .object([:])
        var conditions = previousStatus["conditions"]?.array ?? []
        // Pausing and resuming are noted first (`checkPausedConditions`), before anything else changes.
        let pausedBefore = conditions.first { $0["type"] == "Progressing" }?["reason"]
        if paused && pausedBefore != "DeploymentPaused" && pausedBefore != "ProgressDeadlineExceeded" {
            Self.setCondition(&conditions, type: "Progressing", status: "Unknown", reason: "DeploymentPaused", message: "Deployment is paused")
        } else if !paused && pausedBefore == "DeploymentPaused" {
            Self.setCondition(&conditions, type: "Progressing", status: "Unknown", reason: "DeploymentResumed", message: "Deployment is resumed")
        }
        let newRevision = (oldRSs.map(Self.revision).max() ?? 0) + 1
        let minReadySeconds = deployment[["spec", "minReadySeconds"]]?.int ?? 0

        func fresh(_ replicaSet: JSON) -> JSON {
            store.get("objects", Self.key("replicasets", namespace, replicaSet[["metadata", "name"]]?.string ?? "")) ?? replicaSet
        }
        /// Scales a replica set (and keeps its replicas annotations current), with the event.
        func scale(_ replicaSet: JSON, to count: Int) -> JSON {
            let current = Int(replicaSet[["spec", "replicas"]]?.int ?? 0)
            let desired = String(replicas)
            let maximum = String(replicas + (recreate ? 0 : surge))
            let annotations = replicaSet[["metadata", "annotations"]]?.stringMap ?? [:]
            guard current != count || annotations[Self.desiredReplicasAnnotation] != desired || annotations[Self.maxReplicasAnnotation] != maximum
            else { return replicaSet }
            let rsKey = Self.key("replicasets", namespace, replicaSet[["metadata", "name"]]?.string ?? "")
            let updated = edit(rsKey) { object in
                object[["spec", "replicas"]] = .int(Int64(count))
                object[["metadata", "annotations", Self.desiredReplicasAnnotation]] = .string(desired)
                object[["metadata", "annotations", Self.maxReplicasAnnotation]] = .string(maximum)
            } ?? replicaSet
            if current != count {
                recordEvent(deployment, resource: deployments, reason: "ScalingReplicaSet",
                            message: "Scaled \(count > current ? "up" : "down") replica set \(replicaSet[["metadata", "name"]]?.string ?? "") to \(count)",
                            component: "deployment-controller")
            }
            return updated
        }
        /// Creates the replica set of the current template, as `getNewReplicaSet` does.
        func createNewReplicaSet(_ count: Int) -> JSON? {
            let collisions = previousStatus["collisionCount"]?.int
            let hash = Self.podTemplateHash(template ?? .object([:]), collisionCount: collisions)
            var rsTemplate = template ?? .object([:])
            rsTemplate[["metadata", "labels", Self.podTemplateHashLabel]] = .string(hash)
            var rsSelector = deployment[["spec", "selector"]] ?? .object([:])
            rsSelector[["matchLabels", Self.podTemplateHashLabel]] = .string(hash)
            let rsName = "\(name)-\(hash)"
            var annotations = Self.copiedAnnotations(deployment)
            annotations[Self.revisionAnnotation] = .string(String(newRevision))
            annotations[Self.desiredReplicasAnnotation] = .string(String(replicas))
            annotations[Self.maxReplicasAnnotation] = .string(String(replicas + (recreate ? 0 : surge)))
            var replicaSet: JSON = [
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": ["name": .string(rsName), "namespace": .string(namespace), "labels": rsTemplate[["metadata", "labels"]] ?? .object([:]),
                             "annotations": .object(annotations), "ownerReferences": .array([reference])],
                "spec": ["replicas": .int(Int64(count)), "selector": rsSelector, "template": rsTemplate],
            ]
            if minReadySeconds != 0 { replicaSet[["spec", "minReadySeconds"]] = .int(minReadySeconds) }
            guard case .success(let valid) = validate(replicaSets, replicaSet, name: rsName) else { return nil }
            let answer = commitCreate(replicaSets, namespace: namespace, name: rsName, object: valid,
                                      manager: Self.controllerManager, operation: "Update")
            if answer.status == .created, let created = store.get("objects", Self.key("replicasets", namespace, rsName)) {
                if count > 0 {
                    recordEvent(deployment, resource: deployments, reason: "ScalingReplicaSet",
                                message: "Scaled up replica set \(rsName) to \(count)", component: "deployment-controller")
                }
                Self.setCondition(&conditions, type: "Progressing", status: "True", reason: "NewReplicaSetCreated",
                                  message: "Created new replica set \"\(rsName)\"")
                return created
            }
            if answer.status == .conflict, let existing = store.get("objects", Self.key("replicasets", namespace, rsName)) {
                if Self.controllerRef(existing)?.uid == uid && Self.sameTemplate(existing[["spec", "template"]], template) { return existing }
                // A hash collision: the next sync hashes with a higher collision count.
                deployment[["status", "collisionCount"]] = .int((collisions ?? 0) + 1)
                edit(key, subresource: "status") { $0[["status", "collisionCount"]] = .int((collisions ?? 0) + 1) }
                state.dirtyDeployments.insert(key)
            }
            return nil
        }

        if let existing = newRS {
            // The replica set of the current template: the newest revision, the deployment's annotations.
            var annotations = existing[["metadata", "annotations"]]?.object ?? [:]
            let before = annotations
            for (annotation, value) in Self.copiedAnnotations(deployment) { annotations[annotation] = value }
            let revision = Self.revision(existing)
            if revision < newRevision {
                annotations[Self.revisionAnnotation] = .string(String(newRevision))
                if revision > 0 {
                    let history = annotations[Self.revisionHistoryAnnotation]?.string.map { "\($0),\(revision)" } ?? String(revision)
                    annotations[Self.revisionHistoryAnnotation] = .string(history)
                }
            }
            if annotations != before || existing[["spec", "minReadySeconds"]]?.int ?? 0 != minReadySeconds {
                newRS = edit(Self.key("replicasets", namespace, existing[["metadata", "name"]]?.string ?? "")) { object in
                    object[["metadata", "annotations"]] = .object(annotations)
                    object[["spec", "minReadySeconds"]] = minReadySeconds == 0 ? nil : .int(minReadySeconds)
                } ?? existing
            }
            if !conditions.contains(where: { $0["type"] == "Progressing" }) {
                Self.setCondition(&conditions, type: "Progressing", status: "True", reason: "FoundNewReplicaSet",
                                  message: "Found new replica set \"\(existing[["metadata", "name"]]?.string ?? "")\"")
            }
        }

        if paused {
            // A paused deployment is only scaled (`FindActiveOrLatest`): no new replica set, no rollout.
            let candidates = (newRS.map { [$0] } ?? []) + oldRSs
            let active = candidates.filter { ($0[["spec", "replicas"]]?.int ?? 0) > 0 }
            let latest = newRS ?? oldRSs.last
            if let target = active.count == 1 ? active[0] : (active.isEmpty ? latest : nil) {
                let scaled = scale(target, to: replicas)
                if target[["metadata", "uid"]] == newRS?[["metadata", "uid"]] {
                    newRS = scaled
                } else if let index = oldRSs.firstIndex(where: { $0[["metadata", "uid"]] == target[["metadata", "uid"]] }) {
                    oldRSs[index] = scaled
                }
            }
        } else if recreate {
            for (index, old) in oldRSs.enumerated() where (old[["spec", "replicas"]]?.int ?? 0) != 0 {
                oldRSs[index] = scale(old, to: 0)
            }
            let oldPodsRunning = oldRSs.contains { old in
                (fresh(old)[["status", "replicas"]]?.int ?? 0) > 0
                    || (state.dependents[old[["metadata", "uid"]]?.string ?? ""] ?? []).contains { $0.hasPrefix("pods|") && store.get("objects", $0) != nil }
            }
            if !oldPodsRunning {
                if let current = newRS {
                    newRS = scale(current, to: replicas)
                } else {
                    newRS = createNewReplicaSet(replicas)
                }
            }
        } else {
            // Rolling update: the new replica set up to maxSurge above the desired count, the old
            // ones down while at least replicas - maxUnavailable stay available.
            let total = (owned.map { Int($0[["spec", "replicas"]]?.int ?? 0) }).reduce(0, +)
            func newReplicas(_ current: Int) -> Int {
                if total >= replicas + surge { return current }
                return current + min(replicas + surge - total, replicas - current)
            }
            if let current = newRS {
                let count = Int(current[["spec", "replicas"]]?.int ?? 0)
                if count > replicas {
                    newRS = scale(current, to: replicas)
                } else if count < replicas {
                    newRS = scale(current, to: newReplicas(count))
                } else {
                    newRS = scale(current, to: count)
                }
            } else {
                newRS = createNewReplicaSet(newReplicas(0))
            }
            oldRSs = oldRSs.map(fresh)
            let newFresh = newRS.map(fresh)
            let oldCount = oldRSs.map { Int($0[["spec", "replicas"]]?.int ?? 0) }.reduce(0, +)
            if oldCount > 0 {
                let all = oldRSs + (newFresh.map { [$0] } ?? [])
                let allCount = all.map { Int($0[["spec", "replicas"]]?.int ?? 0) }.reduce(0, +)
                let minAvailable = replicas - Self.maxUnavailable(deployment, maxUnavailable)
                let newUnavailable = newFresh.map { Int($0[["spec", "replicas"]]?.int ?? 0) - Int($0[["status", "availableReplicas"]]?.int ?? 0) } ?? 0
                let maxScaledDown = allCount - minAvailable - newUnavailable
                if maxScaledDown > 0 {
                    var scaledDown = 0
                    // Unhealthy replicas of old replica sets go first.
                    for (index, old) in oldRSs.enumerated() {
                        if scaledDown >= maxScaledDown { break }
                        let count = Int(old[["spec", "replicas"]]?.int ?? 0)
                        let unhealthy = count - Int(old[["status", "availableReplicas"]]?.int ?? 0)
                        if count == 0 || unhealthy <= 0 { continue }
                        let down = min(maxScaledDown - scaledDown, unhealthy)
                        oldRSs[index] = scale(old, to: count - down)
                        scaledDown += down
                    }
                    let availableNow = (oldRSs + (newFresh.map { [$0] } ?? [])).map { Int($0[["status", "availableReplicas"]]?.int ?? 0) }.reduce(0, +)
                    if availableNow > minAvailable {
                        let toScaleDown = availableNow - minAvailable
                        var done = 0
                        for (index, old) in oldRSs.enumerated() {
                            if done >= toScaleDown { break }
                            let count = Int(old[["spec", "replicas"]]?.int ?? 0)
                            if count == 0 { continue }
                            let down = min(count, toScaleDown - done)
                            oldRSs[index] = scale(old, to: count - down)
                            done += down
                        }
                    }
                }
            }
        }

        // Status, from the replica sets as they are now.
        oldRSs = oldRSs.map(fresh)
        newRS = newRS.map(fresh)
        let all = oldRSs + (newRS.map { [$0] } ?? [])
        func sum(_ path: [String], _ list: [JSON]) -> Int { list.map { Int($0[path]?.int ?? 0) }.reduce(0, +) }
        let available = sum(["status", "availableReplicas"], all)
        var status: JSON = .object([:])
        let counts: [(String, Int)] = [
            ("observedGeneration", Int(deployment[["metadata", "generation"]]?.int ?? 1)),
            ("replicas", sum(["status", "replicas"], all)), ("updatedReplicas", sum(["status", "replicas"], newRS.map { [$0] } ?? [])),
            ("readyReplicas", sum(["status", "readyReplicas"], all)), ("availableReplicas", available),
            ("unavailableReplicas", max(0, sum(["spec", "replicas"], all) - available)),
        ]
        for (field, value) in counts where value != 0 { status[field] = .int(Int64(value)) }
        if let collisions = deployment[["status", "collisionCount"]] { status["collisionCount"] = collisions }
        if available >= replicas - Self.maxUnavailable(deployment, maxUnavailable) {
            Self.setCondition(&conditions, type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability.")
        } else {
            Self.setCondition(&conditions, type: "Available", status: "False", reason: "MinimumReplicasUnavailable",
                              message: "Deployment does not have minimum availability.")
        }
        let progressing = conditions.first { $0["type"] == "Progressing" }
        let subject = newRS.map { "ReplicaSet \"\($0[["metadata", "name"]]?.string ?? "")\"" } ?? "Deployment \"\(name)\""
        let deadline = deployment[["spec", "progressDeadlineSeconds"]]?.int
        let updated = status["updatedReplicas"]?.int ?? 0
        let current = status["replicas"]?.int ?? 0
        let complete = updated == replicas && current == replicas && available == replicas
        let alreadyComplete = current == updated && progressing?["reason"] == "NewReplicaSetAvailable"
        if deadline != nil && !paused && !alreadyComplete {
            let old = previousStatus
            let moved = updated > old["updatedReplicas"]?.int ?? 0 || current < old["replicas"]?.int ?? 0
                || (status["readyReplicas"]?.int ?? 0) > old["readyReplicas"]?.int ?? 0 || Int64(available) > old["availableReplicas"]?.int ?? 0
            let since = (conditions.first { $0["type"] == "Progressing" }?["lastUpdateTime"]?.string)
                .flatMap { try? Date($0, strategy: Date.ISO8601FormatStyle()) }
            if complete {
                Self.setCondition(&conditions, type: "Progressing", status: "True", reason: "NewReplicaSetAvailable",
                                  message: "\(subject) has successfully progressed.")
            } else if moved {
                let previous = conditions.first { $0["type"] == "Progressing" }
                var condition = Self.condition(type: "Progressing", status: "True", reason: "ReplicaSetUpdated", message: "\(subject) is progressing.")
                if previous?["status"] == "True", let transition = previous?["lastTransitionTime"] { condition["lastTransitionTime"] = transition }
                conditions.removeAll { $0["type"] == "Progressing" }
                conditions.append(condition)
            } else if let since, let deadline, progressing?["reason"] != "NewReplicaSetAvailable" {
                let remaining = since.addingTimeInterval(Double(deadline)).timeIntervalSinceNow
                if remaining < 0 || progressing?["reason"] == "ProgressDeadlineExceeded" {
                    Self.setCondition(&conditions, type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded",
                                      message: "\(subject) has timed out progressing.")
                } else {
                    state.due[key] = ContinuousClock.now + .milliseconds(Int(remaining * 1000) + 1000)
                }
            }
        }
        if !conditions.isEmpty { status["conditions"] = .array(conditions) }
        // History beyond revisionHistoryLimit goes once the rollout is complete (or paused).
        if complete || paused, let limit = deployment[["spec", "revisionHistoryLimit"]]?.int {
            let alive = oldRSs.filter { $0[["metadata", "deletionTimestamp"]] == nil }.sorted { Self.revision($0) < Self.revision($1) }
            for old in alive.prefix(max(0, alive.count - Int(limit))) {
                // Only replica sets scaled to nothing, whose controller has seen that.
                guard (old[["spec", "replicas"]]?.int ?? 0) == 0, (old[["status", "replicas"]]?.int ?? 0) == 0,
                      (old[["metadata", "generation"]]?.int ?? 0) <= (old[["status", "observedGeneration"]]?.int ?? 0)
                else { continue }
                _ = delete(replicaSets, namespace: namespace, name: old[["metadata", "name"]]?.string ?? "", body: [])
            }
        }
        let revision = newRS?[["metadata", "annotations", Self.revisionAnnotation]]
        if status != deployment["status"] || (revision != nil && revision != deployment[["metadata", "annotations", Self.revisionAnnotation]]) {
            edit(key, subresource: "status") { object in
                object["status"] = status
                if let revision { object[["metadata", "annotations", Self.revisionAnnotation]] = revision }
            }
        }
    }

    /// Deployment annotations as the controller copies them to replica sets.
    static func copiedAnnotations(_ deployment: JSON) -> [String: JSON] {
        (deployment[["metadata", "annotations"]]?.object ?? [:]).filter { !annotationsNotCopied.contains($0.key) }
    }

    /// A ReplicaSet's revision annotation as a number (0 without one).
    static func revision(_ replicaSet: JSON) -> Int {
        Int(replicaSet[["metadata", "annotations", revisionAnnotation]]?.string ?? "") ?? 0
    }

    /// Whether two pod templates are the same but for the pod-template-hash label (`EqualIgnoreHash`).
    /// Like Go's semantic equality of the decoded structs, a zero value (`false`, `0`, `""`, empty)
    /// equals an absent field: a template stored with `stdin: false` is the template without it.
    static func sameTemplate(_ a: JSON?, _ b: JSON?) -> Bool {
        func zeroless(_ value: JSON) -> JSON? {
            switch value {
            case .null, .bool(false), .int(0), .string(""): return nil
            case .double(let number) where number == 0: return nil
            case .array(let items):
                let kept = items.map { zeroless($0) ?? .object([:]) }
                return kept.isEmpty ? nil : .array(kept)
            case .object(let members):
                let kept = members.compactMapValues(zeroless)
                return kept.isEmpty ? nil : .object(kept)
            default: return value
            }
        }
        func stripped(_ template: JSON?) -> JSON? {
            var template = template ?? .object([:])
            template[["metadata", "labels", podTemplateHashLabel]] = nil
            return zeroless(template)
        }
        return stripped(a) == stripped(b)
    }

    /// maxSurge (rounded up) and maxUnavailable (rounded down) of a rolling update, as
    /// `ResolveFenceposts` makes them: never both zero.
    static func fenceposts(_ deployment: JSON) -> (surge: Int, unavailable: Int) {
        guard deployment[["spec", "strategy", "type"]] == "RollingUpdate" else { return (0, 0) }
        let replicas = Int(deployment[["spec", "replicas"]]?.int ?? 1)
        func resolve(_ value: JSON?, roundUp: Bool) -> Int {
            switch value {
            case .int(let number)?: return Int(number)
            case .string(let text)?:
                guard let percent = percentValue(text) else { return 0 }
                let scaled = Double(percent) * Double(replicas) / 100
                return Int(roundUp ? scaled.rounded(.up) : scaled.rounded(.down))
            default: return 0
            }
        }
        let surge = resolve(deployment[["spec", "strategy", "rollingUpdate", "maxSurge"]], roundUp: true)
        let unavailable = resolve(deployment[["spec", "strategy", "rollingUpdate", "maxUnavailable"]], roundUp: false)
        return surge == 0 && unavailable == 0 ? (0, 1) : (surge, unavailable)
    }

    /// `MaxUnavailable`: zero for Recreate or no replicas, at most the replicas.
    static func maxUnavailable(_ deployment: JSON, _ unavailable: Int) -> Int {
        let replicas = Int(deployment[["spec", "replicas"]]?.int ?? 1)
        guard deployment[["spec", "strategy", "type"]] == "RollingUpdate", replicas > 0 else { return 0 }
        return min(unavailable, replicas)
    }

    /// A deployment condition stamped now (`NewDeploymentCondition`).
    static func condition(type: String, status: String, reason: String, message: String) -> JSON {
        let now = kubeTimestamp()
        return ["type": .string(type), "status": .string(status), "lastUpdateTime": .string(now), "lastTransitionTime": .string(now),
                "reason": .string(reason), "message": .string(message)]
    }

    /// `SetDeploymentCondition`: no change for the same status and reason; otherwise replaces the
    /// condition (at the end), keeping lastTransitionTime when the status stays.
    static func setCondition(_ conditions: inout [JSON], type: String, status: String, reason: String, message: String) {
        let current = conditions.first { $0["type"]?.string == type }
        if let current, current["status"]?.string == status, current["reason"]?.string == reason { return }
        var condition = condition(type: type, status: status, reason: reason, message: message)
        if let current, current["status"]?.string == status { condition["lastTransitionTime"] = current["lastTransitionTime"] }
        conditions.removeAll { $0["type"]?.string == type }
        conditions.append(condition)
    }

    /// The pod-template-hash of a template: FNV-1a (32 bits) of its JSON and the collision count,
    /// its decimal digits spelled in the alphabet kube-controller-manager uses (`SafeEncodeString`).
    static func podTemplateHash(_ template: JSON, collisionCount: Int64?) -> String {
        var hash: UInt32 = 2_166_136_261
        func add(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt32(byte)
                hash = hash &* 16_777_619
            }
        }
        add(template.data)
        if let collisionCount {
            let count = UInt32(truncatingIfNeeded: collisionCount)
            add([UInt8(count & 0xff), UInt8(count >> 8 & 0xff), UInt8(count >> 16 & 0xff), UInt8(count >> 24), 0, 0, 0, 0])
        }
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String(String(hash).utf8.map { alphabet[Int($0) % alphabet.count] })
    }
}

/// What the simulated controllers know between passes: indexes built from the store at the first
/// pass and kept up to date from its change feed, and the work that is due.
struct KubeControllerState: Sendable {
    /// An owner reference as the garbage collector and the controllers read it.
    struct OwnerRef: Sendable, Equatable {
        var uid: String
        var kind: String
        var name: String
        var controller: Bool
        var blockOwnerDeletion: Bool

        /// An object's owner references (those with a uid).
        static func all(_ object: JSON) -> [OwnerRef] {
            (object[["metadata", "ownerReferences"]]?.array ?? []).compactMap { reference in
                guard let uid = reference["uid"]?.string else { return nil }
                return OwnerRef(uid: uid, kind: reference["kind"]?.string ?? "", name: reference["name"]?.string ?? "",
                                controller: reference["controller"] == true, blockOwnerDeletion: reference["blockOwnerDeletion"] == true)
            }
        }
    }

    /// The change feed's position; nil until the first pass.
    var position: UInt64?
    /// Store key → uid, and back.
    var uidOf: [String: String] = [:]
    var keyOf: [String: String] = [:]
    /// Store key → its owner references (objects that have some).
    var ownersOf: [String: [OwnerRef]] = [:]
    /// Owner uid → keys of the objects that reference it.
    var dependents: [String: Set<String>] = [:]
    /// Namespace → keys.
    var deployments: [String: Set<String>] = [:]
    var replicaSets: [String: Set<String>] = [:]
    var orphanPods: [String: Set<String>] = [:]
    /// Replica set key → its selector.
    var selectors: [String: LabelSelector] = [:]
    var selectorJSON: [String: JSON] = [:]
    /// Objects whose deletion waits on the garbage collector's finalizers.
    var finalizing: Set<String> = []
    var gcCandidates: Set<String> = []
    var dirtyDeployments: Set<String> = []
    var dirtyReplicaSets: Set<String> = []
    /// Replica set key → orphan pods that match it; replica sets to look at every orphan pod for.
    var adoptionCandidates: [String: Set<String>] = [:]
    var adoptionScans: Set<String> = []
    /// Keys to sync again at a time (progress deadlines, minReadySeconds).
    var due: [String: ContinuousClock.Instant] = [:]
    /// Events by expiry, oldest first.
    var events: [(ContinuousClock.Instant, String)] = []

    /// Nothing known yet: the first pass reads everything.
    init() {}
}
