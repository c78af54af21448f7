import Foundation

/// What a token may do.
public enum Role: String, Sendable, Codable, CaseIterable {
    /// The platform team: everything.
    case admin
    /// One team: manage its identities, bindings and tokens.
    case maintainer
    /// One team: read only.
    case viewer
    /// Read the audit history of all teams, for dashboards.
    case auditor

    /// Whether the role belongs to the platform (no team) rather than to one team.
    public var isPlatformRole: Bool { self == .admin || self == .auditor }
}

/// The authenticated caller of one request.
public struct Principal: Sendable, Equatable {
    /// The token's id; nil for the bootstrap admin token from configuration.
    public var tokenId: UUID?
    /// The token's name, recorded as the actor in audit events.
    public var tokenName: String
    /// The token's role.
    public var role: Role
    /// The token's team, for `maintainer` and `viewer`.
    public var team: String?
    /// When the token stops working.
    public var expiresAt: Date?

    /// Creates a principal.
    public init(tokenId: UUID?, tokenName: String, role: Role, team: String?, expiresAt: Date? = nil) {
        self.tokenId = tokenId
        self.tokenName = tokenName
        self.role = role
        self.team = team
        self.expiresAt = expiresAt
    }

    /// The name audit events record as the actor: `<name>` for platform tokens, `<team>/<name>` for team tokens.
    public var actor: String {
        if let team { return "\(team)/\(tokenName)" }
        return tokenName
    }

    /// Whether the caller may read the resources of `team`.
    public func canRead(team: String) -> Bool {
        role.isPlatformRole || self.team == team
    }

    /// Whether the caller may change the identities, bindings and tokens of `team`.
    public func canManage(team: String) -> Bool {
        role == .admin || (role == .maintainer && self.team == team)
    }
}
