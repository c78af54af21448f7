import API
import Core
import Foundation
import OpenAPIRuntime

/// Wire <-> domain mapping: every conversion between the types generated from openapi.yaml and
/// `Core`'s, by topic in `Wire+<Topic>.swift`; here the shared parts, the caller, teams and tokens.
enum Wire {
    static func role(_ role: Role) -> Components.Schemas.Role {
        switch role {
        case .admin: .admin
        case .maintainer: .maintainer
        case .viewer: .viewer
        case .auditor: .auditor
        }
    }

    static func role(_ role: Components.Schemas.Role) -> Role {
        switch role {
        case .admin: .admin
        case .maintainer: .maintainer
        case .viewer: .viewer
        case .auditor: .auditor
        }
    }

    /// Keys of `/v1/me` that are `null` for the bootstrap admin token or a platform token.
    static let meNullKeys = ["tokenId", "team", "expiresAt"]

    static func me(_ principal: Principal) -> Components.Schemas.Me {
        .init(tokenId: principal.tokenId?.uuidString.lowercased(), tokenName: principal.tokenName, role: role(principal.role),
              team: principal.team, expiresAt: principal.expiresAt)
    }

    static func etag(_ version: Int64) -> String { "\"\(version)\"" }

    /// The version in an `If-Match` header: nil when absent or `*`; 412 when it is no ETag podid gave,
    /// malformed ones included (no current ETag matches them), as openapi.yaml says.
    static func ifMatch(_ header: String?) throws -> Int64? {
        guard var text = header?.trimmingCharacters(in: .whitespaces), text != "*" else { return nil }
        if text.hasPrefix("W/") { text.removeFirst(2) }
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\""), let version = Int64(text.dropFirst().dropLast())
        else {
            throw DomainError(.preconditionFailed, "If-Match must be an ETag this resource returned, such as \"3\".")
        }
        return version
    }

    static func policy(_ policy: TeamPolicy) -> Components.Schemas.TeamPolicy {
        .init(
            subscriptions: policy.subscriptions, resourceGroups: policy.resourceGroups,
            grants: policy.grants.map { .init(role: $0.role, scopePrefix: $0.scopePrefix) },
            clusters: policy.clusters, namespaces: policy.namespaces, maxIdentities: policy.maxIdentities)
    }

    static func policyPatch(_ wire: Components.Schemas.TeamPolicy) -> TeamPolicyPatch {
        TeamPolicyPatch(
            subscriptions: wire.subscriptions, resourceGroups: wire.resourceGroups,
            grants: wire.grants?.map { GrantRule(role: $0.role, scopePrefix: $0.scopePrefix) },
            clusters: wire.clusters, namespaces: wire.namespaces, maxIdentities: wire.maxIdentities)
    }

    static func newTeam(_ wire: Components.Schemas.TeamCreate) -> NewTeam {
        NewTeam(name: wire.name, displayName: wire.displayName, contacts: wire.contacts, policy: wire.policy.map(policyPatch))
    }

    static func teamPatch(_ wire: Components.Schemas.TeamPatch) -> TeamPatch {
        TeamPatch(displayName: wire.displayName, contacts: wire.contacts, policy: wire.policy.map(policyPatch))
    }

    static func team(_ team: Team) -> Components.Schemas.Team {
        .init(
            name: team.name, displayName: team.displayName, contacts: team.contacts, policy: policy(team.policy),
            createdAt: team.createdAt, updatedAt: team.updatedAt)
    }

    static func token(_ record: TokenRecord) -> Components.Schemas.Token {
        .init(
            id: record.id.uuidString.lowercased(), name: record.name, role: role(record.role), team: record.team,
            expiresAt: record.expiresAt, createdAt: record.createdAt, createdBy: record.createdBy)
    }

    static func createdToken(_ record: TokenRecord, secret: String) -> Components.Schemas.TokenCreated {
        .init(
            id: record.id.uuidString.lowercased(), name: record.name, role: role(record.role), team: record.team,
            expiresAt: record.expiresAt, createdAt: record.createdAt, createdBy: record.createdBy, token: secret)
    }

    static func newToken(_ wire: Components.Schemas.TokenCreate) -> NewToken {
        NewToken(name: wire.name, role: role(wire.role), expiresAt: wire.expiresAt)
    }
}

/// RFC 3339 dates: written with milliseconds (audit timestamps need them; the runtime's default
/// drops them), read with or without fractional seconds.
struct RFC3339DateTranscoder: DateTranscoder {
    func encode(_ date: Date) throws -> String {
        Timestamp.format(date)
    }

    func decode(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "Expected an RFC 3339 timestamp such as 2030-01-31T12:00:00Z, got '\(text)'."))
        }
        return date
    }
}
