import Foundation

/// Teams: validation, authorization and audited changes.
public struct TeamService: Sendable {
    let database: any Database
    let authorizer: Authorizer

    /// Creates the service.
    public init(database: any Database) {
        self.database = database
        self.authorizer = Authorizer(database: database)
    }

    /// Creates a team (admin).
    public func create(_ request: NewTeam, context: CallContext) async throws -> Team {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "team", resourceName: request.name)
        var validator = Validator()
        validator.checkTeamName(request.name)
        validator.checkTeamDetails(displayName: request.displayName, contacts: request.contacts)
        if let policy = request.policy { validator.checkPolicy(policy) }
        try validator.throwIfInvalid()
        let now = Date()
        let team = Team(
            name: request.name, displayName: request.displayName ?? request.name, contacts: request.contacts ?? [],
            policy: (request.policy ?? TeamPolicyPatch()).applied(to: .empty), version: 1, createdAt: now, updatedAt: now)
        let event = context.audit("team.created", team: team.name, resourceType: "team", resourceName: team.name)
        return try await database.transaction { tx in
            try await ClusterSharing.checkPolicy(team: team.name, adding: team.policy.clusters, all: team.policy.clusters, in: tx)
            let stored = try await tx.teams.insert(team)
            var created = event
            created.after = .encoding(stored)
            try await tx.audit.append(created)
            return stored
        }
    }

    /// One team (admins and auditors any, team tokens their own).
    public func get(_ name: String, context: CallContext) async throws -> Team {
        try await authorizer.requireRead(context, team: name, resourceType: "team", resourceName: name)
        guard let team = try await database.teams.get(name, lock: .none) else { throw DomainError.notFound("team", name) }
        return team
    }

    /// Teams the caller may see, by name.
    public func list(page: PageRequest, context: CallContext) async throws -> Page<Team> {
        let principal = context.principal
        let only: String? = principal.role.isPlatformRole ? nil : principal.team
        return try await Page.fetch(page, key: { [$0.name] }) { try await database.teams.list(page: $0, only: only) }
    }

    /// Changes a team (admin). `ifMatch` is the version the caller saw, if it sent `If-Match`. When the
    /// policy changed, also what the team has outside the new one (`PolicyReview`), else nil.
    public func update(_ name: String, patch: TeamPatch, ifMatch: Int64?, context: CallContext) async throws
        -> (team: Team, outsidePolicy: [OutsidePolicy]?)
    {
        let (team, policyChanged) = try await store(name, patch: patch, ifMatch: ifMatch, context: context)
        guard policyChanged else { return (team, nil) }
        return (team, try await PolicyReview.review(team: name, policy: team.policy, in: database))
    }

    /// Removes what `team` has outside its policy (admin), through the services that own each
    /// resource, so that each removal is checked, audited and queued as if the admin had asked for
    /// it: identities the policy no longer places are deleted with their bindings, grants it no
    /// longer allows are removed, bindings outside it are deleted. Returns what was removed.
    public func enforcePolicy(_ name: String, context: CallContext) async throws -> [OutsidePolicy] {
        try await authorizer.requireAdmin(context, team: name, resourceType: "team", resourceName: name)
        guard let team = try await database.teams.get(name, lock: .none) else { throw DomainError.notFound("team", name) }
        let found = try await PolicyReview.review(team: name, policy: team.policy, in: database)
        let identities = IdentityService(database: database)
        let bindings = BindingService(database: database)
        let deletedIdentities = Set(found.filter { $0.kind == .identity }.map(\.identity))
        for item in found where item.kind == .identity {
            _ = try await identities.delete(team: name, name: item.identity, ifMatch: nil, cascade: true, context: context)
        }
        for item in found where item.kind == .binding && !deletedIdentities.contains(item.identity) {
            guard let binding = item.binding else { continue }
            _ = try await bindings.delete(team: name, identity: item.identity, name: binding, ifMatch: nil, context: context)
        }
        let grants = Dictionary(grouping: found.filter { $0.kind == .grant && !deletedIdentities.contains($0.identity) }, by: \.identity)
        for (identity, items) in grants.sorted(by: { $0.key < $1.key }) {
            guard let current = try await database.identities.get(team: name, name: identity, lock: .none) else { continue }
            let refused = Set(items.compactMap(\.grant))
            let kept = current.grants.filter { !refused.contains($0) }
            _ = try await identities.patch(team: name, name: identity, IdentityPatch(grants: kept), ifMatch: nil, context: context)
        }
        try await database.audit.append(context.audit(
            "team.policy.enforced", team: name, resourceType: "team", resourceName: name,
            details: ["removed": .encoding(found)]))
        return found
    }

    func store(_ name: String, patch: TeamPatch, ifMatch: Int64?, context: CallContext) async throws -> (Team, Bool) {
        try await authorizer.requireAdmin(context, team: name, resourceType: "team", resourceName: name)
        var validator = Validator()
        validator.checkTeamDetails(displayName: patch.displayName, contacts: patch.contacts)
        if let policy = patch.policy { validator.checkPolicy(policy) }
        try validator.throwIfInvalid()
        // The row is locked while it changes: a concurrent writer waits; with If-Match a concurrent
        // change is the caller's 412.
        return try await database.transaction { tx in
            guard let current = try await tx.teams.get(name, lock: .update) else { throw DomainError.notFound("team", name) }
            try Precondition.check(ifMatch, current: current.version, stale: Self.stale(name))
            var updated = current
            if let displayName = patch.displayName { updated.displayName = displayName }
            if let contacts = patch.contacts { updated.contacts = contacts }
            if let policy = patch.policy { updated.policy = policy.applied(to: current.policy) }
            if updated == current { return (current, false) }
            let added = updated.policy.clusters.filter { !current.policy.clusters.contains($0) }
            try await ClusterSharing.checkPolicy(team: name, adding: added, all: updated.policy.clusters, in: tx)
            updated.version = current.version + 1
            let stored = try await tx.teams.update(updated)
            try await tx.audit.append(context.audit("team.updated", team: name, resourceType: "team", resourceName: name,
                                                    before: .encoding(current), after: .encoding(stored)))
            return (stored, stored.policy != current.policy)
        }
    }

    /// Deletes a team and its tokens (admin); refused while it owns identities.
    public func delete(_ name: String, ifMatch: Int64?, context: CallContext) async throws {
        try await authorizer.requireAdmin(context, team: name, resourceType: "team", resourceName: name)
        try await database.transaction { tx in
            guard let current = try await tx.teams.get(name, lock: .update) else { throw DomainError.notFound("team", name) }
            try Precondition.check(ifMatch, current: current.version, stale: Self.stale(name))
            // The event first: it belongs to the team being deleted (its id), not to a later one of the name.
            try await tx.audit.append(context.audit("team.deleted", team: name, resourceType: "team", resourceName: name,
                                                    before: .encoding(current)))
            try await tx.teams.delete(name)
        }
    }

    static func stale(_ name: String) -> DomainError { Precondition.stale("Team", name) }
}
