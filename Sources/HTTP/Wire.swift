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
