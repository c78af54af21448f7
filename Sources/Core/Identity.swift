import Foundation

/// The lifecycle state of an identity (and, later, a binding).
public enum ResourceState: String, Sendable, Codable, CaseIterable {
    /// Accepted; a job will make it so.
    case pending
    /// A job is working on it.
    case provisioning
    /// Azure matches the desired state of `generation`.
    case ready
    /// A permanent error or exhausted attempts; `lastError` says what to fix.
    case failed
    /// Being deleted.
    case deleting
}

/// A role assignment podid made (or found already in place) for a grant.
public struct RecordedAssignment: Sendable, Equatable, Codable, Hashable {
    /// The grant's role name.
    public var role: String
    /// The grant's scope.
    public var scope: String
    /// The role definition's full id.
    public var roleDefinitionId: String
    /// The role assignment's id.
    public var assignmentId: String
    /// True when podid created it (its name is podid's deterministic name); false when an equal
    /// assignment made by someone else was already there, which podid never deletes.
    public var owned: Bool

    /// Creates a record.
    public init(role: String, scope: String, roleDefinitionId: String, assignmentId: String, owned: Bool) {
        self.role = role
        self.scope = scope
        self.roleDefinitionId = roleDefinitionId
        self.assignmentId = assignmentId
        self.owned = owned
    }

    /// Whether it implements `grant` (roles and scopes compare case-insensitively, as in Azure).
    public func implements(_ grant: IdentityGrant) -> Bool {
        role.lowercased() == grant.role.lowercased() && scope.lowercased() == grant.scope.lowercased()
    }
}

/// An identity as stored: the desired state a team asked for and what the jobs observed in Azure.
public struct Identity: Sendable, Equatable, Codable {
    public var team: String
    public var name: String
    public var subscriptionId: String
    public var resourceGroup: String
    public var location: String
    public var tags: [String: String]
    public var grants: [IdentityGrant]
    public var deletionPolicy: DeletionPolicy
    /// The Azure identity to adopt, when it was created by adoption.
    public var adoptResourceId: String?
    /// Whether an admin asked for the adoption (admins may adopt any identity; teams only one whose
    /// podid tags name the team).
    public var adoptedByAdmin: Bool
    public var resourceId: String?
    public var clientId: String?
    public var principalId: String?
    public var tenantId: String?
    /// The role assignments in place for the grants.
    public var assignments: [RecordedAssignment]
    public var state: ResourceState
    public var message: String?
    public var lastError: String?
    /// Counts accepted changes of the desired state; also the ETag.
    public var generation: Int64
    /// The generation the last successful job applied.
    public var observedGeneration: Int64
    public var createdAt: Date
    public var updatedAt: Date

    /// Creates a stored identity.
    public init(team: String, name: String, subscriptionId: String, resourceGroup: String, location: String,
                tags: [String: String], grants: [IdentityGrant], deletionPolicy: DeletionPolicy, adoptResourceId: String?,
                adoptedByAdmin: Bool, resourceId: String? = nil, clientId: String? = nil, principalId: String? = nil,
                tenantId: String? = nil, assignments: [RecordedAssignment] = [], state: ResourceState = .pending,
                message: String? = nil, lastError: String? = nil, generation: Int64 = 1, observedGeneration: Int64 = 0,
                createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.team = team
        self.name = name
        self.subscriptionId = subscriptionId
        self.resourceGroup = resourceGroup
        self.location = location
        self.tags = tags
        self.grants = grants
        self.deletionPolicy = deletionPolicy
        self.adoptResourceId = adoptResourceId
        self.adoptedByAdmin = adoptedByAdmin
        self.resourceId = resourceId
        self.clientId = clientId
        self.principalId = principalId
        self.tenantId = tenantId
        self.assignments = assignments
        self.state = state
        self.message = message
        self.lastError = lastError
        self.generation = generation
        self.observedGeneration = observedGeneration
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Where the identity lives (or will) in Azure.
    public var azureRef: AzureIdentityRef {
        AzureIdentityRef(subscriptionId: subscriptionId, resourceGroup: resourceGroup, name: name)
    }

    /// The desired state, as a spec.
    public var spec: IdentitySpec {
        IdentitySpec(name: name, subscriptionId: subscriptionId, resourceGroup: resourceGroup, location: location, tags: tags,
                     grants: grants, deletionPolicy: deletionPolicy, adoptResourceId: adoptResourceId)
    }

    /// The API path of the identity.
    public var path: String { "/v1/teams/\(team)/identities/\(name)" }

    /// The tags the Azure identity carries: the team's plus podid's ownership tags.
    public var azureTags: [String: String] {
        tags.merging(IdentityOwnership.tags(team: team, identity: name)) { _, podid in podid }
    }
}

/// podid's ownership tags on Azure identities (API-OUTLINE "Naming and ownership").
public enum IdentityOwnership {
    public static let managedByKey = "podid-managed-by"
    public static let teamKey = "podid-team"
    public static let identityKey = "podid-identity"

    /// The tags podid writes on an identity of `team` named `identity`.
    public static func tags(team: String, identity: String) -> [String: String] {
        [managedByKey: "podid", teamKey: team, identityKey: identity]
    }

    /// The team named by an Azure identity's podid tags, when it is managed by podid.
    public static func team(in tags: [String: String]) -> String? {
        let lowered = Dictionary(tags.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        guard lowered[managedByKey] == "podid" else { return nil }
        return lowered[teamKey]
    }

    /// Whether the tags say the identity is podid's identity `identity` of `team`.
    public static func isOwned(_ tags: [String: String], team: String, identity: String) -> Bool {
        let lowered = Dictionary(tags.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        return lowered[managedByKey] == "podid" && lowered[teamKey] == team && lowered[identityKey]?.lowercased() == identity.lowercased()
    }
}

/// A partial change of an identity's desired state (PATCH): present fields replace stored ones.
public struct IdentityPatch: Sendable, Equatable {
    public var tags: [String: String]?
    public var grants: [IdentityGrant]?
    public var deletionPolicy: DeletionPolicy?

    /// Creates a patch.
    public init(tags: [String: String]? = nil, grants: [IdentityGrant]? = nil, deletionPolicy: DeletionPolicy? = nil) {
        self.tags = tags
        self.grants = grants
        self.deletionPolicy = deletionPolicy
    }
}

/// What a job observed and did, written to the identity row together with its audit events.
public struct IdentityStatusUpdate: Sendable, Equatable {
    public var state: ResourceState?
    public var message: String?
    /// Set to record an error; `.some(nil)` clears it.
    public var lastError: String??
    public var azure: AzureIdentityInfo?
    /// Replaces the recorded role assignments.
    public var assignments: [RecordedAssignment]?
    /// Replaces the desired tags (adoption keeps the tags the identity already had).
    public var tags: [String: String]?
    /// Replaces the location (adoption takes Azure's).
    public var location: String?
    /// Marks `generation` as applied; the state becomes `ready` only if it is still the current one.
    public var observedGeneration: Int64?

    /// Creates an update.
    public init(state: ResourceState? = nil, message: String? = nil, lastError: String?? = nil, azure: AzureIdentityInfo? = nil,
                assignments: [RecordedAssignment]? = nil, tags: [String: String]? = nil, location: String? = nil,
                observedGeneration: Int64? = nil) {
        self.state = state
        self.message = message
        self.lastError = lastError
        self.azure = azure
        self.assignments = assignments
        self.tags = tags
        self.location = location
        self.observedGeneration = observedGeneration
    }
}

/// Identities in the system of record. Every change writes its audit event(s) and enqueues its
/// job in the same transaction.
public protocol IdentityStore: Sendable {
    /// Inserts an identity and its job; 409 when the name (in the team, or in Azure) is taken or the
    /// team's `maxIdentities` is reached.
    func insertIdentity(_ identity: Identity, job: NewJob, audit: AuditDraft) async throws -> Identity
    /// The identity, if any.
    func identity(team: String, name: String) async throws -> Identity?
    /// Identities of a team ordered by name, after the page's position.
    func identities(team: String, page: PageRequest) async throws -> [Identity]
    /// The identities of these (team, name) pairs that exist, in one query (a health sweep's).
    func identities(keys: [IdentityKey]) async throws -> [Identity]
    /// Replaces the desired state if the generation is still `ifGeneration`, with generation + 1 and
    /// state `pending`, and enqueues `job`; nil when the generation moved on (or the identity is gone).
    func replaceIdentity(_ identity: Identity, ifGeneration: Int64, job: NewJob,
                         audit: @escaping @Sendable (Identity) -> AuditDraft) async throws -> Identity?
    /// Marks the identity `deleting` (if the generation is still `ifGeneration`), cancels its queued
    /// jobs and enqueues the delete job; nil when the generation moved on. While it has bindings
    /// that are not being deleted: 409 naming them, unless `cascade` gives each one's delete job and
    /// audit event (then they are marked `deleting` in the same transaction).
    func markDeleting(team: String, name: String, ifGeneration: Int64, job: NewJob,
                      cascade: (@Sendable (Binding) -> (NewJob, AuditDraft))?,
                      audit: @escaping @Sendable (Identity) -> AuditDraft) async throws -> Identity?
    /// Records what a job observed or did, with its audit events; nil when the identity is gone.
    @discardableResult
    func updateStatus(team: String, name: String, _ update: IdentityStatusUpdate, audit: [AuditDraft]) async throws -> Identity?
    /// Deletes the row (the delete job's last step) with its audit events.
    func deleteIdentity(team: String, name: String, audit: [AuditDraft]) async throws
}

/// A team's identity by name.
public struct IdentityKey: Sendable, Hashable {
    public var team: String
    public var name: String

    public init(team: String, name: String) {
        self.team = team
        self.name = name
    }
}
