import Core
import Foundation
import Logging
import PostgresNIO

/// The audit log in PostgreSQL: queries, exports, the sealer of the hash chain, its verification,
/// and pruning (as the owner).
public struct PostgresAuditLog: AuditLog, AuditSealing {
    let database: PostgresPool
    /// The pool exports read from: a client reading slowly holds one of its connections, never
    /// one the API and the workers need.
    let exports: PostgresPool

    /// Creates the log; exports use `exports` (default: `database`).
    public init(database: PostgresPool, exports: PostgresPool? = nil) {
        self.database = database
        self.exports = exports ?? database
    }

    /// The advisory lock that makes one sealer at a time, across replicas.
    static let sealerLock: Int64 = 0x706f_6469_6453_6561

    static let columns = """
        e.id, to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor, e.actor_team, e.action, e.outcome,
        e.team, e.resource_type, e.resource_name, e.request_id, e.job_id::text, e.details::text, e.before::text, e.after::text,
        s.position, s.hash, s.prev_hash
        """

    /// A stored event's values, as read and as hashed.
    struct Row {
        var id: Int64
        var time: String
        var actor: String
        var actorTeam: String?
        var action: String
        var outcome: String
        var team: String?
        var resourceType: String
        var resourceName: String?
        var requestId: String?
        var jobId: String?
        var details: String
        var before: String?
        var after: String?
        var position: Int64?
        var hash: String?
        var prevHash: String?

        init(_ row: PostgresRow) throws {
            let cells = row.makeRandomAccess()
            id = try cells[0].decode(Int64.self)
            time = try cells[1].decode(String.self)
            actor = try cells[2].decode(String.self)
            actorTeam = try cells[3].decode(String?.self)
            action = try cells[4].decode(String.self)
            outcome = try cells[5].decode(String.self)
            team = try cells[6].decode(String?.self)
            resourceType = try cells[7].decode(String.self)
            resourceName = try cells[8].decode(String?.self)
            requestId = try cells[9].decode(String?.self)
            jobId = try cells[10].decode(String?.self)
            details = try cells[11].decode(String.self)
            before = try cells[12].decode(String?.self)
            after = try cells[13].decode(String?.self)
            position = try cells[14].decode(Int64?.self)
            hash = try cells[15].decode(String?.self)
            prevHash = try cells[16].decode(String?.self)
        }

        var canonical: String {
            AuditChain.canonical(id: id, time: time, actor: actor, actorTeam: actorTeam, action: action, outcome: outcome, team: team,
                                 resourceType: resourceType, resourceName: resourceName, requestId: requestId, jobId: jobId,
                                 details: details, before: before, after: after)
        }

        var record: AuditRecord {
            func json(_ text: String?) -> JSONValue? {
                text.flatMap(JSONValue.parse)
            }
            var detailValues: [String: JSONValue] = [:]
            if case .object(let members)? = json(details) { detailValues = members }
            return AuditRecord(
                id: id, time: time,
                draft: AuditDraft(actor: actor, actorTeam: actorTeam, action: action, outcome: AuditOutcome(rawValue: outcome) ?? .success,
                                  team: team, resourceType: resourceType, resourceName: resourceName, requestId: requestId,
                                  jobId: jobId.flatMap(UUID.init(uuidString:)), details: detailValues, before: json(before), after: json(after)),
                position: position, hash: hash, prevHash: prevHash)
        }
    }

    /// The WHERE clause of a filter, with its bindings; only the filters in use appear, so that the
    /// planner picks the index for them.
    public static func conditions(_ filter: AuditFilter, binds: inout PostgresBindings) -> [String] {
        var parts: [String] = []
        func add(_ template: (String) -> String, _ value: String) {
            binds.append(value)
            parts.append(template("$\(binds.count)"))
        }
        if let team = filter.team {
            if filter.currentTeamOnly {
                add({ "e.team_id = (SELECT t.id FROM teams AS t WHERE t.name = \($0))" }, team)
            } else {
                add({ "e.team = \($0)" }, team)
            }
        }
        if let actor = filter.actor { add({ "e.actor = \($0)" }, actor) }
        if let action = filter.action {
            if filter.actionIsPrefix {
                let escaped = action.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                    .replacingOccurrences(of: "_", with: "\\_")
                add({ "e.action LIKE \($0)" }, escaped + "%")
            } else {
                add({ "e.action = \($0)" }, action)
            }
        }
        if let type = filter.resourceType { add({ "e.resource_type = \($0)" }, type) }
        if let name = filter.resourceName { add({ "e.resource_name = \($0)" }, name) }
        if let outcome = filter.outcome { add({ "e.outcome = \($0)" }, outcome.rawValue) }
        if let requestId = filter.requestId { add({ "e.request_id = \($0)" }, requestId) }
        if let since = filter.since {
            binds.append(since)
            parts.append("e.occurred_at >= $\(binds.count)")
        }
        if let until = filter.until {
            binds.append(until)
            parts.append("e.occurred_at < $\(binds.count)")
        }
        return parts
    }

    /// The page query (public for the test that checks its plan).
    public static func pageQuery(_ filter: AuditFilter, page: PageRequest) -> PostgresQuery {
        var binds = PostgresBindings()
        var parts = conditions(filter, binds: &binds)
        if let after = page.after, after.count == 2, let micros = Int64(after[0]), let id = Int64(after[1]) {
            binds.append(micros)
            let microsIndex = binds.count
            binds.append(id)
            parts.append("(e.occurred_at, e.id) < (timestamptz 'epoch' + $\(microsIndex) * interval '1 microsecond', $\(binds.count))")
        }
        binds.append(page.limit)
        let sql = """
            SELECT \(columns) FROM audit_events e LEFT JOIN audit_seals s ON s.event_id = e.id
            \(parts.isEmpty ? "" : "WHERE " + parts.joined(separator: " AND "))
            ORDER BY e.occurred_at DESC, e.id DESC LIMIT $\(binds.count)
            """
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    public func events(_ filter: AuditFilter, page: PageRequest) async throws -> [AuditRecord] {
        try await database.rows(Self.pageQuery(filter, page: page)).map { try Row($0).record }
    }

    public func event(id: Int64) async throws -> AuditRecord? {
        try await database.rows(
            "SELECT \(unescaped: Self.columns) FROM audit_events e LEFT JOIN audit_seals s ON s.event_id = e.id WHERE e.id = \(id)"
        ).first.map { try Row($0).record }
    }

    public func isOfCurrentTeam(id: Int64) async throws -> Bool {
        let rows = try await database.rows(
            """
            SELECT e.team IS NULL OR e.team_id IS NOT DISTINCT FROM (SELECT t.id FROM teams AS t WHERE t.name = e.team)
            FROM audit_events e WHERE e.id = \(id)
            """)
        return try rows.first?.decode(Bool.self) ?? false
    }

    public func export(_ filter: AuditFilter) async throws -> AuditRecords {
        var binds = PostgresBindings()
        let parts = Self.conditions(filter, binds: &binds)
        let sql = """
            SELECT \(Self.columns) FROM audit_events e LEFT JOIN audit_seals s ON s.event_id = e.id
            \(parts.isEmpty ? "" : "WHERE " + parts.joined(separator: " AND "))
            ORDER BY e.occurred_at DESC, e.id DESC
            """
        let rows: PostgresRowSequence
        do {
            rows = try await exports.client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: exports.logger)
        } catch {
            throw PostgresErrors.map(error)
        }
        let cursor = RowCursor(rows.makeAsyncIterator())
        return AuditRecords { try await cursor.next().map { try Row($0).record } }
    }

    public func sealed(_ filter: AuditFilter, after: Int64, upTo: Int64, limit: Int) async throws -> [AuditRecord] {
        var binds = PostgresBindings()
        var parts = Self.conditions(filter, binds: &binds)
        binds.append(after)
        parts.append("s.position > $\(binds.count)")
        binds.append(upTo)
        parts.append("s.position <= $\(binds.count)")
        binds.append(limit)
        let sql = """
            SELECT \(Self.columns) FROM audit_seals s JOIN audit_events e ON e.id = s.event_id
            WHERE \(parts.joined(separator: " AND "))
            ORDER BY s.position LIMIT $\(binds.count)
            """
        return try await database.rows(PostgresQuery(unsafeSQL: sql, binds: binds)).map { try Row($0).record }
    }

    public func lastPosition() async throws -> Int64 {
        try await database.rows("SELECT coalesce(max(position), 0) FROM audit_seals")[0].decode(Int64.self)
    }

    // MARK: sealing

    /// Seals up to `limit` committed events in one transaction, continuing the chain; 0 when there
    /// was nothing to seal or another replica holds the sealer's lock.
    public func sealPending() async throws -> Int {
        try await sealPending(limit: 1000)
    }

    /// Seals up to `limit` committed events (see `sealPending()`).
    public func sealPending(limit: Int) async throws -> Int {
        try await database.transaction { connection in
            let locked = try await connection.query("SELECT pg_try_advisory_xact_lock(\(Self.sealerLock))", logger: database.logger)
                .collect()[0].decode(Bool.self)
            guard locked else { return 0 }
            let pending = try await connection.query(
                """
                SELECT \(unescaped: Self.columns) FROM audit_unsealed u JOIN audit_events e ON e.id = u.event_id
                LEFT JOIN audit_seals s ON s.event_id = e.id
                ORDER BY u.event_id LIMIT \(limit)
                """, logger: database.logger
            ).collect().map(Row.init)
            guard !pending.isEmpty else { return 0 }
            var (position, previous) = try await Self.chainHead(connection, logger: database.logger)
            var ids: [Int64] = []
            var positions: [Int64] = []
            var prevs: [String] = []
            var hashes: [String] = []
            for row in pending where row.position == nil {
                position += 1
                let hash = AuditChain.hash(previous: previous, canonical: row.canonical)
                ids.append(row.id)
                positions.append(position)
                prevs.append(previous)
                hashes.append(hash)
                previous = hash
            }
            if !ids.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO audit_seals (position, event_id, prev_hash, hash)
                    SELECT * FROM unnest(\(positions)::bigint[], \(ids)::bigint[], \(prevs)::text[], \(hashes)::text[])
                    """, logger: database.logger)
            }
            let done = pending.map(\.id)
            try await connection.query("DELETE FROM audit_unsealed WHERE event_id = ANY(\(done)::bigint[])", logger: database.logger)
            return ids.count
        }
    }

    /// The last position and hash: the newest seal, else the pruning anchor, else the genesis.
    static func chainHead(_ connection: PostgresConnection, logger: Logger) async throws -> (Int64, String) {
        let rows = try await connection.query(
            """
            SELECT position, hash FROM (
                SELECT position, hash FROM audit_seals
                UNION ALL SELECT position, hash FROM audit_anchors
            ) AS head ORDER BY position DESC LIMIT 1
            """, logger: logger
        ).collect()
        guard let row = rows.first else { return (0, AuditChain.genesis) }
        return try row.decode((Int64, String).self)
    }

    // MARK: verification

    public func verify(from: Int64?, to: Int64?) async throws -> AuditVerification {
        let anchor = try await database.rows("SELECT position, hash FROM audit_anchors ORDER BY position DESC LIMIT 1").first
            .map { try $0.decode((Int64, String).self) }
        let unsealed = try await database.rows("SELECT count(*)::int FROM audit_unsealed")[0].decode(Int.self)
        var start = max(from ?? 1, (anchor?.0 ?? 0) + 1)
        // The hash the first checked seal must link to: the anchor's, the genesis, or the stored hash
        // of the seal before `from` (which a check from the start covers).
        var previous: String
        if start == (anchor?.0 ?? 0) + 1 {
            previous = anchor?.1 ?? AuditChain.genesis
        } else {
            let before = try await database.rows("SELECT hash FROM audit_seals WHERE position = \(start - 1)").first
            previous = try before?.decode(String.self) ?? AuditChain.genesis
        }
        let end = to ?? Int64.max
        var checked = 0
        var expected = start
        while start <= end {
            let rows = try await database.rows(
                """
                SELECT \(unescaped: Self.columns), s.event_id, e.id IS NOT NULL
                FROM audit_seals s LEFT JOIN audit_events e ON e.id = s.event_id
                WHERE s.position >= \(start) AND s.position <= \(end)
                ORDER BY s.position LIMIT 1000
                """)
            if rows.isEmpty { break }
            for row in rows {
                let cells = row.makeRandomAccess()
                let position = try cells[14].decode(Int64.self)
                let hash = try cells[15].decode(String.self)
                let prevHash = try cells[16].decode(String.self)
                let eventId = try cells[17].decode(Int64.self)
                let exists = try cells[18].decode(Bool.self)
                let broken: (String, AuditRecord?)?
                if position != expected {
                    broken = ("chain position \(expected) is missing (the next is \(position)): a seal was removed", nil)
                } else if !exists {
                    broken = ("event \(eventId) at position \(position) is missing: its row was deleted", nil)
                } else {
                    let event = try Row(row)
                    if prevHash != previous {
                        broken = ("the seal at position \(position) does not link to the one before: the chain was reordered or rewritten", event.record)
                    } else if AuditChain.hash(previous: previous, canonical: event.canonical) != hash {
                        broken = ("event \(eventId) at position \(position) does not match its hash: it was changed after it was written", event.record)
                    } else {
                        broken = nil
                    }
                }
                if let (reason, record) = broken {
                    return AuditVerification(ok: false, checked: checked, firstBroken: record, missingPosition: record == nil ? position : nil,
                                             reason: reason, anchorPosition: anchor?.0, unsealed: unsealed)
                }
                previous = hash
                checked += 1
                expected = position + 1
            }
            start = expected
        }
        return AuditVerification(ok: true, checked: checked, firstBroken: nil, missingPosition: nil, reason: nil, anchorPosition: anchor?.0,
                                 unsealed: unsealed)
    }

    // MARK: retention

    /// Deletes sealed events that happened before `before`, oldest first and without gaps, and
    /// records an anchor (position and hash of the last one deleted) so that verification continues
    /// from there. Needs the owning role. Returns how many events went.
    public static func prune(before: Date, client: PostgresClient, logger: Logger) async throws -> Int64 {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(sealerLock))", logger: logger).collect()
            // The last position such that it and every position before it happened before `before`.
            let rows = try await connection.query(
                """
                SELECT coalesce(min(s.position), (SELECT coalesce(max(position), 0) + 1 FROM audit_seals)) - 1
                FROM audit_seals s LEFT JOIN audit_events e ON e.id = s.event_id
                WHERE e.occurred_at IS NULL OR e.occurred_at >= \(before)
                """, logger: logger
            ).collect()
            let last = try rows[0].decode(Int64.self)
            let first = try await connection.query("SELECT coalesce(min(position), 0) FROM audit_seals", logger: logger).collect()[0].decode(Int64.self)
            guard last >= first, first > 0 else { return 0 }
            let hash = try await connection.query("SELECT hash FROM audit_seals WHERE position = \(last)", logger: logger)
                .collect()[0].decode(String.self)
            let count = last - first + 1
            try await connection.query(
                "INSERT INTO audit_anchors (position, hash, pruned_before, pruned_events) VALUES (\(last), \(hash), \(before), \(count))",
                logger: logger)
            try await connection.query(
                "DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_seals WHERE position <= \(last))", logger: logger)
            try await connection.query("DELETE FROM audit_seals WHERE position <= \(last)", logger: logger)
            return count
        }
    }
}

/// The row iterator behind an export. `@unchecked Sendable` because PostgresNIO's iterator is not
/// Sendable, while `AuditRecords` hands out a `@Sendable` closure: it is sound because an export's
/// records are pulled by one consumer (the response body writer), one `next()` after another.
final class RowCursor: @unchecked Sendable {
    var iterator: PostgresRowSequence.AsyncIterator

    init(_ iterator: PostgresRowSequence.AsyncIterator) {
        self.iterator = iterator
    }

    func next() async throws -> PostgresRow? {
        do {
            return try await iterator.next()
        } catch {
            throw PostgresErrors.map(error)
        }
    }
}
