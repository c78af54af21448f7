import API
import Core
import Foundation
import OpenAPIRuntime

/// The `audit` tag: the history, its exports, the live stream and the hash chain check.
extension APIHandler {
    public func listAudit(_ input: Operations.ListAudit.Input) async throws -> Operations.ListAudit.Output {
        let query = input.query
        let filter = Wire.auditFilter(
            team: query.team, actor: query.actor, action: query.action, resourceType: query.resourceType, resourceName: query.resourceName,
            outcome: query.outcome?.rawValue, requestId: query.requestId, since: query.since, until: query.until)
        switch input.headers.accept.sortedByQuality().first?.contentType {
        case .applicationXNdjson?:
            let records = try await audit.export(filter, context: try RequestInfo.context())
            return .ok(.init(body: .applicationXNdjson(HTTPBody(AuditExportBody(records: records, format: .ndjson), length: .unknown,
                                                                 iterationBehavior: .single))))
        case .csv?:
            let records = try await audit.export(filter, context: try RequestInfo.context())
            return .ok(.init(body: .csv(HTTPBody(AuditExportBody(records: records, format: .csv), length: .unknown, iterationBehavior: .single))))
        default:
            let page = try await page(limit: query.limit, cursor: query.cursor, itemNullKeys: Wire.auditNullKeys, {
                try await audit.list(filter, page: $0, context: $1)
            }, map: Wire.auditEvent)
            return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
        }
    }

    public func getAuditEvent(_ input: Operations.GetAuditEvent.Input) async throws -> Operations.GetAuditEvent.Output {
        let context = try RequestInfo.context()
        let record = try await audit.get(input.path.id, context: context)
        for key in Wire.auditNullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(try Wire.auditEvent(record))))
    }

    public func streamAudit(_ input: Operations.StreamAudit.Input) async throws -> Operations.StreamAudit.Output {
        let context = try RequestInfo.context()
        let query = input.query
        let filter = try await audit.scoped(
            Wire.auditFilter(team: query.team, actor: query.actor, action: query.action, resourceType: query.resourceType,
                             resourceName: query.resourceName, outcome: query.outcome?.rawValue, requestId: query.requestId,
                             since: query.since, until: query.until),
            context: context)
        var after: Int64
        if let header = input.headers.lastEventID {
            guard let position = Int64(header.trimmingCharacters(in: .whitespaces)), position >= 0 else {
                throw DomainError(.badRequest, "Last-Event-ID must be the id of an event this stream sent (a chain position).",
                                  fields: [FieldProblem("Last-Event-ID", "must be a whole number")])
            }
            after = position
        } else if let position = query.lastEventId {
            after = max(position, 0)
        } else {
            after = try await audit.reader.lastPosition()
        }
        let slot = try audit.openStream(context: context)
        ResponseAdjustments.setHeader(.cacheControl, "no-cache")
        return .ok(.init(body: .textEventStream(HTTPBody(AuditStreamBody(log: audit.reader, filter: filter, after: after, slot: slot), length: .unknown,
                                                             iterationBehavior: .single))))
    }

    public func verifyAudit(_ input: Operations.VerifyAudit.Input) async throws -> Operations.VerifyAudit.Output {
        let context = try RequestInfo.context()
        let result = try await audit.verify(from: input.query.from, to: input.query.to, context: context)
        for key in Wire.verificationNullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(try Wire.verification(result))))
    }
}
