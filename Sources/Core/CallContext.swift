import Foundation

/// Who is asking, and the request's id for the audit log.
public struct CallContext: Sendable {
    /// The authenticated caller.
    public var principal: Principal
    /// The request's `X-Request-Id`.
    public var requestId: String
    /// The HTTP method and route, kept in denial events.
    public var operation: String

    /// Creates a request context.
    public init(principal: Principal, requestId: String, operation: String) {
        self.principal = principal
        self.requestId = requestId
        self.operation = operation
    }

    /// An audit draft for an action by this caller.
    public func audit(
        _ action: String, outcome: AuditOutcome = .success, team: String?, resourceType: String,
        resourceName: String?, details: [String: JSONValue] = [:], before: JSONValue? = nil, after: JSONValue? = nil
    ) -> AuditDraft {
        AuditDraft(
            actor: principal.actor, actorTeam: principal.team, action: action, outcome: outcome, team: team,
            resourceType: resourceType, resourceName: resourceName, requestId: requestId, details: details,
            before: before, after: after)
    }
}

/// Authorization decisions that are audited when they deny: a 403 for a caller without the role,
/// a 404 for a caller of another team (so that existence never leaks).
public struct Authorizer: Sendable {
    let audit: any AuditRows
    let denials: DenialFolder?

    /// Creates an authorizer writing denials to `audit`, folded by `denials` when given.
    public init(audit: any AuditRows, denials: DenialFolder? = nil) {
        self.audit = audit
        self.denials = denials
    }

    /// Creates the authorizer of `database`: its audit rows and its denial folder.
    public init(database: any Database) {
        self.init(audit: database.audit, denials: database.denials)
    }

    /// Records a denial and returns the error to throw.
    public func deny(
        _ context: CallContext, _ error: DomainError, team: String?, resourceType: String, resourceName: String?
    ) async throws -> DomainError {
        let event = context.audit(
            "auth.denied", outcome: .denied, team: team, resourceType: resourceType, resourceName: resourceName,
            details: [
                "operation": .string(context.operation),
                "status": .number(error.kind == .forbidden ? 403 : 404),
                "reason": .string(error.detail),
            ])
        for draft in denials?.record(event) ?? [event] {
            try await audit.append(draft)
        }
        return error
    }

    /// Requires the `admin` role; a team token asking about another team's resource gets 404.
    public func requireAdmin(_ context: CallContext, team: String?, resourceType: String, resourceName: String?)
        async throws
    {
        let principal = context.principal
        if principal.role == .admin { return }
        if let team, !principal.canRead(team: team) {
            throw try await deny(context, .notFound(resourceType, resourceName ?? team), team: team,
                                 resourceType: resourceType, resourceName: resourceName)
        }
        throw try await deny(
            context, DomainError(.forbidden, "This needs an admin token; the caller's role is '\(principal.role.rawValue)'."),
            team: team, resourceType: resourceType, resourceName: resourceName)
    }

    /// Requires read access to `team`'s resources (404 for another team).
    public func requireRead(_ context: CallContext, team: String, resourceType: String, resourceName: String?)
        async throws
    {
        if context.principal.canRead(team: team) { return }
        throw try await deny(context, .notFound(resourceType, resourceName ?? team), team: team,
                             resourceType: resourceType, resourceName: resourceName)
    }

    /// Requires the right to change `team`'s resources: admin, or a maintainer of the team
    /// (404 for another team, 403 for a viewer or auditor).
    public func requireManage(_ context: CallContext, team: String, resourceType: String, resourceName: String?)
        async throws
    {
        let principal = context.principal
        if principal.canManage(team: team) { return }
        if !principal.canRead(team: team) {
            throw try await deny(context, .notFound(resourceType, resourceName ?? team), team: team,
                                 resourceType: resourceType, resourceName: resourceName)
        }
        throw try await deny(
            context,
            DomainError(.forbidden, "This needs an admin token or a maintainer token of team '\(team)'; the caller's role is '\(principal.role.rawValue)'."),
            team: team, resourceType: resourceType, resourceName: resourceName)
    }
}
