import Core
import Foundation
import Logging

/// The binding jobs: apply the AzureIdentity and the AzureIdentityBinding, or remove them. podid
/// changes or deletes only objects whose labels say they are podid's for this binding; anything
/// else at a computed name fails the binding with a message naming the object and its labels.
public struct BindingWorkflow: Reconciler {
    let database: any Database
    let connector: any KubernetesConnector
    public let logger: Logger

    /// Creates the workflow.
    public init(database: any Database, connector: any KubernetesConnector, logger: Logger) {
        self.database = database
        self.connector = connector
        self.logger = logger
    }

    public var kinds: [any JobKind.Type] { [BindingApply.self, BindingDelete.self, BindingRepair.self] }

    public func run(_ job: Job, progress: JobProgress) async throws {
        if job.kind == BindingRepair.name {
            try await repair(job: job, progress: progress)
        } else {
            try await runReconciling(job, progress: progress)
        }
    }

    public func attemptFailed(_ job: Job, message: String, final: Bool, retryAt: Date?) async {
        // A repair that fails leaves the binding as it is: the next sweep reports the drift again.
        guard job.kind != BindingRepair.name else {
            logger.warning("re-applying a drifted object failed", metadata: ["error": "\(message)", "job_id": "\(job.id)", "final": "\(final)"])
            return
        }
        await recordFailure(job, message: message, final: final, retryAt: retryAt)
    }
    public static let noun = "binding"
    public static let deleteKind: any JobKind.Type = BindingDelete.self

    public static func payload(of job: Job) throws -> BindingJobPayload { try BindingApply.payload(of: job) }

    public func load(_ payload: BindingJobPayload) async throws -> Binding? {
        try await database.bindings.get(team: payload.team, identity: payload.identity, name: payload.binding, lock: .none)
    }

    public func record(_ event: LifecycleEvent, payload: BindingJobPayload, audit: [AuditDraft]) async throws {
        guard let binding = try await load(payload) else { return }
        try await database.recordBinding(binding, event, audit: audit)
    }

    public func failureEvent(payload: BindingJobPayload, job: Job, message: String) -> AuditDraft {
        jobEvent("binding.failed", outcome: .failure, job: job, team: payload.team, resourceType: "binding",
                 resourceName: "\(payload.identity)/\(payload.binding)", details: ["error": .string(message)])
    }

    // MARK: apply

    public func reconcile(_ start: Binding, job: Job, progress: JobProgress) async throws {
        var binding = start
        let generation = binding.generation
        guard let identity = try await database.identities.get(team: binding.team, name: binding.identity, lock: .none) else { return }
        guard identity.state != .deleting, let clientId = identity.clientId, let resourceId = identity.resourceId else {
            // Not a busy retry: the identity's job queues this binding again when it is ready.
            try await database.recordBinding(binding, .waiting(
                message: "waiting for identity '\(identity.name)' to be ready (it is \(identity.state.rawValue))"))
            await progress.record(JobStep(name: "identity.ready", outcome: "skipped",
                                          details: ["reason": "identity is \(identity.state.rawValue); its job queues this binding when it is ready"]))
            return
        }
        guard let cluster = try await database.clusters.get(binding.cluster, lock: .none) else {
            throw DomainError(.conflict, "Cluster '\(binding.cluster)' no longer exists.")
        }
        guard let working = try await database.recordBinding(binding, .started(
            message: "applying generation \(generation) in cluster \(cluster.name) (job \(job.id.uuidString.lowercased()), attempt \(job.attempts))"))
        else { return }
        binding = working
        let gateway = try await connector.gateway(for: cluster)
        // Objects are written under the current naming scheme; a binding whose objects are under
        // an older one moves them (below, once the new ones are in place).
        let previous = binding
        binding = binding.underCurrentNaming
        let aiObject = binding.azureIdentityObject(resourceID: resourceId, clientID: clientId)
        try await ensure(.azureIdentity, aiObject.json, name: aiObject.name, binding: binding, includingBinding: false,
                         gateway: gateway, job: job, progress: progress, action: "k8s.azureidentity.applied",
                         unchanged: { Self.asWanted($0, aiObject, ignoringLegacyKeys: false) },
                         details: ["clientID": .string(clientId), "resourceID": .string(resourceId)])
        let bindingObject = binding.bindingObject
        try await ensure(.azureIdentityBinding, bindingObject.json, name: bindingObject.name, binding: binding, includingBinding: true,
                         gateway: gateway, job: job, progress: progress, action: "k8s.azureidentitybinding.applied",
                         unchanged: { Self.asWanted($0, bindingObject, ignoringLegacyKeys: false) },
                         details: ["selector": .string(binding.selector), "azureIdentity": .string(bindingObject.azureIdentity)])
        var renamed: [AuditDraft] = []
        if previous.objectNaming < binding.objectNaming {
            try await removeOldNames(previous, gateway: gateway, job: job, progress: progress, into: &renamed)
        }
        try await database.recordBinding(
            binding, .applied(generation: generation,
                              message: "ready: pods labelled aadpodidbinding=\(binding.selector) receive identity '\(identity.name)' (clientId \(clientId))"),
            audit: renamed + [event("binding.ready", binding, job: job, details: ["generation": .number(Double(generation)), "clientId": .string(clientId)])],
            change: {
                $0.appliedClientId = clientId
                $0.objectNaming = .current
            })
    }

    /// Whether an existing AzureIdentity is as podid wants it (a repair leaves legacy keys to the
    /// binding's own apply, which moves them).
    static func asWanted(_ existing: KubeObject, _ wanted: AzureIdentityObject, ignoringLegacyKeys: Bool) -> Bool {
        let current = AzureIdentityObject(existing)
        return current.resourceID == wanted.resourceID && current.clientID == wanted.clientID && current.type == 0
            && (ignoringLegacyKeys || current.legacyKeys.isEmpty)
    }

    /// Whether an existing AzureIdentityBinding is as podid wants it.
    static func asWanted(_ existing: KubeObject, _ wanted: AzureIdentityBindingObject, ignoringLegacyKeys: Bool) -> Bool {
        let current = AzureIdentityBindingObject(existing)
        return current.azureIdentity == wanted.azureIdentity && current.selector == wanted.selector
            && (ignoringLegacyKeys || current.legacyKeys.isEmpty)
    }

    // MARK: repair

    /// Re-applies a ready binding's objects that drifted (`binding.repair`, queued by health
    /// sweeps): read now, under the binding's serial key, so that a binding deleted or changed
    /// since the sweep looked is left to its own jobs.
    func repair(job: Job, progress: JobProgress) async throws {
        let payload = try BindingRepair.payload(of: job)
        guard let binding = try await load(payload), binding.state == .ready else {
            await progress.record(JobStep(name: "binding.read", outcome: "skipped", details: ["reason": "the binding is gone or not ready; its own job applies it"]))
            return
        }
        guard let identity = try await database.identities.get(team: binding.team, name: binding.identity, lock: .none),
              identity.state != .deleting, let clientId = identity.clientId, let resourceId = identity.resourceId,
              let cluster = try await database.clusters.get(binding.cluster, lock: .none)
        else {
            await progress.record(JobStep(name: "identity.read", outcome: "skipped", details: ["reason": "the identity or the cluster is not ready"]))
            return
        }
        let gateway = try await connector.gateway(for: cluster)
        let aiObject = binding.azureIdentityObject(resourceID: resourceId, clientID: clientId)
        try await ensure(.azureIdentity, aiObject.json, name: aiObject.name, binding: binding, includingBinding: false,
                         gateway: gateway, job: job, progress: progress, action: "k8s.azureidentity.reapplied",
                         unchanged: { Self.asWanted($0, aiObject, ignoringLegacyKeys: true) },
                         details: ["clientID": .string(clientId), "resourceID": .string(resourceId)], repairing: true)
        let bindingObject = binding.bindingObject
        try await ensure(.azureIdentityBinding, bindingObject.json, name: bindingObject.name, binding: binding, includingBinding: true,
                         gateway: gateway, job: job, progress: progress, action: "k8s.azureidentitybinding.reapplied",
                         unchanged: { Self.asWanted($0, bindingObject, ignoringLegacyKeys: true) },
                         details: ["selector": .string(binding.selector), "azureIdentity": .string(bindingObject.azureIdentity)], repairing: true)
    }

    /// Removes the objects a binding had under an older naming scheme, now that the current ones
    /// are applied: its AzureIdentityBinding, and the AzureIdentity once no other binding of the
    /// identity in that cluster and namespace still uses the old name (those jobs share this
    /// one's serial key, so they run one after another). Only objects whose labels say they are
    /// this binding's or identity's are touched.
    func removeOldNames(_ old: Binding, gateway: any KubernetesGateway, job: Job, progress: JobProgress,
                        into audit: inout [AuditDraft]) async throws {
        try await removeObjects(of: old, gateway: gateway, job: job, progress: progress, into: &audit)
        audit.append(event("binding.renamed", old, job: job, details: [
            "cluster": .string(old.cluster), "namespace": .string(old.namespace),
            "from": .array([.string(old.azureIdentityObjectName), .string(old.bindingObjectName)]),
            "to": .array([.string(old.underCurrentNaming.azureIdentityObjectName), .string(old.underCurrentNaming.bindingObjectName)]),
        ]))
    }

    /// Applies `object` unless it is already as wanted; refuses an object at that name that is not podid's.
    ///
    /// An object already as wanted whose version no audit event names was written by an attempt
    /// that stopped before recording it (or changed outside podid into what podid wants): it is
    /// audited now, once. A repair (`repairing`) audits `k8s.<kind>.reapplied` with the reason.
    func ensure(_ kind: KubeKind, _ object: JSONValue, name: String, binding: Binding, includingBinding: Bool,
                gateway: any KubernetesGateway, job: Job, progress: JobProgress, action: String,
                unchanged: (KubeObject) -> Bool, details: [String: JSONValue], repairing: Bool = false) async throws {
        let existing = try await gateway.get(kind, namespace: binding.namespace, name: name)
        let action = repairing ? "k8s.\(kind.kind.lowercased()).reapplied" : action
        let actions = ["k8s.\(kind.kind.lowercased()).applied", "k8s.\(kind.kind.lowercased()).reapplied"]
        var eventDetails = details
        eventDetails["cluster"] = .string(binding.cluster)
        eventDetails["namespace"] = .string(binding.namespace)
        eventDetails["object"] = .string(name)
        if let existing {
            guard binding.owns(existing.labels, includingBinding: includingBinding) else {
                throw DomainError(.conflict, Self.foreign(kind, existing, binding: binding))
            }
            if unchanged(existing) {
                await progress.record(JobStep(name: "\(kind.kind).apply", outcome: "skipped", details: ["reason": "already as wanted", "name": name]))
                if !repairing, let uid = existing.uid, let version = existing.resourceVersion,
                   try await !database.audit.contains(resourceType: "binding", resourceName: "\(binding.identity)/\(binding.name)", actions: actions,
                                                      details: ["object": name, "uid": uid, "resourceVersion": version]) {
                    eventDetails["uid"] = .string(uid)
                    eventDetails["resourceVersion"] = .string(version)
                    eventDetails["created"] = .bool(false)
                    eventDetails["note"] = .string("found as wanted: written by an earlier attempt that stopped before recording it, or changed outside podid to what podid wants")
                    try await database.recordBinding(binding, audit: [event(action, binding, job: job, details: eventDetails)])
                }
                return
            }
        }
        let applied = try await gateway.apply(kind, object, force: true)
        eventDetails["uid"] = applied.uid.map(JSONValue.string) ?? .null
        eventDetails["resourceVersion"] = applied.resourceVersion.map(JSONValue.string) ?? .null
        eventDetails["created"] = .bool(existing == nil)
        if repairing { eventDetails["reason"] = .string("it was \(existing == nil ? "deleted" : "changed") outside podid") }
        try await database.recordBinding(binding, audit: [event(action, binding, job: job, details: eventDetails)])
        await progress.record(JobStep(name: "\(kind.kind).apply", outcome: "succeeded",
                                      details: ["name": name, "namespace": binding.namespace, "uid": applied.uid ?? ""]))
    }

    static func foreign(_ kind: KubeKind, _ object: KubeObject, binding: Binding) -> String {
        let labels = object.labels.isEmpty ? "no labels" : "labels " + object.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        return "\(kind.kind) \(binding.namespace)/\(object.name) in cluster \(binding.cluster) exists and podid did not create it for this binding (it has \(labels)). podid never changes objects it does not own: remove or rename that object, or bind in another namespace."
    }

    // MARK: delete

    public func delete(_ binding: Binding, job: Job, progress: JobProgress) async throws {
        var audit: [AuditDraft] = []
        if let cluster = try await database.clusters.get(binding.cluster, lock: .none) {
            let gateway = try await connector.gateway(for: cluster)
            try await removeObjects(of: binding, gateway: gateway, job: job, progress: progress, into: &audit)
        }
        audit.append(event("binding.removed", binding, job: job, details: ["cluster": .string(binding.cluster), "namespace": .string(binding.namespace)]))
        try await BindingService.finishDeletion(binding, in: database, audit: audit, requestId: job.requestId)
    }

    /// Removes a binding's AzureIdentityBinding, and its AzureIdentity unless another binding of
    /// the identity in that cluster and namespace uses it (under the same naming scheme: the same
    /// object).
    func removeObjects(of binding: Binding, gateway: any KubernetesGateway, job: Job, progress: JobProgress,
                       into audit: inout [AuditDraft]) async throws {
        try await remove(.azureIdentityBinding, name: binding.bindingObjectName, binding: binding, includingBinding: true,
                         gateway: gateway, job: job, progress: progress, into: &audit)
        let siblings = try await database.bindings.siblings(of: binding).filter { $0.objectNaming == binding.objectNaming }
        if siblings.isEmpty {
            try await remove(.azureIdentity, name: binding.azureIdentityObjectName, binding: binding, includingBinding: false,
                             gateway: gateway, job: job, progress: progress, into: &audit)
        } else {
            await progress.record(JobStep(name: "AzureIdentity.delete", outcome: "skipped",
                                          details: ["reason": "still used by \(siblings.map(\.name).joined(separator: ", "))"]))
        }
    }

    func remove(_ kind: KubeKind, name: String, binding: Binding, includingBinding: Bool, gateway: any KubernetesGateway, job: Job,
                progress: JobProgress, into audit: inout [AuditDraft]) async throws {
        guard let existing = try await gateway.get(kind, namespace: binding.namespace, name: name) else {
            await progress.record(JobStep(name: "\(kind.kind).delete", outcome: "skipped", details: ["reason": "not there", "name": name]))
            return
        }
        let base: [String: JSONValue] = ["cluster": .string(binding.cluster), "namespace": .string(binding.namespace), "object": .string(name)]
        guard binding.owns(existing.labels, includingBinding: includingBinding) else {
            // Not podid's: left alone, and said so.
            audit.append(event("k8s.\(kind.kind.lowercased()).skipped", binding, job: job,
                               details: base.merging(["reason": .string(Self.foreign(kind, existing, binding: binding))]) { a, _ in a }))
            await progress.record(JobStep(name: "\(kind.kind).delete", outcome: "skipped", details: ["reason": "not podid's", "name": name]))
            return
        }
        let outcome = try await gateway.delete(kind, namespace: binding.namespace, name: name, uid: existing.uid)
        audit.append(event("k8s.\(kind.kind.lowercased()).deleted", binding, job: job,
                           details: base.merging(["uid": existing.uid.map(JSONValue.string) ?? .null,
                                                  "upstreamRequestId": outcome.requestId.map(JSONValue.string) ?? .null]) { a, _ in a }))
        await progress.record(JobStep(name: "\(kind.kind).delete", outcome: "succeeded", details: ["name": name]))
    }

    func event(_ action: String, outcome: AuditOutcome = .success, _ binding: Binding, job: Job, details: [String: JSONValue] = [:]) -> AuditDraft {
        jobEvent(action, outcome: outcome, job: job, team: binding.team, resourceType: "binding",
                 resourceName: "\(binding.identity)/\(binding.name)", details: details)
    }
}

/// The cluster connection check: reachable, CRDs served, podid's permissions. It reports rather
/// than retries: an unreachable cluster is a status, not a failed job.
public struct ClusterCheckWorkflow: JobHandler {
    let database: any Database
    let connector: any KubernetesConnector

    /// Creates the workflow.
    public init(database: any Database, connector: any KubernetesConnector) {
        self.database = database
        self.connector = connector
    }

    public var kinds: [any JobKind.Type] { [ClusterCheck.self] }

    public func run(_ job: Job, progress: JobProgress) async throws {
        let name = try ClusterCheck.payload(of: job).cluster
        guard let cluster = try await database.clusters.get(name, lock: .none) else { return }
        let status = await Self.check(cluster, connector: connector)
        await progress.record(JobStep(name: "cluster.check", outcome: status.reachable ? "succeeded" : "failed", details: ["message": status.message]))
        try await database.recordClusterStatus(
            name, status,
            audit: AuditDraft(actor: "podid", actorTeam: nil, action: "cluster.checked", outcome: status.reachable && status.crdsServed ? .success : .failure,
                              team: nil, resourceType: "cluster", resourceName: name, requestId: job.requestId, jobId: job.id,
                              details: ["reachable": .bool(status.reachable), "crdsServed": .bool(status.crdsServed), "message": .string(status.message)]))
    }

    /// Checks a cluster.
    public static func check(_ cluster: Cluster, connector: any KubernetesConnector) async -> ClusterStatus {
        let now = Date()
        let gateway: any KubernetesGateway
        let version: String
        do {
            gateway = try await connector.gateway(for: cluster)
            version = try await gateway.serverVersion()
        } catch {
            return ClusterStatus(reachable: false, crdsServed: false, servedKinds: [], permissions: [], serverVersion: nil, checkedAt: now,
                                 message: "podid cannot reach the API server: \(error). Check the cluster's apiServer and connection.")
        }
        var problems: [String] = []
        var served: [String] = []
        do {
            served = try await gateway.servedPodIdentityKinds().sorted()
        } catch {
            problems.append("listing the aad-pod-identity kinds failed: \(error)")
        }
        let missingKinds = KubeKind.podIdentityKinds.map(\.plural).filter { !served.contains($0) }
        if !missingKinds.isEmpty {
            problems.append("the aad-pod-identity CRDs are not served (\(missingKinds.joined(separator: ", ")) missing): install aad-pod-identity (helm install aad-pod-identity) in \(cluster.brokerNamespace)")
        }
        var permissions: [ClusterPermission] = []
        for (verb, kind, namespace) in ClusterRules.requiredPermissions(brokerNamespace: cluster.brokerNamespace) {
            let allowed = (try? await gateway.canI(verb, kind, namespace: namespace)) ?? false
            permissions.append(ClusterPermission(verb: verb, resource: kind.description, namespace: namespace, allowed: allowed))
        }
        let denied = permissions.filter { !$0.allowed }
        if !denied.isEmpty {
            problems.append("podid may not " + denied.map { "\($0.verb) \($0.resource)\($0.namespace.map { " in \($0)" } ?? " cluster-wide")" }.joined(separator: ", ")
                            + ": grant podid's service account these verbs (a ClusterRole bound to it)")
        }
        return ClusterStatus(reachable: true, crdsServed: missingKinds.isEmpty, servedKinds: served, permissions: permissions,
                             serverVersion: version, checkedAt: now,
                             message: problems.isEmpty ? "ok: API server \(version) reachable, aad-pod-identity CRDs served, permissions in place" : problems.joined(separator: "; "))
    }
}
