import Foundation

/// A role a team may grant its identities, on scopes under a prefix.
public struct GrantRule: Sendable, Equatable, Codable {
    /// An Azure role name, such as `Reader`.
    public var role: String
    /// An ARM scope; grants on it and below it are allowed.
    public var scopePrefix: String

    /// Creates a grant rule.
    public init(role: String, scopePrefix: String) {
        self.role = role
        self.scopePrefix = scopePrefix
    }
}

/// What a team's identities may do; set by admins. Empty lists allow nothing.
public struct TeamPolicy: Sendable, Equatable, Codable {
    /// Subscription ids the team's identities may live in.
    public var subscriptions: [String]
    /// Resource group names the team's identities may live in.
    public var resourceGroups: [String]
    /// Roles the team may grant, each on scopes under a prefix.
    public var grants: [GrantRule]
    /// Clusters the team may bind identities in.
    public var clusters: [String]
    /// Namespaces where the team's pods may use its identities.
    public var namespaces: [String]
    /// How many identities the team may own.
    public var maxIdentities: Int

    /// The policy of a new team when the admin gives none: nothing allowed, a quota of 20.
    public static let empty = TeamPolicy(
        subscriptions: [], resourceGroups: [], grants: [], clusters: [], namespaces: [], maxIdentities: 20)

    /// Creates a policy.
    public init(
        subscriptions: [String], resourceGroups: [String], grants: [GrantRule], clusters: [String],
        namespaces: [String], maxIdentities: Int
    ) {
        self.subscriptions = subscriptions
        self.resourceGroups = resourceGroups
        self.grants = grants
        self.clusters = clusters
        self.namespaces = namespaces
        self.maxIdentities = maxIdentities
    }
}

/// A team: owns identities, limited by its policy.
public struct Team: Sendable, Equatable, Codable {
    /// A DNS-1123 label of at most 40 characters; the key used in paths.
    public var name: String
    /// A human-readable name.
    public var displayName: String
    /// E-mail addresses or chat handles of the people to ask.
    public var contacts: [String]
    /// What the team's identities may do.
    public var policy: TeamPolicy
    /// Increases by one with every accepted change; the ETag.
    public var version: Int64
    /// When the team was created.
    public var createdAt: Date
    /// When the team last changed.
    public var updatedAt: Date

    /// Creates a team.
    public init(
        name: String, displayName: String, contacts: [String], policy: TeamPolicy, version: Int64 = 1,
        createdAt: Date = Date(), updatedAt: Date = Date()
    ) {
        self.name = name
        self.displayName = displayName
        self.contacts = contacts
        self.policy = policy
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A partial policy: each present key replaces that part of the stored policy.
public struct TeamPolicyPatch: Sendable, Equatable {
    public var subscriptions: [String]?
    public var resourceGroups: [String]?
    public var grants: [GrantRule]?
    public var clusters: [String]?
    public var namespaces: [String]?
    public var maxIdentities: Int?

    /// Creates a policy patch.
    public init(
        subscriptions: [String]? = nil, resourceGroups: [String]? = nil, grants: [GrantRule]? = nil,
        clusters: [String]? = nil, namespaces: [String]? = nil, maxIdentities: Int? = nil
    ) {
        self.subscriptions = subscriptions
        self.resourceGroups = resourceGroups
        self.grants = grants
        self.clusters = clusters
        self.namespaces = namespaces
        self.maxIdentities = maxIdentities
    }

    /// The policy with this patch applied.
    public func applied(to policy: TeamPolicy) -> TeamPolicy {
        TeamPolicy(
            subscriptions: subscriptions ?? policy.subscriptions,
            resourceGroups: resourceGroups ?? policy.resourceGroups,
            grants: grants ?? policy.grants,
            clusters: clusters ?? policy.clusters,
            namespaces: namespaces ?? policy.namespaces,
            maxIdentities: maxIdentities ?? policy.maxIdentities)
    }
}

/// A change to a team: present fields replace stored ones.
public struct TeamPatch: Sendable, Equatable {
    public var displayName: String?
    public var contacts: [String]?
    public var policy: TeamPolicyPatch?

    /// Creates a team patch.
    public init(displayName: String? = nil, contacts: [String]? = nil, policy: TeamPolicyPatch? = nil) {
        self.displayName = displayName
        self.contacts = contacts
        self.policy = policy
    }
}

/// A request to create a team.
public struct NewTeam: Sendable, Equatable {
    public var name: String
    public var displayName: String?
    public var contacts: [String]?
    public var policy: TeamPolicyPatch?

    /// Creates a team request.
    public init(name: String, displayName: String? = nil, contacts: [String]? = nil, policy: TeamPolicyPatch? = nil) {
        self.name = name
        self.displayName = displayName
        self.contacts = contacts
        self.policy = policy
    }
}
