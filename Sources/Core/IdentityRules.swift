import Foundation

/// A role an identity is granted on a scope.
public struct IdentityGrant: Sendable, Equatable, Codable, Hashable {
    /// An Azure role name, such as `Reader`.
    public var role: String
    /// An ARM scope, such as `/subscriptions/<id>/resourceGroups/<group>`.
    public var scope: String

    /// Creates a grant.
    public init(role: String, scope: String) {
        self.role = role
        self.scope = scope
    }
}

/// What happens in Azure when podid deletes an identity.
public enum DeletionPolicy: String, Sendable, Codable, CaseIterable {
    /// The Azure identity is deleted too (the default).
    case delete
    /// The Azure identity is kept; only podid's record and role assignments go.
    case retain
}

/// What a team asks for when it creates or changes an identity.
public struct IdentitySpec: Sendable, Equatable {
    public var name: String
    public var subscriptionId: String
    public var resourceGroup: String
    public var location: String
    public var tags: [String: String]
    public var grants: [IdentityGrant]
    public var deletionPolicy: DeletionPolicy
    /// An existing Azure identity to adopt instead of creating one.
    public var adoptResourceId: String?

    /// Creates a spec.
    public init(name: String, subscriptionId: String, resourceGroup: String, location: String, tags: [String: String] = [:],
                grants: [IdentityGrant] = [], deletionPolicy: DeletionPolicy = .delete, adoptResourceId: String? = nil) {
        self.name = name
        self.subscriptionId = subscriptionId
        self.resourceGroup = resourceGroup
        self.location = location
        self.tags = tags
        self.grants = grants
        self.deletionPolicy = deletionPolicy
        self.adoptResourceId = adoptResourceId
    }
}

/// Azure's and aad-pod-identity's rules for identities, and the team policy that limits them.
public enum IdentityRules {
    /// Tags podid writes on every identity it creates; teams cannot set keys with this prefix.
    public static let reservedTagPrefix = "podid-"
    /// Azure allows 50 tags; podid's own take three.
    public static let maxUserTags = 47
    /// Grants per identity.
    public static let maxGrants = 50

    /// The location in ARM's form: `West Europe` becomes `westeurope`.
    public static func normalizedLocation(_ location: String) -> String {
        location.lowercased().replacingOccurrences(of: " ", with: "")
    }

    /// Whether `name` is an identity name podid accepts: Azure's rule (letters, digits, `-`, `_`,
    /// starting with a letter or digit), at most 24 characters, because aad-pod-identity attaches
    /// identities to VM scale sets, which refuse longer names, and ending with a letter or digit,
    /// because it names Kubernetes objects.
    public static func isIdentityName(_ name: String) -> Bool {
        guard (3...24).contains(name.count), let first = name.first, let last = name.last,
              first.isASCII, first.isLetter || first.isNumber, last.isASCII, last.isLetter || last.isNumber
        else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// Whether `scope` lies at or below `prefix` (ARM ids compare case-insensitively).
    public static func scope(_ scope: String, isWithin prefix: String) -> Bool {
        let scope = scope.lowercased()
        let prefix = prefix.lowercased()
        return scope == prefix || scope.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/")
    }

    /// Checks a spec against Azure's rules and the team's policy; a 422 names every field and, for
    /// the policy, what is allowed. `checkPlacement` is false for changes of an existing identity,
    /// whose subscription and resource group cannot change (a narrowed policy must not stop a team
    /// from removing grants or tags).
    public static func validate(_ spec: IdentitySpec, policy: TeamPolicy, checkPlacement: Bool = true) throws {
        var validator = Validator()
        validator.check(isIdentityName(spec.name), "name",
                        "must be 3 to 24 letters, digits, '-' or '_', starting and ending with a letter or digit (aad-pod-identity attaches identities to VM scale sets, which allow at most 24 characters, and the name is part of Kubernetes object names)")
        validator.check(Rules.isGUID(spec.subscriptionId), "subscriptionId", "must be a subscription id (a GUID)")
        validator.check(Rules.isResourceGroupName(spec.resourceGroup), "resourceGroup",
                        "must be a resource group name: 1 to 90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'")
        let location = normalizedLocation(spec.location)
        // An adoption may leave the location out: the identity's own location is taken.
        let locationOptional = spec.adoptResourceId != nil && location.isEmpty
        validator.check(locationOptional || !location.isEmpty && location.count <= 40 && location.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) },
                        "location", "must be an Azure region such as westeurope")
        validator.check(spec.tags.count <= maxUserTags, "tags", "at most \(maxUserTags) tags are allowed (podid adds three of its own)")
        for (key, value) in spec.tags.sorted(by: { $0.key < $1.key }) {
            validator.check(!key.lowercased().hasPrefix(reservedTagPrefix), "tags.\(key)", "tag keys starting with '\(reservedTagPrefix)' are podid's own")
            validator.check(!key.isEmpty && key.count <= 512 && !key.contains(where: { "<>%&\\?/".contains($0) }), "tags.\(key)",
                            "tag keys are 1 to 512 characters without < > % & \\ ? /")
            validator.check(value.count <= 256, "tags.\(key)", "tag values are at most 256 characters")
        }
        validator.check(spec.grants.count <= maxGrants, "grants", "at most \(maxGrants) grants are allowed")
        var seen = Set<String>()
        for (index, grant) in spec.grants.enumerated() {
            validator.check(Rules.isPlainText(grant.role, maxLength: 128), "grants[\(index)].role", "must be an Azure role name such as 'Reader'")
            validator.check(Rules.isARMScope(grant.scope), "grants[\(index)].scope",
                            "must be an ARM scope such as /subscriptions/<id>/resourceGroups/<group>: segments of letters, digits, '-', '_', '.', '(' and ')', no '.' or '..' segments, no percent escapes, and no trailing '/'")
            let key = "\(grant.role.lowercased())|\(grant.scope.lowercased())"
            validator.check(seen.insert(key).inserted, "grants[\(index)]", "grants \(grant.role) on \(grant.scope) twice")
        }
        if let resourceId = spec.adoptResourceId {
            if let ref = AzureIdentityRef(resourceId: resourceId) {
                validator.check(ref.subscriptionId.lowercased() == spec.subscriptionId.lowercased()
                                && ref.resourceGroup.lowercased() == spec.resourceGroup.lowercased()
                                && ref.name.lowercased() == spec.name.lowercased(),
                                "resourceId", "must name the identity's own subscription, resource group and name")
            } else {
                validator.check(false, "resourceId",
                                "must be a user-assigned identity id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>")
            }
        }
        try validator.throwIfInvalid()

        // The team's policy: where its identities may live and what they may be granted.
        var policyCheck = Validator()
        if checkPlacement {
            let subscriptions = policy.subscriptions.map { $0.lowercased() }
            policyCheck.check(subscriptions.contains(spec.subscriptionId.lowercased()), "subscriptionId",
                              "subscription \(spec.subscriptionId) is not allowed for this team; allowed: \(describe(policy.subscriptions))")
            policyCheck.check(policy.resourceGroups.map { $0.lowercased() }.contains(spec.resourceGroup.lowercased()), "resourceGroup",
                              "resource group \(spec.resourceGroup) is not allowed for this team; allowed: \(describe(policy.resourceGroups))")
        }
        for (index, grant) in spec.grants.enumerated() {
            let allowed = policyAllows(role: grant.role, scope: grant.scope, policy: policy)
            let rules = policy.grants.map { "\($0.role) on \($0.scopePrefix) and below" }
            policyCheck.check(allowed, "grants[\(index)]",
                              "\(grant.role) on \(grant.scope) is not allowed for this team; allowed: \(describe(rules))")
        }
        try policyCheck.throwIfInvalid()
    }

    /// Whether the team's policy allows `role` on `scope`: the scope is one podid accepts
    /// (`Rules.isARMScope`) and lies within a grant rule for the role.
    public static func policyAllows(role: String, scope target: String, policy: TeamPolicy) -> Bool {
        Rules.isARMScope(target) && policy.grants.contains { rule in
            rule.role.lowercased() == role.lowercased() && scope(target, isWithin: rule.scopePrefix)
        }
    }

    /// Checks a grant before its role assignment is made and again on the scope that Azure answers
    /// with (`landed`): both must be the grant's own scope and allowed by the team's current policy.
    /// A grant recorded before a rule was tightened, or a hop that rewrote the path, is refused
    /// here rather than recorded as access the team has.
    public static func checkAssignmentScope(role: String, requested: String, landed: String? = nil, policy: TeamPolicy) throws {
        guard policyAllows(role: role, scope: requested, policy: policy) else {
            throw DomainError(.forbidden, "The grant \(role) on \(requested) is not allowed by the team's policy (or is no ARM scope podid accepts); remove it from the identity's grants, or ask an admin to allow it.")
        }
        if let landed, landed.lowercased() != requested.lowercased() {
            throw DomainError(.forbidden, "Azure created the role assignment for \(role) on \(landed), not on the requested \(requested); podid deleted it and records no such access.")
        }
    }

    /// Only an admin changes the deletion policy of an identity an admin adopted: the team did not
    /// create it in Azure, and podid deletes there only what it created unless an admin says so.
    public static func checkDeletionPolicyChange(_ current: Identity, to policy: DeletionPolicy, by role: Role) throws {
        guard current.adoptedByAdmin, policy != current.deletionPolicy, role != .admin else { return }
        throw DomainError(.forbidden, "Identity '\(current.name)' was adopted by an admin, so only an admin may change its deletionPolicy (it is \(current.deletionPolicy.rawValue)): podid deletes in Azure only what it created. Leave deletionPolicy out, or ask an admin.")
    }

    /// The quota: a team owns at most `policy.maxIdentities` identities.
    public static func checkQuota(_ team: Team, owned: Int) throws {
        let limit = team.policy.maxIdentities
        if owned >= limit {
            throw DomainError(
                .conflict,
                "Team '\(team.name)' has reached its quota: policy.maxIdentities is \(limit) and it owns \(owned) identities. Delete one, or ask an admin to raise maxIdentities.")
        }
    }

    /// An identity with bindings (other than ones being deleted) is deleted only with `cascade`.
    public static func checkDeletion(_ name: String, bindings: [Binding], cascade: Bool) throws {
        guard !bindings.isEmpty, !cascade else { return }
        let names = bindings.prefix(10).map { "\($0.name) (cluster \($0.cluster))" }.joined(separator: ", ")
        throw DomainError(.conflict, "Identity '\(name)' still has \(bindings.count) binding(s): \(names). Delete them first, or DELETE with ?cascade=true to delete them too.")
    }

    static func describe(_ values: [String]) -> String {
        values.isEmpty ? "nothing (an admin sets the team's policy)" : values.joined(separator: ", ")
    }
}
