import API
import Core
import Foundation
import OpenAPIRuntime

/// Wire <-> domain mapping.
enum Wire {
    static func role(_ role: Role) -> Components.Schemas.Role {
        switch role {
        case .admin: .admin
        case .maintainer: .maintainer
        case .viewer: .viewer
        case .auditor: .auditor
        }
    }

    static func role(_ role: Components.Schemas.Role) -> Role {
        switch role {
        case .admin: .admin
        case .maintainer: .maintainer
        case .viewer: .viewer
        case .auditor: .auditor
        }
    }

    static func etag(_ version: Int64) -> String { "\"\(version)\"" }

    /// The version in an `If-Match` header: nil when absent or `*`; 412 when it is no ETag podid gave.
    static func ifMatch(_ header: String?) throws -> Int64? {
        guard var text = header?.trimmingCharacters(in: .whitespaces), text != "*" else { return nil }
        if text.hasPrefix("W/") { text.removeFirst(2) }
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\""), let version = Int64(text.dropFirst().dropLast())
        else {
            throw DomainError(.preconditionFailed, "If-Match must be an ETag this resource returned, such as \"3\".")
        }
        return version
    }

    static func policy(_ policy: TeamPolicy) -> Components.Schemas.TeamPolicy {
        .init(
            subscriptions: policy.subscriptions, resourceGroups: policy.resourceGroups,
            grants: policy.grants.map { .init(role: $0.role, scopePrefix: $0.scopePrefix) },
            clusters: policy.clusters, namespaces: policy.namespaces, maxIdentities: policy.maxIdentities)
    }

    static func policyPatch(_ wire: Components.Schemas.TeamPolicy) -> TeamPolicyPatch {
        TeamPolicyPatch(
            subscriptions: wire.subscriptions, resourceGroups: wire.resourceGroups,
            grants: wire.grants?.map { GrantRule(role: $0.role, scopePrefix: $0.scopePrefix) },
            clusters: wire.clusters, namespaces: wire.namespaces, maxIdentities: wire.maxIdentities)
    }

    static func team(_ team: Team) -> Components.Schemas.Team {
        .init(
            name: team.name, displayName: team.displayName, contacts: team.contacts, policy: policy(team.policy),
            createdAt: team.createdAt, updatedAt: team.updatedAt)
    }

    static func token(_ record: TokenRecord) -> Components.Schemas.Token {
        .init(
            id: record.id.uuidString.lowercased(), name: record.name, role: role(record.role), team: record.team,
            expiresAt: record.expiresAt, createdAt: record.createdAt, createdBy: record.createdBy)
    }

    static func createdToken(_ record: TokenRecord, secret: String) -> Components.Schemas.TokenCreated {
        .init(
            id: record.id.uuidString.lowercased(), name: record.name, role: role(record.role), team: record.team,
            expiresAt: record.expiresAt, createdAt: record.createdAt, createdBy: record.createdBy, token: secret)
    }

    static func newToken(_ wire: Components.Schemas.TokenCreate) -> NewToken {
        NewToken(name: wire.name, role: role(wire.role), expiresAt: wire.expiresAt)
    }
}

extension Wire {
    /// Keys of an identity that are `null` until a job fills them.
    static let identityNullKeys = ["resourceId", "clientId", "principalId", "tenantId", "message", "lastError"]
    /// Keys of a job that may be `null`.
    static let jobNullKeys = ["team", "lastError", "requestId", "finishedAt"]

    static func identity(_ identity: Identity) -> Components.Schemas.Identity {
        .init(
            name: identity.name, team: identity.team, subscriptionId: identity.subscriptionId, resourceGroup: identity.resourceGroup,
            location: identity.location, tags: .init(additionalProperties: identity.tags),
            grants: identity.grants.map { .init(role: $0.role, scope: $0.scope) }, deletionPolicy: deletionPolicy(identity.deletionPolicy),
            resourceId: identity.resourceId, clientId: identity.clientId, principalId: identity.principalId, tenantId: identity.tenantId,
            roleAssignments: identity.assignments.map {
                .init(role: $0.role, scope: $0.scope, assignmentId: $0.assignmentId, managedByPodid: $0.owned)
            },
            state: state(identity.state), message: identity.message, lastError: identity.lastError, generation: identity.generation,
            observedGeneration: identity.observedGeneration, createdAt: identity.createdAt, updatedAt: identity.updatedAt)
    }

    static func state(_ state: ResourceState) -> Components.Schemas.ResourceState {
        switch state {
        case .pending: .pending
        case .provisioning: .provisioning
        case .ready: .ready
        case .failed: .failed
        case .deleting: .deleting
        }
    }

    static func deletionPolicy(_ policy: DeletionPolicy) -> Components.Schemas.DeletionPolicy {
        switch policy {
        case .delete: .delete
        case .retain: .retain
        }
    }

    static func deletionPolicy(_ policy: Components.Schemas.DeletionPolicy) -> DeletionPolicy {
        switch policy {
        case .delete: .delete
        case .retain: .retain
        }
    }

    static func grants(_ grants: [Components.Schemas.Grant]?) -> [IdentityGrant]? {
        grants?.map { IdentityGrant(role: $0.role, scope: $0.scope) }
    }

    /// A create or PUT body as a spec; `name` comes from the path for PUT.
    static func spec(_ body: Components.Schemas.IdentityCreate, name: String?) throws -> IdentitySpec {
        guard let name = name ?? body.name else {
            throw DomainError(.validation, "The identity needs a name.", fields: [FieldProblem("name", "is required")])
        }
        return IdentitySpec(
            name: name, subscriptionId: body.subscriptionId, resourceGroup: body.resourceGroup, location: body.location ?? "",
            tags: body.tags?.additionalProperties ?? [:], grants: grants(body.grants) ?? [],
            deletionPolicy: body.deletionPolicy.map(deletionPolicy) ?? .delete, adoptResourceId: body.resourceId)
    }

    static func jobState(_ state: JobState) -> Components.Schemas.JobState {
        switch state {
        case .queued: .queued
        case .running: .running
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        }
    }

    static func jobState(_ state: Components.Schemas.JobState) -> JobState {
        switch state {
        case .queued: .queued
        case .running: .running
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        }
    }

    static func job(_ job: Job) -> Components.Schemas.Job {
        .init(
            id: job.id.uuidString.lowercased(), kind: job.kind, resource: job.resource, team: job.team, state: jobState(job.state),
            attempts: job.attempts, maxAttempts: job.maxAttempts, runAt: job.runAt, lastError: job.lastError,
            steps: job.steps.map { .init(name: $0.name, outcome: $0.outcome, at: $0.at, details: .init(additionalProperties: $0.details)) },
            requestId: job.requestId, createdAt: job.createdAt, updatedAt: job.updatedAt, finishedAt: job.finishedAt)
    }
}

extension Wire {
    /// (`kubeletIdentity` and `status` are objects: absent rather than null when unset.)
    static let clusterNullKeys = ["apiServer", "nodeResourceGroup"]
    static let bindingNullKeys = ["message", "lastError", "health"]

    static func connection(_ connection: ClusterConnection) -> Components.Schemas.ClusterConnection {
        switch connection {
        case .inCluster: .init(mode: .inCluster)
        case .kubeconfig(let path, let context): .init(mode: .kubeconfig, path: path, context: context)
        case .token(let tokenFile, let caFile): .init(mode: .token, tokenFile: tokenFile, caFile: caFile)
        }
    }

    /// The wire connection as a domain value; 422 naming the field a mode needs.
    static func connection(_ wire: Components.Schemas.ClusterConnection) throws -> ClusterConnection {
        switch wire.mode {
        case .inCluster:
            return .inCluster
        case .kubeconfig:
            guard let path = wire.path else {
                throw DomainError(.validation, "A kubeconfig connection needs a path.", fields: [FieldProblem("connection.path", "is required for mode kubeconfig")])
            }
            return .kubeconfig(path: path, context: wire.context)
        case .token:
            guard let tokenFile = wire.tokenFile else {
                throw DomainError(.validation, "A token connection needs a token file.", fields: [FieldProblem("connection.tokenFile", "is required for mode token")])
            }
            return .token(tokenFile: tokenFile, caFile: wire.caFile)
        }
    }

    static func micMode(_ mode: MICMode) -> Components.Schemas.MICMode {
        switch mode {
        case .cluster: .cluster
        case .namespaced: .namespaced
        }
    }

    static func micMode(_ mode: Components.Schemas.MICMode) -> MICMode {
        switch mode {
        case .cluster: .cluster
        case .namespaced: .namespaced
        }
    }

    static func kubelet(_ wire: Components.Schemas.KubeletIdentity) -> KubeletIdentity {
        KubeletIdentity(resourceId: wire.resourceId, clientId: wire.clientId, objectId: wire.objectId)
    }

    static func cluster(_ cluster: Cluster) -> Components.Schemas.Cluster {
        .init(
            name: cluster.name, apiServer: cluster.apiServer, connection: connection(cluster.connection),
            brokerNamespace: cluster.brokerNamespace, micMode: micMode(cluster.micMode), nodeResourceGroup: cluster.nodeResourceGroup,
            kubeletIdentity: cluster.kubeletIdentity.map { .init(resourceId: $0.resourceId, clientId: $0.clientId, objectId: $0.objectId) },
            status: cluster.status.map { status in
                .init(reachable: status.reachable, crdsServed: status.crdsServed, servedKinds: status.servedKinds,
                      permissions: status.permissions.map { .init(verb: $0.verb, resource: $0.resource, namespace: $0.namespace, allowed: $0.allowed) },
                      serverVersion: status.serverVersion, checkedAt: status.checkedAt, message: status.message)
            },
            createdAt: cluster.createdAt, updatedAt: cluster.updatedAt)
    }

    static func newCluster(_ wire: Components.Schemas.ClusterCreate) throws -> Cluster {
        Cluster(
            name: wire.name, apiServer: wire.apiServer, connection: try connection(wire.connection),
            brokerNamespace: wire.brokerNamespace ?? "aad-broker", micMode: wire.micMode.map(micMode) ?? .cluster,
            nodeResourceGroup: wire.nodeResourceGroup, kubeletIdentity: wire.kubeletIdentity.map(kubelet))
    }

    static func clusterPatch(_ wire: Components.Schemas.ClusterPatch) throws -> ClusterPatch {
        ClusterPatch(
            apiServer: wire.apiServer.map { $0.isEmpty ? nil : $0 }, connection: try wire.connection.map(connection),
            brokerNamespace: wire.brokerNamespace, micMode: wire.micMode.map(micMode),
            nodeResourceGroup: wire.nodeResourceGroup.map { $0.isEmpty ? nil : $0 },
            kubeletIdentity: wire.kubeletIdentity.map { wire in
                let kubelet = Self.kubelet(wire)
                return kubelet == KubeletIdentity() ? nil : kubelet
            })
    }

    static func binding(_ binding: Binding) -> Components.Schemas.Binding {
        .init(
            name: binding.name, team: binding.team, identity: binding.identity, cluster: binding.cluster, namespace: binding.namespace,
            selector: binding.selector, podLabel: .init(additionalProperties: binding.podLabel),
            azureIdentityName: binding.azureIdentityObjectName, azureIdentityBindingName: binding.bindingObjectName,
            state: state(binding.state), message: binding.message, lastError: binding.lastError, health: binding.health?.rawValue,
            generation: binding.generation, observedGeneration: binding.observedGeneration,
            createdAt: binding.createdAt, updatedAt: binding.updatedAt)
    }
}

/// RFC 3339 dates: written with milliseconds (audit timestamps need them; the runtime's default
/// drops them), read with or without fractional seconds.
struct RFC3339DateTranscoder: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        Timestamp.format(date)
    }

    func decode(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "Expected an RFC 3339 timestamp such as 2030-01-31T12:00:00Z, got '\(text)'."))
        }
        return date
    }
}
