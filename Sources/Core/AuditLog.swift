import Crypto
import Foundation

/// Filters of `GET /v1/audit`, its exports and its stream.
public struct AuditFilter: Sendable, Equatable {
    public var team: String?
    public var actor: String?
    /// Exact, or a prefix when it ends in `.` (`identity.`).
    public var action: String?
    public var resourceType: String?
    public var resourceName: String?
    public var outcome: AuditOutcome?
    public var requestId: String?
    /// Inclusive.
    public var since: Date?
    /// Exclusive.
    public var until: Date?
    /// Whether `team` means the team that has the name now (its id), not every team that had it:
    /// set for team tokens, so that a team created again under an old name never reads the old
    /// team's history.
    public var currentTeamOnly = false

    /// Creates a filter.
    public init(team: String? = nil, actor: String? = nil, action: String? = nil, resourceType: String? = nil, resourceName: String? = nil,
                outcome: AuditOutcome? = nil, requestId: String? = nil, since: Date? = nil, until: Date? = nil) {
        self.team = team
        self.actor = actor
        self.action = action
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.outcome = outcome
        self.requestId = requestId
        self.since = since
        self.until = until
    }

    /// Whether `action` is a prefix filter.
    public var actionIsPrefix: Bool { action?.hasSuffix(".") == true }
}

/// A stored audit event with its place in the hash chain (nil until sealed).
public struct AuditRecord: Sendable, Equatable {
    public var id: Int64
    /// RFC 3339 with microseconds, as stored (and hashed).
    public var time: String
    public var draft: AuditDraft
    public var position: Int64?
    public var hash: String?
    public var prevHash: String?

    /// Creates a record.
    public init(id: Int64, time: String, draft: AuditDraft, position: Int64? = nil, hash: String? = nil, prevHash: String? = nil) {
        self.id = id
        self.time = time
        self.draft = draft
        self.position = position
        self.hash = hash
        self.prevHash = prevHash
    }

    /// The event as the API shows it (and the NDJSON export writes it).
    public var json: JSONValue {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return .object([
            "id": .number(Double(id)), "time": .string(time), "actor": .string(draft.actor), "actorTeam": text(draft.actorTeam),
            "action": .string(draft.action), "outcome": .string(draft.outcome.rawValue), "team": text(draft.team),
            "resourceType": .string(draft.resourceType), "resourceName": text(draft.resourceName), "requestId": text(draft.requestId),
            "jobId": text(draft.jobId?.uuidString.lowercased()), "details": .object(draft.details), "before": draft.before ?? .null,
            "after": draft.after ?? .null, "position": position.map { .number(Double($0)) } ?? .null, "hash": text(hash),
            "prevHash": text(prevHash),
        ])
    }

    /// The CSV columns, in order.
    public static let csvHeader = ["id", "time", "actor", "actorTeam", "action", "outcome", "team", "resourceType", "resourceName",
                                   "requestId", "jobId", "position", "hash", "details"]

    /// One CSV line (RFC 4180 quoting), without the line break.
    public var csvLine: String {
        let fields: [String] = [
            String(id), time, draft.actor, draft.actorTeam ?? "", draft.action, draft.outcome.rawValue, draft.team ?? "",
            draft.resourceType, draft.resourceName ?? "", draft.requestId ?? "", draft.jobId?.uuidString.lowercased() ?? "",
            position.map(String.init) ?? "", hash ?? "", JSONValue.object(draft.details).canonicalText,
        ]
        return fields.map(Self.csvField).joined(separator: ",")
    }

    static func csvField(_ value: String) -> String {
        // Quote when needed; a leading = + - @ is prefixed with ' so spreadsheets do not run it.
        var value = value
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || value != value.trimmingCharacters(in: .whitespaces)
        else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// The hash chain: each sealed event's hash is SHA-256 over the previous hash and the event's
/// canonical encoding, so that changing, removing or reordering any event breaks every link after it.
public enum AuditChain {
    /// The previous hash of the first event.
    public static let genesis = String(repeating: "0", count: 64)

    /// The canonical encoding: a JSON array of the stored values in a fixed order; the JSON columns
    /// as PostgreSQL's `jsonb` prints them.
    public static func canonical(id: Int64, time: String, actor: String, actorTeam: String?, action: String, outcome: String, team: String?,
                                 resourceType: String, resourceName: String?, requestId: String?, jobId: String?, details: String,
                                 before: String?, after: String?) -> String {
        let values: [String?] = [String(id), time, actor, actorTeam, action, outcome, team, resourceType, resourceName, requestId, jobId,
                                 details, before, after]
        return JSONValue.array(values.map { $0.map(JSONValue.string) ?? .null }).canonicalText
    }

    /// The hash of an event after `previous`.
    public static func hash(previous: String, canonical: String) -> String {
        SHA256.hash(data: Data((previous + "\n" + canonical).utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// What `GET /v1/audit/verify` found.
public struct AuditVerification: Sendable, Equatable {
    public var ok: Bool
    /// Sealed events checked.
    public var checked: Int
    /// The first position whose event is missing, changed, or not linked to the one before.
    public var firstBroken: AuditRecord?
    /// The position whose event is missing (its row was deleted).
    public var missingPosition: Int64?
    /// Why it is broken.
    public var reason: String?
    /// Where the check started from after a pruning, if it did.
    public var anchorPosition: Int64?
    /// Events written but not sealed yet (they are checked once sealed).
    public var unsealed: Int
    /// Every problem found, in the order found (the first is `reason`).
    public var problems: [String] = []
    /// Events that have no seal and are not waiting for one: taken out of the sealer's queue.
    public var eventsWithoutSeal: [Int64] = []
    /// Where the chain is keyed from (nil: not keyed).
    public var keyedFrom: Int64?
    /// The newest checkpoint checked against the chain.
    public var checkpointPosition: Int64?

    /// Creates a result.
    public init(ok: Bool, checked: Int, firstBroken: AuditRecord?, missingPosition: Int64?, reason: String?, anchorPosition: Int64?, unsealed: Int,
                problems: [String] = [], eventsWithoutSeal: [Int64] = [], keyedFrom: Int64? = nil, checkpointPosition: Int64? = nil) {
        self.problems = problems.isEmpty ? (reason.map { [$0] } ?? []) : problems
        self.eventsWithoutSeal = eventsWithoutSeal
        self.keyedFrom = keyedFrom
        self.checkpointPosition = checkpointPosition
        self.ok = ok
        self.checked = checked
        self.firstBroken = firstBroken
        self.missingPosition = missingPosition
        self.reason = reason
        self.anchorPosition = anchorPosition
        self.unsealed = unsealed
    }
}

/// Audit records pulled one by one from their source (a database cursor): nothing is read ahead
/// of the consumer.
public struct AuditRecords: AsyncSequence, Sendable {
    public typealias Element = AuditRecord
    let next: @Sendable () async throws -> AuditRecord?

    /// Records produced by `next` until it returns nil.
    public init(next: @escaping @Sendable () async throws -> AuditRecord?) {
        self.next = next
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let next: @Sendable () async throws -> AuditRecord?
        public mutating func next() async throws -> AuditRecord? { try await next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(next: next) }
}

/// The audit log as readers see it.
public protocol AuditLog: Sendable {
    /// Events matching `filter`, newest first (time, then id), after the page's position.
    func events(_ filter: AuditFilter, page: PageRequest) async throws -> [AuditRecord]
    /// One event.
    func event(id: Int64) async throws -> AuditRecord?
    /// Whether an event belongs to the team that has its team's name now (always for events of no
    /// team): false for the events of an earlier team of that name.
    func isOfCurrentTeam(id: Int64) async throws -> Bool
    /// Every event matching `filter`, newest first, read from the database as the consumer pulls
    /// (constant memory, however many there are).
    func export(_ filter: AuditFilter) async throws -> AuditRecords
    /// Sealed events matching `filter` at chain positions in `after+1...upTo`, oldest first, at most `limit`.
    func sealed(_ filter: AuditFilter, after: Int64, upTo: Int64, limit: Int) async throws -> [AuditRecord]
    /// The newest chain position (0 when nothing is sealed).
    func lastPosition() async throws -> Int64
    /// Recomputes the chain between two positions.
    func verify(from: Int64?, to: Int64?) async throws -> AuditVerification
}

/// Reading the audit log: admins and auditors see every event; team tokens only their team's.
public struct AuditService: Sendable {
    let log: any AuditLog
    let authorizer: Authorizer
    /// Live streams open at once, per token and in all.
    public let streams: StreamSlots
    /// Exports running at once, per token and in all.
    public let exports: StreamSlots
    /// How long an export may take before it is cut off (a slow reader holds a connection).
    public let exportDeadline: Duration

    /// Creates the service.
    public init(log: any AuditLog, audit: any AuditRows, denials: DenialFolder? = nil,
                streams: StreamSlots = StreamSlots("audit streams", perToken: 4, total: 200),
                exports: StreamSlots = StreamSlots("audit exports", perToken: 2, total: 4), exportDeadline: Duration = .seconds(600)) {
        self.log = log
        self.authorizer = Authorizer(audit: audit, denials: denials)
        self.streams = streams
        self.exports = exports
        self.exportDeadline = exportDeadline
    }

    /// The filter a caller may use: a team token's is pinned to its team (asking for another team's
    /// events is a 404, as for any of that team's resources).
    public func scoped(_ filter: AuditFilter, context: CallContext) async throws -> AuditFilter {
        var filter = filter
        try Self.validate(filter)
        let principal = context.principal
        if !principal.role.isPlatformRole {
            if let team = filter.team, team != principal.team {
                throw try await authorizer.deny(context, .notFound("team", team), team: team, resourceType: "audit", resourceName: nil)
            }
            filter.team = principal.team
            filter.currentTeamOnly = true
        }
        return filter
    }

    static func validate(_ filter: AuditFilter) throws {
        var problems: [FieldProblem] = []
        if let since = filter.since, let until = filter.until, since >= until {
            problems.append(FieldProblem("until", "must be after since"))
        }
        for (field, value) in [("team", filter.team), ("actor", filter.actor), ("action", filter.action), ("resourceType", filter.resourceType),
                               ("resourceName", filter.resourceName), ("requestId", filter.requestId)] {
            if let value, value.isEmpty || value.count > 512 { problems.append(FieldProblem(field, "must be 1 to 512 characters")) }
        }
        if !problems.isEmpty { throw DomainError(.badRequest, "Invalid audit filters.", fields: problems) }
    }

    /// A page of events, newest first.
    public func list(_ filter: AuditFilter, page: PageRequest, context: CallContext) async throws -> Page<AuditRecord> {
        let filter = try await scoped(filter, context: context)
        if let after = page.after, after.count != 2 || Int64(after[0]) == nil || Int64(after[1]) == nil {
            throw PageRequest.invalidCursor
        }
        return try await Page.fetch(page, key: { [String(Self.micros($0.time)), String($0.id)] }) { try await log.events(filter, page: $0) }
    }

    /// Microseconds since 1970 of a stored time, for cursors.
    public static func micros(_ time: String) -> Int64 {
        guard let date = Timestamp.parse(time) else { return 0 }
        // The stored text has microseconds; Date keeps them for present-day times.
        let whole = Int64(date.timeIntervalSince1970.rounded(.down))
        let fraction = time.split(separator: ".").last.map { String($0.prefix { $0.isNumber }) } ?? ""
        let micros = Int64((fraction + "000000").prefix(6)) ?? 0
        return whole * 1_000_000 + micros
    }

    /// One event.
    public func get(_ id: String, context: CallContext) async throws -> AuditRecord {
        guard let number = Int64(id), let record = try await log.event(id: number) else { throw DomainError.notFound("audit event", id) }
        let principal = context.principal
        let visible: Bool
        if principal.role.isPlatformRole {
            visible = true
        } else if record.draft.team != principal.team {
            visible = false
        } else {
            visible = try await log.isOfCurrentTeam(id: number)
        }
        if !visible {
            throw try await authorizer.deny(context, .notFound("audit event", id), team: record.draft.team, resourceType: "audit", resourceName: id)
        }
        return record
    }

    /// The whole filtered range, newest first, for exports.
    ///
    /// Holds one of the export slots until the last record was read or the response is dropped;
    /// a read after `exportDeadline` ends the export with an error (the client sees a cut-off
    /// body, never a silently shortened one).
    public func export(_ filter: AuditFilter, context: CallContext) async throws -> AuditRecords {
        let filter = try await scoped(filter, context: context)
        let slot = try exports.acquire(for: context.principal)
        let records = try await log.export(filter)
        let deadline = ContinuousClock.now + exportDeadline
        let limit = exportDeadline
        return AuditRecords {
            guard ContinuousClock.now < deadline else {
                slot.release()
                throw DomainError(.unavailable, "The export ran for longer than \(limit.components.seconds) s (PODID_EXPORT_TIMEOUT) and was cut off; export a shorter range (since, until).")
            }
            do {
                guard let record = try await records.next() else {
                    slot.release()
                    return nil
                }
                return record
            } catch {
                slot.release()
                throw error
            }
        }
    }

    /// A slot for a live stream of the caller's, or a 429/503 when the limits are reached.
    public func openStream(context: CallContext) throws -> StreamSlot {
        try streams.acquire(for: context.principal)
    }

    /// Checks the hash chain (admins and auditors).
    public func verify(from: Int64?, to: Int64?, context: CallContext) async throws -> AuditVerification {
        let principal = context.principal
        guard principal.role.isPlatformRole else {
            throw try await authorizer.deny(context, DomainError(.forbidden, "Verifying the audit chain needs an admin or auditor token."),
                                            team: principal.team, resourceType: "audit", resourceName: nil)
        }
        var problems: [FieldProblem] = []
        if let from, from < 1 { problems.append(FieldProblem("from", "must be a chain position (1 or more)")) }
        if let to, to < 1 { problems.append(FieldProblem("to", "must be a chain position (1 or more)")) }
        if let from, let to, from > to { problems.append(FieldProblem("to", "must not be before from")) }
        if !problems.isEmpty { throw DomainError(.badRequest, "Invalid range.", fields: problems) }
        return try await log.verify(from: from, to: to)
    }

    /// The log, for the live stream.
    public var reader: any AuditLog { log }
}
