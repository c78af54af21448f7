import Core
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The audit log in PostgreSQL: queries, exports, the sealer of the hash chain, its verification,
/// and pruning (as the owner).
public struct PostgresAuditLog: AuditLog, AuditSealing {
    let database: PostgresPool
    /// The pool exports read from: a client reading slowly holds one of its connections, never
    /// one the API and the workers need.
    let exports: PostgresPool

    /// The audit key (`PODID_AUDIT_KEY_FILE`): seals from the recorded position on are keyed.
    let key: AuditKey?
    /// Where the sealer writes signed checkpoints of the head, and verify reads them.
    let checkpoints: (any AuditCheckpointStore)?
    let pacer: CheckpointPacer
    let logger: Logger

    /// Creates the log; exports use `exports` (default: `database`). With a `key`, seals are keyed
    /// (from the position where the first keyed seal is made on); with `checkpoints` too, the
    /// sealer writes a signed checkpoint of the head at most every `checkpointInterval`.
    public init(database: PostgresPool, exports: PostgresPool? = nil, key: AuditKey? = nil, checkpoints: (any AuditCheckpointStore)? = nil,
                checkpointInterval: Duration = .seconds(5)) {
        self.database = database
        self.exports = exports ?? database
        self.key = key
        self.checkpoints = checkpoints
        self.pacer = CheckpointPacer(interval: checkpointInterval)
        self.logger = database.logger
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
    ///
    /// With a key, the first pass records the position from which seals are keyed; a chain keyed
    /// with another key (or a podid without one) seals nothing and says why: seals under the wrong
    /// rule would only make verify fail later.
    public func sealPending(limit: Int) async throws -> Int {
        let key = key
        let sealed = try await database.transaction { connection in
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
            var keyedFrom = try await Self.keyedFrom(connection, logger: database.logger)
            if let recorded = keyedFrom {
                guard let key, key.id == recorded.keyId else {
                    throw DomainError(.unavailable, "The audit chain is keyed from position \(recorded.position) with key \(recorded.keyId); this podid has \(key.map { "key \($0.id)" } ?? "no key") (PODID_AUDIT_KEY_FILE), so it seals nothing until it has that key.")
                }
            } else if let key {
                try await connection.query("SELECT podid_audit_keyed_from(\(position + 1), \(key.id))", logger: database.logger)
                keyedFrom = (position + 1, key.id)
            }
            let version = keyedFrom == nil ? 1 : 2
            var ids: [Int64] = []
            var positions: [Int64] = []
            var prevs: [String] = []
            var hashes: [String] = []
            for row in pending where row.position == nil {
                position += 1
                guard let hash = AuditChainRules.seal(version: version, previous: previous, canonical: row.canonical, key: key) else { break }
                ids.append(row.id)
                positions.append(position)
                prevs.append(previous)
                hashes.append(hash)
                previous = hash
            }
            let done = pending.map(\.id)
            try await connection.query(
                "SELECT podid_audit_seal(\(positions)::bigint[], \(ids)::bigint[], \(prevs)::text[], \(hashes)::text[], \(version)::smallint, \(done)::bigint[])",
                logger: database.logger)
            return ids.count
        }
        if sealed > 0 { pacer.moved() }
        if pacer.due() { try await writeCheckpoint() }
        return sealed
    }

    /// Writes a signed checkpoint of the committed head, when there is a key, a place for
    /// checkpoints and a head newer than the last checkpoint this process wrote; also logged, so
    /// that a log pipeline keeps a copy.
    public func writeCheckpoint() async throws {
        guard let key, let checkpoints else { return }
        let head = try await database.rows(
            """
            SELECT s.position, s.hash, (SELECT min(from_position) FROM audit_chain_keys)
            FROM audit_seals AS s ORDER BY s.position DESC LIMIT 1
            """).first.map { try $0.decode((Int64, String, Int64?).self) }
        guard let (position, hash, keyedFrom) = head, pacer.shouldWrite(position) else { return }
        let checkpoint = AuditCheckpoint(position: position, hash: hash, keyedFrom: keyedFrom, writtenAt: Date(), key: key)
        try await checkpoints.write(checkpoint)
        pacer.wrote(position)
        logger.notice("audit checkpoint", metadata: [
            "position": "\(position)", "hash": "\(hash)", "keyed_from": "\(keyedFrom.map(String.init) ?? "-")", "key_id": "\(key.id)",
            "written_at": "\(checkpoint.writtenAt)", "mac": "\(checkpoint.mac)",
        ])
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

    /// Where the chain is keyed from, and with which key.
    static func keyedFrom(_ connection: PostgresConnection, logger: Logger) async throws -> (position: Int64, keyId: String)? {
        try await connection.query("SELECT from_position, key_id FROM audit_chain_keys ORDER BY from_position LIMIT 1", logger: logger)
            .collect().first.map { try $0.decode((Int64, String).self) }
    }

    // MARK: verification

    public func verify(from: Int64?, to: Int64?) async throws -> AuditVerification {
        var problems: [String] = []
        var firstBroken: AuditRecord?
        var missingPosition: Int64?
        func problem(_ text: String, record: AuditRecord? = nil, missing: Int64? = nil) {
            if problems.isEmpty {
                firstBroken = record
                missingPosition = missing
            }
            if problems.count < 100 { problems.append(text) }
        }
        let anchor = try await database.rows("SELECT position, hash, pruned_events, mac FROM audit_anchors ORDER BY position DESC LIMIT 1").first
            .map { try $0.decode((Int64, String, Int64, String?).self) }
        let keyed = try await database.rows("SELECT from_position, key_id FROM audit_chain_keys ORDER BY from_position LIMIT 1").first
            .map { try $0.decode((Int64, String).self) }
        let keyedFrom = keyed?.0
        let unsealed = try await database.rows("SELECT count(*)::int FROM audit_unsealed")[0].decode(Int.self)
        if let keyed {
            if let key, key.id != keyed.1 {
                problem("the chain is keyed from position \(keyed.0) with key \(keyed.1), but this podid has key \(key.id): keyed seals cannot be checked")
            } else if key == nil {
                problem("the chain is keyed from position \(keyed.0), but this podid has no audit key (PODID_AUDIT_KEY_FILE): keyed seals cannot be checked")
            }
        }
        if let anchor {
            let signed = anchor.3.map { mac in key.map { $0.mac(AuditChainRules.anchorText(position: anchor.0, hash: anchor.1, prunedEvents: anchor.2)) == mac } ?? true }
            if signed == false || (signed == nil && keyedFrom.map { anchor.0 >= $0 } == true) {
                problem("the pruning anchor at position \(anchor.0) is not signed with the audit key: it was not written by podid's pruning")
            }
        }
        // Events that have no seal and are not queued for one were taken out of the sealer's queue.
        let orphans = try await database.rows(
            """
            SELECT e.id FROM audit_events AS e
            WHERE NOT EXISTS (SELECT 1 FROM audit_seals AS s WHERE s.event_id = e.id)
              AND NOT EXISTS (SELECT 1 FROM audit_unsealed AS u WHERE u.event_id = e.id)
            ORDER BY e.id LIMIT 100
            """).map { try $0.decode(Int64.self) }
        if !orphans.isEmpty {
            problem("\(orphans.count == 100 ? "100 or more" : String(orphans.count)) event(s) have no seal and are not waiting for one (the first: \(orphans[0])): they were removed from the sealer's queue")
        }

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
        var walkBroken = false
        var expected = start
        while start <= end {
            let rows = try await database.rows(
                """
                SELECT \(unescaped: Self.columns), s.event_id, e.id IS NOT NULL, s.version
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
                let version = try cells[19].decode(Int.self)
                let before = problems.count
                if position != expected {
                    problem("chain position \(expected) is missing (the next is \(position)): a seal was removed", missing: expected)
                }
                if !exists {
                    problem("event \(eventId) at position \(position) is missing: its row was deleted", missing: position)
                } else {
                    let event = try Row(row)
                    let required = AuditChainRules.requiredVersion(position: position, keyedFrom: keyedFrom)
                    if prevHash != previous {
                        problem("the seal at position \(position) does not link to the one before: the chain was reordered or rewritten", record: event.record)
                    } else if version != required {
                        problem("the seal at position \(position) is of version \(version), but the chain is \(keyedFrom.map { "keyed from position \($0)" } ?? "not keyed"): it was resealed without the key", record: event.record)
                    } else if let wanted = AuditChainRules.seal(version: version, previous: previous, canonical: event.canonical, key: key),
                              wanted != hash {
                        problem("event \(eventId) at position \(position) does not match its seal: it was changed after it was written", record: event.record)
                    }
                }
                // Go on from what is stored: every later break is reported too. `checked` counts the
                // events that checked out before the first break.
                if problems.count > before { walkBroken = true }
                if !walkBroken { checked += 1 }
                previous = hash
                expected = position + 1
            }
            start = expected
        }
        let checkpointPosition = try await verifyCheckpoints(anchor: anchor?.0, keyedFrom: keyedFrom, head: expected - 1, problem: { problem($0) })
        return AuditVerification(ok: problems.isEmpty, checked: checked, firstBroken: firstBroken, missingPosition: missingPosition,
                                 reason: problems.first, anchorPosition: anchor?.0, unsealed: unsealed, problems: problems,
                                 eventsWithoutSeal: orphans, keyedFrom: keyedFrom, checkpointPosition: checkpointPosition)
    }

    /// Checks the newest checkpoints against the chain: each must be signed with the key, its
    /// position must still be in the chain (or pruned behind the anchor) with the same seal, and
    /// the chain's keyed position must be the one it recorded. Returns the newest one checked.
    func verifyCheckpoints(anchor: Int64?, keyedFrom: Int64?, head: Int64, problem: (String) -> Void) async throws -> Int64? {
        guard let checkpoints else { return nil }
        let (found, unreadable) = try await checkpoints.latest(50)
        for name in unreadable { problem("checkpoint \(name) cannot be read") }
        guard let key else {
            if !found.isEmpty { problem("there are checkpoints but this podid has no audit key (PODID_AUDIT_KEY_FILE) to check them with") }
            return nil
        }
        let dbHead = try await database.rows("SELECT max(position) FROM audit_seals")[0].decode(Int64?.self) ?? anchor ?? 0
        var newest: Int64?
        for checkpoint in found {
            guard checkpoint.isSigned(by: key) else {
                problem("the checkpoint of position \(checkpoint.position) (\(checkpoint.writtenAt)) is not signed with the audit key")
                continue
            }
            newest = max(newest ?? checkpoint.position, checkpoint.position)
            if checkpoint.keyedFrom != keyedFrom {
                problem("the chain says it is \(keyedFrom.map { "keyed from position \($0)" } ?? "not keyed"), but the checkpoint of \(checkpoint.writtenAt) recorded \(checkpoint.keyedFrom.map { "keyed from position \($0)" } ?? "not keyed")")
            }
            if checkpoint.position > dbHead {
                problem("the chain ends at position \(dbHead), but the checkpoint of \(checkpoint.writtenAt) recorded position \(checkpoint.position): the newest events were deleted")
            } else if checkpoint.position > (anchor ?? 0) {
                let stored = try await database.rows("SELECT hash FROM audit_seals WHERE position = \(checkpoint.position)").first
                    .map { try $0.decode(String.self) }
                if let stored, stored != checkpoint.hash {
                    problem("the seal at position \(checkpoint.position) differs from the checkpoint of \(checkpoint.writtenAt): the chain was rewritten")
                }
            }
        }
        return newest
    }

    // MARK: retention

    /// Deletes sealed events that happened before `before`, oldest first and without gaps, and
    /// records an anchor (position and hash of the last one deleted) so that verification continues
    /// from there. Needs the owning role. Returns how many events went.
    public static func prune(before: Date, client: PostgresClient, key: AuditKey? = nil, logger: Logger) async throws -> Int64 {
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
            // Signed with the key, so that verify refuses an anchor written by hand.
            let mac = key?.mac(AuditChainRules.anchorText(position: last, hash: hash, prunedEvents: count))
            try await connection.query(
                "INSERT INTO audit_anchors (position, hash, pruned_before, pruned_events, mac) VALUES (\(last), \(hash), \(before), \(count), \(mac))",
                logger: logger)
            try await connection.query(
                "DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_seals WHERE position <= \(last))", logger: logger)
            try await connection.query("DELETE FROM audit_seals WHERE position <= \(last)", logger: logger)
            return count
        }
    }
}

/// When the sealer writes a checkpoint: the head moved and the interval passed since the last.
final class CheckpointPacer: Sendable {
    let interval: Duration
    let state = Mutex<(last: ContinuousClock.Instant?, position: Int64, moved: Bool)>((nil, 0, false))

    init(interval: Duration) {
        self.interval = interval
    }

    func moved() {
        state.withLock { $0.moved = true }
    }

    func due() -> Bool {
        state.withLock { state in
            guard state.moved else { return false }
            guard let last = state.last else { return true }
            return ContinuousClock.now - last >= interval
        }
    }

    func shouldWrite(_ position: Int64) -> Bool {
        state.withLock { state in
            if state.position < position { return true }
            state.moved = false
            return false
        }
    }

    func wrote(_ position: Int64) {
        state.withLock { state in
            state.last = .now
            state.position = position
            state.moved = false
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
