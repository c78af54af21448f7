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

/// podid's ownership tags on Azure identities (docs/identities.md describes them).
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

/// A team's identity by name.
public struct IdentityKey: Sendable, Hashable {
    public var team: String
    public var name: String

    public init(team: String, name: String) {
        self.team = team
        self.name = name
    }
}
