import Foundation

/// Teams: validation, authorization and audited changes.
public struct TeamService: Sendable {
    let store: any TeamStore
    let authorizer: Authorizer

    /// Creates the service.
    public init(store: any TeamStore, audit: any AuditStore) {
        self.store = store
        self.authorizer = Authorizer(audit: audit)
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
        return try await store.insertTeam(
            team,
            audit: context.audit("team.created", team: team.name, resourceType: "team", resourceName: team.name,
                                 after: .encoding(team)))
    }

    /// One team (admins and auditors any, team tokens their own).
    public func get(_ name: String, context: CallContext) async throws -> Team {
        try await authorizer.requireRead(context, team: name, resourceType: "team", resourceName: name)
        guard let team = try await store.team(named: name) else { throw DomainError.notFound("team", name) }
        return team
    }

    /// Teams the caller may see, by name.
    public func list(page: PageRequest, context: CallContext) async throws -> Page<Team> {
        let principal = context.principal
        let only: String? = principal.role.isPlatformRole ? nil : principal.team
        let fetched = try await store.teams(page: PageRequest(limit: page.limit + 1, after: page.after), only: only)
        return Page(fetched: fetched, limit: page.limit) { [$0.name] }
    }

    /// Changes a team (admin). `ifMatch` is the version the caller saw, if it sent `If-Match`.
    public func update(_ name: String, patch: TeamPatch, ifMatch: Int64?, context: CallContext) async throws -> Team {
        try await authorizer.requireAdmin(context, team: name, resourceType: "team", resourceName: name)
        var validator = Validator()
        validator.checkTeamDetails(displayName: patch.displayName, contacts: patch.contacts)
        if let policy = patch.policy { validator.checkPolicy(policy) }
        try validator.throwIfInvalid()
        // Without If-Match the change applies to whatever is current; a concurrent writer only makes
        // us read again. With If-Match a concurrent change is the caller's 412.
        for _ in 0..<5 {
            guard let current = try await store.team(named: name) else { throw DomainError.notFound("team", name) }
            if let ifMatch, ifMatch != current.version { throw Self.stale(name) }
            var updated = current
            if let displayName = patch.displayName { updated.displayName = displayName }
            if let contacts = patch.contacts { updated.contacts = contacts }
            if let policy = patch.policy { updated.policy = policy.applied(to: current.policy) }
            if updated == current { return current }
            updated.version = current.version + 1
            updated.updatedAt = Date()
            let stored = try await store.replaceTeam(updated, ifVersion: current.version) { stored in
                context.audit("team.updated", team: name, resourceType: "team", resourceName: name,
                              before: .encoding(current), after: .encoding(stored))
            }
            if let stored { return stored }
            if ifMatch != nil { throw Self.stale(name) }
        }
        throw DomainError(.conflict, "Team '\(name)' is changing too often to update; try again.")
    }

    /// Deletes a team and its tokens (admin); refused while it owns identities.
    public func delete(_ name: String, ifMatch: Int64?, context: CallContext) async throws {
        try await authorizer.requireAdmin(context, team: name, resourceType: "team", resourceName: name)
        guard let current = try await store.team(named: name) else { throw DomainError.notFound("team", name) }
        if let ifMatch, ifMatch != current.version { throw Self.stale(name) }
        let deleted = try await store.deleteTeam(
            named: name, ifVersion: current.version,
            audit: context.audit("team.deleted", team: name, resourceType: "team", resourceName: name,
                                 before: .encoding(current)))
        if !deleted {
            if ifMatch != nil { throw Self.stale(name) }
            throw DomainError(.conflict, "Team '\(name)' changed while it was being deleted; read it again and retry.")
        }
    }

    static func stale(_ name: String) -> DomainError {
        DomainError(.preconditionFailed, "Team '\(name)' has changed since the ETag in If-Match; read it again and retry.")
    }
}
