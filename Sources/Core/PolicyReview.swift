import Foundation

/// Something a team has that its current policy no longer allows: left in force by a narrowed
/// policy until an admin removes it (`POST /v1/teams/{team}/policy/enforce`).
public struct OutsidePolicy: Sendable, Equatable, Codable {
    /// What it is.
    public enum Kind: String, Sendable, Codable {
        /// An identity in a subscription or resource group the policy no longer allows.
        case identity
        /// A grant (role on scope) of an identity that the policy no longer allows.
        case grant
        /// A binding in a cluster or namespace the policy no longer allows.
        case binding
    }

    public var kind: Kind
    /// The identity it belongs to.
    public var identity: String
    /// The binding, for `binding`.
    public var binding: String?
    /// The grant, for `grant`.
    public var grant: IdentityGrant?
    /// The API path of the resource.
    public var resource: String
    /// What the policy no longer allows and what removing it does.
    public var message: String

    public init(kind: Kind, identity: String, binding: String? = nil, grant: IdentityGrant? = nil, resource: String, message: String) {
        self.kind = kind
        self.identity = identity
        self.binding = binding
        self.grant = grant
        self.resource = resource
        self.message = message
    }
}

/// The review of what a team has against its policy: the one place that says what is outside it,
/// for the answer to a policy change, the `OutsidePolicy` health finding and the enforcement call.
public enum PolicyReview {
    /// An identity's placement and grants against `policy`.
    public static func review(_ identity: Identity, policy: TeamPolicy) -> [OutsidePolicy] {
        let path = "/v1/teams/\(identity.team)/identities/\(identity.name)"
        var found: [OutsidePolicy] = []
        if !policy.subscriptions.contains(where: { $0.lowercased() == identity.subscriptionId.lowercased() })
            || !policy.resourceGroups.contains(where: { $0.lowercased() == identity.resourceGroup.lowercased() })
        {
            found.append(OutsidePolicy(
                kind: .identity, identity: identity.name, resource: path,
                message: "identity \(identity.name) lives in subscription \(identity.subscriptionId), resource group \(identity.resourceGroup), which the team's policy no longer allows; enforcing the policy deletes it and its bindings"))
        }
        for grant in identity.grants where !IdentityRules.policyAllows(role: grant.role, scope: grant.scope, policy: policy) {
            found.append(OutsidePolicy(
                kind: .grant, identity: identity.name, grant: grant, resource: path,
                message: "identity \(identity.name) is granted \(grant.role) on \(grant.scope), which the team's policy no longer allows; enforcing the policy removes the grant and its role assignment"))
        }
        return found
    }

    /// A binding's cluster and namespace against `policy` (`cluster` nil: the cluster is gone).
    public static func review(_ binding: Binding, cluster: Cluster?, policy: TeamPolicy) -> OutsidePolicy? {
        let path = "/v1/teams/\(binding.team)/identities/\(binding.identity)/bindings/\(binding.name)"
        let reason: String?
        if let cluster {
            do {
                try BindingService.checkPolicy(policy, cluster: cluster, namespace: binding.namespace)
                reason = nil
            } catch let error as DomainError {
                reason = error.fields.map(\.message).joined(separator: "; ")
            } catch {
                reason = "\(error)"
            }
        } else {
            reason = policy.clusters.contains(binding.cluster) ? nil : "cluster \(binding.cluster) is not allowed for this team"
        }
        guard let reason else { return nil }
        return OutsidePolicy(
            kind: .binding, identity: binding.identity, binding: binding.name, resource: path,
            message: "binding \(binding.identity)/\(binding.name) is outside the team's policy (\(reason)); enforcing the policy deletes it")
    }

    /// Everything of `team` outside `policy`, identities first.
    public static func review(team: String, policy: TeamPolicy, in records: any Records) async throws -> [OutsidePolicy] {
        var found: [OutsidePolicy] = []
        var clusters: [String: Cluster?] = [:]
        var page = PageRequest(limit: 500, after: nil)
        while true {
            let identities = try await records.identities.list(team: team, page: page)
            for identity in identities {
                if case .deleting = identity.state { continue }
                found += review(identity, policy: policy)
                for binding in try await records.bindings.list(team: team, identity: identity.name) {
                    if case .deleting = binding.state { continue }
                    if clusters[binding.cluster] == nil { clusters[binding.cluster] = .some(try await records.clusters.get(binding.cluster, lock: .none)) }
                    if let item = review(binding, cluster: clusters[binding.cluster] ?? nil, policy: policy) { found.append(item) }
                }
            }
            guard identities.count == page.limit, let last = identities.last else { break }
            page = PageRequest(limit: page.limit, after: [last.name])
        }
        return found
    }
}
