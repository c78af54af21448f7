import Core
import Foundation
import Logging

/// The binding jobs: apply the AzureIdentity and the AzureIdentityBinding, or remove them. podid
/// changes or deletes only objects whose labels say they are podid's for this binding; anything
/// else at a computed name fails the binding with a message naming the object and its labels.
public struct BindingWorkflow: JobHandler {
    let bindings: any BindingStore
    let identities: any IdentityStore
    let clusters: any ClusterStore
    let connector: any KubernetesConnector
    let logger: Logger

    /// Creates the workflow.
    public init(bindings: any BindingStore, identities: any IdentityStore, clusters: any ClusterStore,
                connector: any KubernetesConnector, logger: Logger) {
        self.bindings = bindings
        self.identities = identities
        self.clusters = clusters
        self.connector = connector
        self.logger = logger
    }

    public func run(_ job: Job, progress: JobProgress) async throws {
        guard let team = job.payload.at("team")?.stringValue, let identityName = job.payload.at("identity")?.stringValue,
              let name = job.payload.at("binding")?.stringValue
        else { throw DomainError(.validation, "job \(job.id) has no team, identity and binding in its payload") }
        guard let binding = try await bindings.binding(team: team, identity: identityName, name: name) else {
            await progress.record(JobStep(name: "binding.read", outcome: "skipped", details: ["reason": "the binding no longer exists"]))
            return
        }
        if binding.state == .deleting {
            try await delete(binding, job: job, progress: progress)
        } else if job.kind == BindingJobs.delete {
            await progress.record(JobStep(name: "binding.read", outcome: "skipped", details: ["reason": "the binding is not being deleted"]))
        } else {
            try await apply(binding, job: job, progress: progress)
        }
    }

    public func attemptFailed(_ job: Job, message: String, final: Bool, retryAt: Date?) async {
        guard let team = job.payload.at("team")?.stringValue, let identity = job.payload.at("identity")?.stringValue,
              let name = job.payload.at("binding")?.stringValue,
              let binding = try? await bindings.binding(team: team, identity: identity, name: name)
        else { return }
        let update: BindingStatusUpdate
        var audit: [AuditDraft] = []
        let id = job.id.uuidString.lowercased()
        if final {
            update = BindingStatusUpdate(state: .failed, message: "job \(id) failed; fix the cause, then POST /v1/jobs/\(id)/retry",
                                         lastError: .some(message))
            audit.append(event("binding.failed", outcome: .failure, binding, job: job, details: ["error": .string(message)]))
        } else {
            update = BindingStatusUpdate(
                message: "attempt \(job.attempts) of \(job.maxAttempts) failed; retrying\(retryAt.map { " at \(Timestamp.format($0))" } ?? "")",
                lastError: .some(message))
        }
        do {
            try await bindings.updateBindingStatus(binding, update, audit: audit)
        } catch {
            logger.warning("recording a binding job failure failed", metadata: ["error": "\(error)", "binding": "\(binding.path)"])
        }
    }

    // MARK: apply

    func apply(_ start: Binding, job: Job, progress: JobProgress) async throws {
        var binding = start
        let generation = binding.generation
        guard let identity = try await identities.identity(team: binding.team, name: binding.identity) else { return }
        guard identity.state != .deleting, let clientId = identity.clientId, let resourceId = identity.resourceId else {
            // Not a busy retry: the identity's job queues this binding again when it is ready.
            try await bindings.updateBindingStatus(binding, BindingStatusUpdate(
                state: .pending, message: "waiting for identity '\(identity.name)' to be ready (it is \(identity.state.rawValue))"), audit: [])
            await progress.record(JobStep(name: "identity.ready", outcome: "skipped",
                                          details: ["reason": "identity is \(identity.state.rawValue); its job queues this binding when it is ready"]))
            return
        }
        guard let cluster = try await clusters.cluster(named: binding.cluster) else {
            throw DomainError(.conflict, "Cluster '\(binding.cluster)' no longer exists.")
        }
        guard let working = try await bindings.updateBindingStatus(binding, BindingStatusUpdate(
            state: .provisioning, message: "applying generation \(generation) in cluster \(cluster.name) (job \(job.id.uuidString.lowercased()), attempt \(job.attempts))"),
            audit: [])
        else { return }
        binding = working
        let gateway = try await connector.gateway(for: cluster)
        let aiObject = binding.azureIdentityObject(resourceID: resourceId, clientID: clientId)
        try await ensure(.azureIdentity, aiObject.json, name: aiObject.name, binding: binding, includingBinding: false,
                         gateway: gateway, job: job, progress: progress, action: "k8s.azureidentity.applied",
                         unchanged: { existing in
                             let current = AzureIdentityObject(existing)
                             return current.resourceID == aiObject.resourceID && current.clientID == aiObject.clientID && current.type == 0
                                 && current.legacyKeys.isEmpty
                         }, details: ["clientID": .string(clientId), "resourceID": .string(resourceId)])
        let bindingObject = binding.bindingObject
        try await ensure(.azureIdentityBinding, bindingObject.json, name: bindingObject.name, binding: binding, includingBinding: true,
                         gateway: gateway, job: job, progress: progress, action: "k8s.azureidentitybinding.applied",
                         unchanged: { existing in
                             let current = AzureIdentityBindingObject(existing)
                             return current.azureIdentity == bindingObject.azureIdentity && current.selector == bindingObject.selector
                                 && current.legacyKeys.isEmpty
                         }, details: ["selector": .string(binding.selector), "azureIdentity": .string(bindingObject.azureIdentity)])
        try await bindings.updateBindingStatus(binding, BindingStatusUpdate(
            message: "ready: pods labelled aadpodidbinding=\(binding.selector) receive identity '\(identity.name)' (clientId \(clientId))",
            lastError: .some(nil), appliedClientId: clientId, observedGeneration: generation),
            audit: [event("binding.ready", binding, job: job, details: ["generation": .number(Double(generation)), "clientId": .string(clientId)])])
    }

    /// Applies `object` unless it is already as wanted; refuses an object at that name that is not podid's.
    func ensure(_ kind: KubeKind, _ object: JSONValue, name: String, binding: Binding, includingBinding: Bool,
                gateway: any KubernetesGateway, job: Job, progress: JobProgress, action: String,
                unchanged: (KubeObject) -> Bool, details: [String: JSONValue]) async throws {
        let existing = try await gateway.get(kind, namespace: binding.namespace, name: name)
        if let existing {
            guard binding.owns(existing.labels, includingBinding: includingBinding) else {
                throw DomainError(.conflict, Self.foreign(kind, existing, binding: binding))
            }
            if unchanged(existing) {
                await progress.record(JobStep(name: "\(kind.kind).apply", outcome: "skipped", details: ["reason": "already as wanted", "name": name]))
                return
            }
        }
        let applied = try await gateway.apply(kind, object, force: true)
        var eventDetails = details
        eventDetails["cluster"] = .string(binding.cluster)
        eventDetails["namespace"] = .string(binding.namespace)
        eventDetails["object"] = .string(name)
        eventDetails["uid"] = applied.uid.map(JSONValue.string) ?? .null
        eventDetails["resourceVersion"] = applied.resourceVersion.map(JSONValue.string) ?? .null
        eventDetails["created"] = .bool(existing == nil)
        try await bindings.updateBindingStatus(binding, BindingStatusUpdate(), audit: [event(action, binding, job: job, details: eventDetails)])
        await progress.record(JobStep(name: "\(kind.kind).apply", outcome: "succeeded",
                                      details: ["name": name, "namespace": binding.namespace, "uid": applied.uid ?? ""]))
    }

    static func foreign(_ kind: KubeKind, _ object: KubeObject, binding: Binding) -> String {
        let labels = object.labels.isEmpty ? "no labels" : "labels " + object.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        return "\(kind.kind) \(binding.namespace)/\(object.name) in cluster \(binding.cluster) exists and podid did not create it for this binding (it has \(labels)). podid never changes objects it does not own: remove or rename that object, or bind in another namespace."
    }

    // MARK: delete

    func delete(_ binding: Binding, job: Job, progress: JobProgress) async throws {
        var audit: [AuditDraft] = []
        if let cluster = try await clusters.cluster(named: binding.cluster) {
            let gateway = try await connector.gateway(for: cluster)
            try await remove(.azureIdentityBinding, name: binding.bindingObjectName, binding: binding, includingBinding: true,
                             gateway: gateway, job: job, progress: progress, into: &audit)
            // The AzureIdentity is shared by the identity's bindings in this cluster and namespace.
            let siblings = try await bindings.siblings(of: binding)
            if siblings.isEmpty {
                try await remove(.azureIdentity, name: binding.azureIdentityObjectName, binding: binding, includingBinding: false,
                                 gateway: gateway, job: job, progress: progress, into: &audit)
            } else {
                await progress.record(JobStep(name: "AzureIdentity.delete", outcome: "skipped",
                                              details: ["reason": "still used by \(siblings.map(\.name).joined(separator: ", "))"]))
            }
        }
        audit.append(event("binding.removed", binding, job: job, details: ["cluster": .string(binding.cluster), "namespace": .string(binding.namespace)]))
        try await bindings.deleteBinding(binding, audit: audit,
                                         identityDeletion: IdentityJobs.deletion(team: binding.team, name: binding.identity, requestId: job.requestId))
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
        var details = details
        details["jobKind"] = .string(job.kind)
        return AuditDraft(actor: "podid", actorTeam: nil, action: action, outcome: outcome, team: binding.team, resourceType: "binding",
                          resourceName: "\(binding.identity)/\(binding.name)", requestId: job.requestId, jobId: job.id, details: details)
    }
}

/// The cluster connection check: reachable, CRDs served, podid's permissions. It reports rather
/// than retries: an unreachable cluster is a status, not a failed job.
public struct ClusterCheckWorkflow: JobHandler {
    let clusters: any ClusterStore
    let connector: any KubernetesConnector

    /// Creates the workflow.
    public init(clusters: any ClusterStore, connector: any KubernetesConnector) {
        self.clusters = clusters
        self.connector = connector
    }

    public func run(_ job: Job, progress: JobProgress) async throws {
        guard let name = job.payload.at("cluster")?.stringValue, let cluster = try await clusters.cluster(named: name) else { return }
        let status = await Self.check(cluster, connector: connector)
        await progress.record(JobStep(name: "cluster.check", outcome: status.reachable ? "succeeded" : "failed", details: ["message": status.message]))
        try await clusters.recordStatus(
            cluster: name, status,
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
