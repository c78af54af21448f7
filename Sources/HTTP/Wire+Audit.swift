import API
import Core
import Foundation
import OpenAPIRuntime

/// Audit events, filters and the chain verification.
extension Wire {
    /// Keys of an audit event that may be `null`.
    static let auditNullKeys = ["actorTeam", "team", "resourceName", "requestId", "jobId", "before", "after", "position", "hash", "prevHash"]
    /// Keys of a verification result that are `null` when the chain checks out.
    static let verificationNullKeys = ["firstBroken", "missingPosition", "reason", "anchorPosition", "keyedFrom", "checkpointPosition"]

    static func auditEvent(_ record: AuditRecord) throws -> Components.Schemas.AuditEvent {
        let draft = record.draft
        return .init(
            id: record.id, time: record.time, actor: draft.actor, actorTeam: draft.actorTeam, action: draft.action,
            outcome: Components.Schemas.AuditEvent.OutcomePayload(rawValue: draft.outcome.rawValue) ?? .success, team: draft.team,
            resourceType: draft.resourceType, resourceName: draft.resourceName, requestId: draft.requestId,
            jobId: draft.jobId?.uuidString.lowercased(),
            details: .init(additionalProperties: try OpenAPIObjectContainer(unvalidatedValue: draft.details.mapValues(Self.sendable))),
            before: try draft.before.map { try OpenAPIValueContainer(unvalidatedValue: Self.sendable($0)) },
            after: try draft.after.map { try OpenAPIValueContainer(unvalidatedValue: Self.sendable($0)) },
            position: record.position, hash: record.hash, prevHash: record.prevHash)
    }

    /// The free-form JSON parts as the OpenAPI containers' values, built directly (a JSON
    /// encode-and-decode round trip per event was a fifth of an audit page's time). Whole numbers
    /// become integers, as decoding them would.
    static func sendable(_ value: JSONValue) -> (any Sendable)? {
        switch value {
        case .null: nil
        case .bool(let flag): flag
        case .number(let number): number.rounded() == number && abs(number) < 9e15 ? Int(number) : number
        case .string(let text): text
        case .array(let items): items.map(sendable)
        case .object(let members): members.mapValues(sendable)
        }
    }

    static func auditFilter(team: String?, actor: String?, action: String?, resourceType: String?, resourceName: String?, outcome: String?,
                            requestId: String?, since: Date?, until: Date?) -> AuditFilter {
        AuditFilter(team: team, actor: actor, action: action, resourceType: resourceType, resourceName: resourceName,
                    outcome: outcome.flatMap(AuditOutcome.init(rawValue:)), requestId: requestId, since: since, until: until)
    }

    static func verification(_ result: AuditVerification) throws -> Components.Schemas.AuditVerification {
        .init(
            ok: result.ok, checked: result.checked,
            firstBroken: try result.firstBroken.map {
                .init(additionalProperties: try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data($0.json.canonicalText.utf8)))
            },
            missingPosition: result.missingPosition, reason: result.reason, anchorPosition: result.anchorPosition, unsealed: result.unsealed,
            problems: result.problems, eventsWithoutSeal: result.eventsWithoutSeal, keyedFrom: result.keyedFrom,
            checkpointPosition: result.checkpointPosition)
    }
}
