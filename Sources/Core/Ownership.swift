import Foundation

/// What podid may do with the Azure identity at an identity's place: the adoption and ownership
/// decisions of the identity jobs, as pure functions.
public enum IdentityOwnershipRules {
    /// What a reconcile takes over from an identity it adopts.
    public struct Plan: Sendable, Equatable {
        /// The tags after adoption: the Azure identity's own (but podid's), the team's winning on conflicts.
        public var adoptedTags: [String: String]?
        /// Azure's location, which an adopted identity takes.
        public var adoptedLocation: String?
    }

    /// Decides whether the reconcile of `identity` may go on with `existing` (what Azure has at its
    /// place), and what it adopts; throws the error that fails the job otherwise.
    public static func plan(_ identity: Identity, existing: AzureIdentityInfo?) throws -> Plan {
        let team = identity.team
        let adopting = identity.resourceId == nil && identity.adoptResourceId != nil
        if adopting {
            guard let found = existing else {
                throw DomainError(.validation, "There is no Azure identity at \(identity.adoptResourceId ?? identity.azureRef.resourceId) to adopt; check the resourceId (subscription, resource group and name).")
            }
            if !identity.adoptedByAdmin {
                let tagged = IdentityOwnership.team(in: found.tags)
                guard tagged == team else {
                    let state = tagged.map { "is tagged podid-team=\($0)" } ?? "carries no podid tags"
                    throw DomainError(.forbidden, "The Azure identity \(found.resourceId) \(state), so team '\(team)' cannot adopt it: a team adopts only identities whose podid-team tag names it. Ask a podid admin to adopt it for the team.")
                }
            }
            let location = IdentityRules.normalizedLocation(found.location)
            if !identity.location.isEmpty && location != identity.location {
                throw DomainError(.validation, "The Azure identity \(found.resourceId) is in \(location), not \(identity.location); leave location out or set it to \(location).")
            }
            // Nothing the identity carried is lost: its own tags stay, the team's win on conflicts.
            let kept = found.tags.filter { !$0.key.lowercased().hasPrefix(IdentityRules.reservedTagPrefix) }
            return Plan(adoptedTags: kept.merging(identity.tags) { _, requested in requested }, adoptedLocation: location)
        }
        if let found = existing, identity.resourceId == nil, !IdentityOwnership.isOwned(found.tags, team: team, identity: identity.name) {
            throw DomainError(.conflict, "An Azure identity named \(identity.name) already exists in resource group \(identity.resourceGroup) and podid did not create it for team '\(team)' (its podid tags: \(describe(found.tags))). Choose another name, or adopt it by giving its resourceId.")
        }
        if existing == nil, let resourceId = identity.resourceId {
            throw DomainError(.conflict, "The Azure identity \(resourceId) no longer exists: it was deleted outside podid. podid does not recreate it, because its clientId and principalId would change; delete this identity in podid and create it again.")
        }
        return Plan()
    }

    /// Whether the delete job may touch the Azure identity: podid provisioned or adopted it for this
    /// identity, or it carries this identity's ownership tags (a provision that stopped before
    /// recording it).
    public static func mayDelete(_ identity: Identity, existing: AzureIdentityInfo?) -> Bool {
        identity.resourceId != nil
            || existing.map { IdentityOwnership.isOwned($0.tags, team: identity.team, identity: identity.name) } == true
    }

    /// podid's tags among `tags`, for messages.
    public static func describe(_ tags: [String: String]) -> String {
        let podid = tags.filter { $0.key.lowercased().hasPrefix(IdentityRules.reservedTagPrefix) }
        return podid.isEmpty ? "none" : podid.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }
}

extension Identity {
    /// Records what Azure answered about the identity: its ids (a tenant only when Azure named one).
    public mutating func record(_ info: AzureIdentityInfo) {
        resourceId = info.resourceId
        clientId = info.clientId
        principalId = info.principalId
        if !info.tenantId.isEmpty { tenantId = info.tenantId }
    }
}

extension Binding {
    /// Whether the binding's objects must be applied (again) for an identity whose clientId is
    /// `clientId`: it waited for the identity, or carries an older clientId (a re-adoption).
    public func needsApply(clientId: String) -> Bool {
        state != .deleting && (appliedClientId != clientId || state != .ready)
    }
}
