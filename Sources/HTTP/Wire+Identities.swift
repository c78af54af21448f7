import API
import Core
import Foundation

/// Identities and the jobs that make them exist.
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

    static func identityPatch(_ wire: Components.Schemas.IdentityPatch) -> IdentityPatch {
        IdentityPatch(tags: wire.tags?.additionalProperties, grants: grants(wire.grants), deletionPolicy: wire.deletionPolicy.map(deletionPolicy))
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

    static func jobFilter(_ query: Operations.ListJobs.Input.Query) -> JobFilter {
        JobFilter(team: query.team, state: query.state.map(jobState), kind: query.kind, resource: query.resource)
    }

    static func job(_ job: Job) -> Components.Schemas.Job {
        .init(
            id: job.id.uuidString.lowercased(), kind: job.kind, resource: job.resource, team: job.team, state: jobState(job.state),
            attempts: job.attempts, maxAttempts: job.maxAttempts, runAt: job.runAt, lastError: job.lastError,
            steps: job.steps.map { .init(name: $0.name, outcome: $0.outcome, at: $0.at, details: .init(additionalProperties: $0.details)) },
            requestId: job.requestId, createdAt: job.createdAt, updatedAt: job.updatedAt, finishedAt: job.finishedAt)
    }
}
