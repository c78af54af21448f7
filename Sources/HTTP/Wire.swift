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

    static func outsidePolicy(_ item: OutsidePolicy) -> Components.Schemas.OutsidePolicyItem {
        .init(
            kind: Components.Schemas.OutsidePolicyItem.KindPayload(rawValue: item.kind.rawValue) ?? .binding,
            identity: item.identity, binding: item.binding,
            grant: item.grant.map { .init(role: $0.role, scope: $0.scope) }, resource: item.resource, message: item.message)
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
/// drops them), read with or without fractional seconds and with any offset RFC 3339 allows (up to
/// ±23:59, which Foundation's ISO 8601 parser refuses beyond ±18:00).
struct RFC3339DateTranscoder: DateTranscoder {
    /// What a time that is no RFC 3339 `date-time` is told (`ProblemMiddleware` names it).
    static let expectation = "expected an RFC 3339 time such as 2030-01-31T12:00:00Z"

    func encode(_ date: Date) throws -> String {
        Timestamp.format(date)
    }

    func decode(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) ?? Self.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(Self.expectation), got '\(text)'."))
        }
        return date
    }

    /// An RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with a leap second allowed.
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[at..<(at + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        func byte(_ at: Int, is options: String) -> Bool { at < bytes.count && options.utf8.contains(bytes[at]) }
        guard let year = number(0, 4), byte(4, is: "-"), let month = number(5, 2), byte(7, is: "-"), let day = number(8, 2),
              byte(10, is: "Tt"), let hour = number(11, 2), byte(13, is: ":"), let minute = number(14, 2), byte(16, is: ":"),
              let second = number(17, 2)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if byte(index, is: ".") {
            let start = index + 1
            index = start
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > start, let value = Double("0." + String(decoding: bytes[start..<index], as: UTF8.self)) else { return nil }
            fraction = value
        }
        var offset = 0
        if byte(index, is: "Zz") {
            index += 1
        } else if byte(index, is: "+-"), let hours = number(index + 1, 2), byte(index + 3, is: ":"), let minutes = number(index + 4, 2),
                  hours <= 23, minutes <= 59 {
            offset = (bytes[index] == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60)
            index += 6
        } else {
            return nil
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard index == bytes.count, (1...12).contains(month), (1...monthDays[month - 1]).contains(day), hour <= 23, minute <= 59,
              second <= 60
        else { return nil }
        // Days since 1970-01-01 of the civil date (H. Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + second - offset) + fraction
        return Date(timeIntervalSince1970: seconds)
    }
}
