import AsyncHTTPClient
import Core
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Store
import Testing

/// An event read from the live stream.
struct StreamEvent: Sendable {
    var id: Int
    var team: String?
    var position: Int?
}

/// The audit history: filters, paging, exports, the live stream, team isolation, and the hash chain.
@Suite("Audit log", .timeLimit(.minutes(5)))
struct AuditLogTests {
    /// Inserts events as the owner: `count` of them, spread over teams, actors, actions and outcomes,
    /// one minute apart ending now (trigger on: they are sealed as written).
    static func seed(_ database: TestDatabase, count: Int, sealed: Bool = true) async throws {
        try await database.withOwner { client in
            if !sealed { try await client.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_enqueue", logger: TestDatabase.logger) }
            try await client.query(
                """
                INSERT INTO audit_events (occurred_at, actor, actor_team, action, outcome, team, resource_type, resource_name, request_id, details)
                SELECT now() - (\(count) - g) * interval '1 minute',
                       (ARRAY['alice', 'payments/ci', 'podid'])[1 + g % 3],
                       CASE WHEN g % 3 = 1 THEN 'payments' END,
                       (ARRAY['identity.created', 'identity.deleted', 'azure.identity.created', 'team.updated', 'auth.denied'])[1 + g % 5],
                       CASE WHEN g % 5 = 4 THEN 'denied' WHEN g % 7 = 0 THEN 'failure' ELSE 'success' END,
                       (ARRAY['payments', 'search', 'billing'])[1 + g % 3],
                       CASE WHEN g % 2 = 0 THEN 'identity' ELSE 'team' END,
                       'res-' || (g % 10),
                       'req-' || (g / 4),
                       jsonb_build_object('n', g)
                FROM generate_series(1, \(count)) AS g
                """, logger: TestDatabase.logger)
            if !sealed { try await client.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_enqueue", logger: TestDatabase.logger) }
        }
    }

    /// Waits until every event is sealed.
    static func waitSealed(_ database: TestDatabase) async throws {
        #expect(try await eventually(timeout: .seconds(60)) {
            try await database.withOwner { client in
                try await client.query("SELECT count(*)::int FROM audit_unsealed", logger: TestDatabase.logger).collect()[0].decode(Int.self)
            } == 0
        })
    }

    static func ids(_ response: TestResponse) -> [Int] { response.items.compactMap { $0["id"] as? Int } }

    /// Every event id matching a SQL condition, newest first.
    static func expected(_ database: TestDatabase, _ condition: String) async throws -> [Int] {
        try await database.withOwner { client in
            try await client.query(PostgresQuery(unsafeSQL: "SELECT id::int FROM audit_events e WHERE \(condition) ORDER BY occurred_at DESC, id DESC"),
                                   logger: TestDatabase.logger).collect().map { try $0.decode(Int.self) }
        }
    }

    @Test("every filter and the combinations dashboards use, newest first, with keyset paging")
    func filters() async throws {
        try await withTestApp { client, database in
            try await Self.seed(database, count: 300)
            let now = Date()
            let since = Timestamp.format(now.addingTimeInterval(-120 * 60))
            let until = Timestamp.format(now.addingTimeInterval(-30 * 60))
            let cases: [(String, String)] = [
                ("team=payments", "team = 'payments'"),
                ("actor=payments/ci", "actor = 'payments/ci'"),
                ("action=identity.created", "action = 'identity.created'"),
                ("action=identity.", "action LIKE 'identity.%'"),
                ("action=azure.", "action LIKE 'azure.%'"),
                ("resourceType=identity&resourceName=res-4", "resource_type = 'identity' AND resource_name = 'res-4'"),
                ("outcome=denied", "outcome = 'denied'"),
                ("outcome=failure&team=search", "outcome = 'failure' AND team = 'search'"),
                ("requestId=req-12", "request_id = 'req-12'"),
                ("since=\(since)&until=\(until)", "occurred_at >= '\(since)' AND occurred_at < '\(until)'"),
                ("team=payments&since=\(since)&until=\(until)", "team = 'payments' AND occurred_at >= '\(since)' AND occurred_at < '\(until)'"),
                ("team=billing&action=identity.&outcome=success", "team = 'billing' AND action LIKE 'identity.%' AND outcome = 'success'"),
            ]
            for (query, condition) in cases {
                let expected = try await Self.expected(database, condition)
                #expect(!expected.isEmpty, "the seed covers \(query)")
                var seen: [Int] = []
                var cursor: String?
                repeat {
                    let encodedQuery = query.replacingOccurrences(of: "+", with: "%2B").replacingOccurrences(of: ":", with: "%3A")
                    let response = try await client.call(.get, "/v1/audit?\(encodedQuery)&limit=40" + (cursor.map { "&cursor=\($0)" } ?? ""),
                                                         token: testAdminToken)
                    #expect(response.status == .ok, "\(query): \(response.body)")
                    seen += Self.ids(response)
                    cursor = response.json["nextCursor"] as? String
                } while cursor != nil
                #expect(seen == expected, "\(query): \(seen.count) events, expected \(expected.count)")
            }
            #expect(try await client.call(.get, "/v1/audit?outcome=maybe", token: testAdminToken).status == .badRequest)
            #expect(try await client.call(.get, "/v1/audit?since=yesterday", token: testAdminToken).status == .badRequest)
            #expect(try await client.call(.get, "/v1/audit?since=\(until)&until=\(since)", token: testAdminToken).status == .badRequest)
            #expect(try await client.call(.get, "/v1/audit?cursor=nonsense", token: testAdminToken).status == .badRequest)

            // One event, with its place in the chain once sealed.
            try await Self.waitSealed(database)
            let id = try #require(try await Self.expected(database, "true").first)
            let one = try await client.call(.get, "/v1/audit/\(id)", token: testAdminToken)
            #expect(one.json["id"] as? Int == id)
            #expect((one.json["hash"] as? String)?.count == 64)
            #expect(one.json["position"] is Int)
            #expect(try await client.call(.get, "/v1/audit/999999", token: testAdminToken).status == .notFound)
        }
    }

    @Test("paging stays stable while events are written: no duplicates, nothing that existed is skipped")
    func pagingUnderInserts() async throws {
        try await withTestApp { client, database in
            try await Self.seed(database, count: 200)
            let before = Set(try await Self.expected(database, "true"))
            let writer = Task {
                for index in 0..<40 {
                    _ = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"t-\#(index)"}"#)
                }
            }
            var seen: [Int] = []
            var cursor: String?
            repeat {
                let response = try await client.call(.get, "/v1/audit?limit=13" + (cursor.map { "&cursor=\($0)" } ?? ""), token: testAdminToken)
                seen += Self.ids(response)
                cursor = response.json["nextCursor"] as? String
                try await Task.sleep(for: .milliseconds(5))
            } while cursor != nil
            try await writer.value
            #expect(Set(seen).count == seen.count, "no event twice")
            #expect(before.isSubset(of: Set(seen)), "every event that existed when paging began was seen")
        }
    }

    @Test("team tokens see their team's events only; auditors see all; verify is for admins and auditors")
    func isolation() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("payments")
            try await client.createTeam("search")
            let payments = try await client.createToken(team: "payments", role: "viewer").secret
            let auditor = try await client.createToken(team: nil, role: "auditor").secret
            try await Self.seed(database, count: 60)
            let own = try await client.call(.get, "/v1/audit?limit=500", token: payments)
            #expect(!own.items.isEmpty && own.items.allSatisfy { $0["team"] as? String == "payments" })
            #expect(try await client.call(.get, "/v1/audit?team=search", token: payments).status == .notFound)
            let searchEvent = try #require(try await Self.expected(database, "team = 'search'").first)
            #expect(try await client.call(.get, "/v1/audit/\(searchEvent)", token: payments).status == .notFound)
            #expect(try await client.call(.get, "/v1/audit/verify", token: payments).status == .forbidden)
            let all = try await client.call(.get, "/v1/audit?limit=500", token: auditor)
            #expect(Set(all.items.compactMap { $0["team"] as? String }) == ["payments", "search", "billing"])
            #expect(try await client.call(.get, "/v1/audit/verify", token: auditor).status == .ok)
            // (The denials above are the team's events too.)
            let now = try await client.call(.get, "/v1/audit?limit=500", token: payments)
            let exported = try await client.call(.get, "/v1/audit", token: payments, headers: [.accept: "application/x-ndjson"])
            let lines = exported.body.split(separator: "\n")
            #expect(lines.count == now.items.count)
            #expect(lines.allSatisfy { $0.contains(#""team":"payments""#) })
        }
    }

    @Test("NDJSON and CSV exports carry the whole filtered range")
    func exports() async throws {
        try await withTestApp { client, database in
            try await Self.seed(database, count: 250)
            let expected = try await Self.expected(database, "team = 'search' AND action LIKE 'identity.%'")
            let ndjson = try await client.call(.get, "/v1/audit?team=search&action=identity.", token: testAdminToken,
                                               headers: [.accept: "application/x-ndjson"])
            #expect(ndjson.status == .ok)
            #expect(ndjson.headers[.contentType]?.hasPrefix("application/x-ndjson") == true)
            let objects = ndjson.body.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(objects.compactMap { $0["id"] as? Int } == expected)
            #expect(objects.first?.keys.contains("prevHash") == true)
            let csv = try await client.call(.get, "/v1/audit?team=search&action=identity.", token: testAdminToken, headers: [.accept: "text/csv"])
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            let rows = csv.body.split(separator: "\r\n")
            #expect(rows.first == "id,time,actor,actorTeam,action,outcome,team,resourceType,resourceName,requestId,jobId,position,hash,details")
            #expect(rows.dropFirst().compactMap { Int($0.split(separator: ",").first ?? "") } == expected)
            #expect(rows.dropFirst().allSatisfy { $0.hasSuffix("\"") }, "the details JSON is quoted")
        }
    }

    @Test("100k events: the main queries use indexes, and an export streams (the first rows arrive long before the end)")
    func scale() async throws {
        try await withTestApp(live: true) { client, database in
            try await Self.seed(database, count: 100_000, sealed: false)
            _ = try await database.withOwner { try await $0.query("ANALYZE audit_events", logger: TestDatabase.logger).collect() }
            let since = Date().addingTimeInterval(-3 * 86400)
            let until = Date().addingTimeInterval(-2 * 86400)
            let filters: [AuditFilter] = [
                AuditFilter(), AuditFilter(team: "payments"), AuditFilter(team: "payments", since: since, until: until),
                AuditFilter(actor: "alice"), AuditFilter(action: "identity.created"), AuditFilter(action: "azure."),
                AuditFilter(resourceType: "identity", resourceName: "res-3"), AuditFilter(outcome: .denied),
                AuditFilter(requestId: "req-77"), AuditFilter(since: since, until: until),
                AuditFilter(team: "search", action: "identity.", outcome: .success),
            ]
            for filter in filters {
                for page in [PageRequest(limit: 101, after: nil), PageRequest(limit: 101, after: ["\(Int64(since.timeIntervalSince1970 * 1e6))", "50000"])] {
                    let query = PostgresAuditLog.pageQuery(filter, page: page)
                    let plan = try await database.withRuntime { client in
                        try await client.query(PostgresQuery(unsafeSQL: "EXPLAIN " + query.sql, binds: query.binds), logger: TestDatabase.logger)
                            .collect().map { try $0.decode(String.self) }.joined(separator: "\n")
                    }
                    #expect(!plan.contains("Seq Scan on audit_events"), "\(filter): \(plan)")
                }
            }

            // The export, read as it streams over HTTP.
            let port = try #require(client.port)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/audit")
            request.headers.add(name: "Authorization", value: "Bearer \(testAdminToken)")
            request.headers.add(name: "Accept", value: "application/x-ndjson")
            let started = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
            #expect(response.status == .ok)
            var firstChunkAt: Duration?
            var lines = 0
            var chunks = 0
            for try await buffer in response.body {
                if firstChunkAt == nil { firstChunkAt = ContinuousClock.now - started }
                chunks += 1
                lines += buffer.readableBytesView.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            }
            let total = ContinuousClock.now - started
            #expect(lines == 100_000)
            #expect(chunks > 10, "sent in many chunks, not one buffered body")
            let first = try #require(firstChunkAt)
            #expect(first * 5 < total, "the first rows arrived after \(first) of \(total)")
        }
    }

    @Test("the live stream sends sealed events with their chain position as id, resumes from Last-Event-ID, and applies filters")
    func stream() async throws {
        try await withTestApp(live: true) { client, database in
            let port = try #require(client.port)
            try await client.createTeam("payments")
            try await client.createTeam("search")
            try await Self.waitSealed(database)
            func open(_ query: String, lastEventId: String? = nil) async throws -> HTTPClientResponse {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/audit/stream\(query)")
                request.headers.add(name: "Authorization", value: "Bearer \(testAdminToken)")
                if let lastEventId { request.headers.add(name: "Last-Event-ID", value: lastEventId) }
                // A short deadline: the test reads what it needs, and the connection then closes.
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                #expect(response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true)
                return response
            }
            /// Reads messages until `count` events came.
            @Sendable func read(_ response: HTTPClientResponse, events count: Int) async throws -> [StreamEvent] {
                var text = ""
                var events: [StreamEvent] = []
                for try await buffer in response.body {
                    text += String(buffer: buffer)
                    while let range = text.range(of: "\n\n") {
                        let message = String(text[..<range.lowerBound])
                        text.removeSubrange(..<range.upperBound)
                        let fields = Dictionary(message.split(separator: "\n").compactMap { line -> (String, String)? in
                            guard let colon = line.firstIndex(of: ":"), line.first != ":" else { return nil }
                            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
                        }, uniquingKeysWith: { a, _ in a })
                        if let id = fields["id"].flatMap(Int.init), let data = fields["data"],
                           let json = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] {
                            events.append(StreamEvent(id: id, team: json["team"] as? String, position: json["position"] as? Int))
                            if events.count == count { return events }
                        }
                    }
                }
                return events
            }

            let live = try await open("?team=payments")
            let reader = Task { try await read(live, events: 2) }
            try await Task.sleep(for: .milliseconds(300))
            _ = try await client.call(.patch, "/v1/teams/search", token: testAdminToken, json: #"{"displayName":"Search"}"#)
            _ = try await client.call(.patch, "/v1/teams/payments", token: testAdminToken, json: #"{"displayName":"Payments"}"#)
            _ = try await client.call(.patch, "/v1/teams/payments", token: testAdminToken, json: #"{"contacts":["a@example.com"]}"#)
            let received = try await reader.value
            #expect(received.count == 2)
            #expect(received.allSatisfy { $0.team == "payments" }, "the filter applies")
            #expect(received.map(\.id) == received.compactMap(\.position), "the id is the chain position")
            #expect(received[0].id < received[1].id)

            // Resuming from the first event's id replays what came after it.
            let resumed = try await read(try await open("?team=payments", lastEventId: String(received[0].id)), events: 1)
            #expect(resumed.first?.id == received[1].id)
            // From the start, every event, in chain order.
            let everything = try await read(try await open("?lastEventId=0"), events: 5)
            #expect(everything.map(\.id) == [1, 2, 3, 4, 5])
            #expect(try await client.call(.get, "/v1/audit/stream", token: testAdminToken, headers: [.init("Last-Event-ID")!: "abc"]).status == .badRequest)
        }
    }

    @Test("a token holds at most its share of streams and exports, the process its maximum; a slow export is cut off at its deadline")
    func boundedStreams() async throws {
        try await withTestApp(live: true, configure: {
            $0.streamsPerToken = 2
            $0.exportsPerToken = 1
            $0.exportsMax = 1
            $0.exportTimeout = 3
        }) { client, database in
            let port = try #require(client.port)
            try await Self.seed(database, count: 60_000, sealed: false)
            @Sendable func request(_ path: String, accept: String? = nil, token: String = testAdminToken) -> HTTPClientRequest {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                if let accept { request.headers.add(name: "Accept", value: accept) }
                return request
            }
            // Two streams: this token's share. A third is a 429 naming the limit.
            let first = try await HTTPClient.shared.execute(request("/v1/audit/stream"), timeout: .seconds(60))
            let second = try await HTTPClient.shared.execute(request("/v1/audit/stream"), timeout: .seconds(60))
            #expect(first.status == .ok && second.status == .ok)
            let third = try await client.call(.get, "/v1/audit/stream", token: testAdminToken)
            #expect(third.status == .tooManyRequests, "\(third.body)")
            #expect(third.body.contains("2 audit streams"), "\(third.body)")
            #expect(third.headers[.retryAfter] != nil)
            // The first one's client goes away: its slot comes back.
            let reader = Task { _ = try? await first.body.collect(upTo: 1 << 20) }
            try await Task.sleep(for: .milliseconds(500))
            reader.cancel()
            _ = await reader.value
            #expect(try await eventually(timeout: .seconds(40)) {
                (try? await HTTPClient.shared.execute(request("/v1/audit/stream"), timeout: .seconds(10)))?.status == .ok
            })
            _ = second

            // One export at a time in this process: a second, from any token, waits its turn (503).
            let export = try await HTTPClient.shared.execute(request("/v1/audit", accept: "application/x-ndjson"), timeout: .seconds(120))
            #expect(export.status == .ok)
            let busy = try await HTTPClient.shared.execute(request("/v1/audit", accept: "text/csv"), timeout: .seconds(60))
            #expect(busy.status == .tooManyRequests || busy.status == .serviceUnavailable, "\(busy.status)")
            // The export's reader is slow: after its deadline the body is cut off, not finished.
            var iterator = export.body.makeAsyncIterator()
            var lines = 0
            var cutOff = false
            do {
                if let buffer = try await iterator.next() { lines += buffer.readableBytesView.filter { $0 == UInt8(ascii: "\n") }.count }
                try await Task.sleep(for: .seconds(4))
                while let buffer = try await iterator.next() {
                    lines += buffer.readableBytesView.filter { $0 == UInt8(ascii: "\n") }.count
                }
            } catch {
                cutOff = true
            }
            #expect(cutOff || lines < 60_000, "read \(lines) lines")
            #expect(lines < 60_000, "the export ended before its last event: \(lines) lines")
            // Its slot is free again.
            #expect(try await eventually(timeout: .seconds(60)) {
                (try? await HTTPClient.shared.execute(request("/v1/audit?since=2100-01-01T00:00:00Z", accept: "text/csv"), timeout: .seconds(30)))?.status == .ok
            })
        }
    }

    @Test("with the audit key and checkpoints, the owner role cannot delete the newest events, reseal without the key, unkey the chain or empty the sealer's queue unnoticed; the runtime role cannot write the chain at all")
    func keyedChain() async throws {
        let checkpoints = FileManager.default.temporaryDirectory.appendingPathComponent("podid-checkpoints-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: checkpoints) }
        let key = try AuditKey(secret: Array("an audit key of at least thirty-two bytes".utf8))
        try await withTestApp(configure: {
            $0.auditKey = key
            $0.auditCheckpoints = checkpoints
        }) { client, database in
            for index in 0..<6 { try await client.createTeam("team-\(index)") }
            try await Self.waitSealed(database)
            @Sendable func owner(_ sql: String) async throws {
                _ = try await database.withOwner { try await $0.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect() }
            }
            @Sendable func scalar(_ sql: String) async throws -> Int {
                try await database.withOwner { try await $0.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect()[0].decode(Int.self) }
            }
            let head = try await scalar("SELECT max(position)::int FROM audit_seals")
            let store = try DirectoryCheckpoints(path: checkpoints)
            #expect(try await eventually(timeout: .seconds(30)) { try await store.latest(1).checkpoints.first?.position == Int64(head) },
                    "the sealer writes a signed checkpoint of the head")
            #expect(try await scalar("SELECT count(*)::int FROM audit_seals WHERE version <> 2") == 0, "every seal is keyed")
            var result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == true, "\(result)")
            #expect(result["keyedFrom"] as? Int == 1)
            #expect(result["checkpointPosition"] as? Int == head)

            // The runtime role writes events, seals and the queue only through podid's functions.
            for sql in ["INSERT INTO audit_events (actor, action, outcome, resource_type) VALUES ('x', 'forged', 'success', 'team')",
                        "INSERT INTO audit_seals (position, event_id, prev_hash, hash) VALUES (999999, 1, 'x', 'y')",
                        "DELETE FROM audit_unsealed", "DELETE FROM audit_chain_keys"] {
                await #expect(throws: (any Error).self, "\(sql)") {
                    try await database.withRuntime { try await $0.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect() }
                }
            }

            // An event taken out of the sealer's queue (written with the queue's trigger off).
            try await owner("ALTER TABLE audit_events DISABLE TRIGGER audit_events_enqueue")
            try await owner("INSERT INTO audit_events (actor, action, outcome, resource_type) VALUES ('dba', 'hidden', 'success', 'team')")
            try await owner("ALTER TABLE audit_events ENABLE TRIGGER audit_events_enqueue")
            let hidden = try await scalar("SELECT max(id)::int FROM audit_events")
            result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == false)
            #expect(result["eventsWithoutSeal"] as? [Int] == [hidden], "\(result)")
            #expect((result["problems"] as? [String])?.contains { $0.contains("removed from the sealer's queue") } == true, "\(result)")
            try await owner("DELETE FROM audit_events WHERE id = \(hidden)")

            // The newest event deleted with its seal: the checkpoint says the chain was longer.
            try await owner("DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_seals WHERE position = \(head))")
            try await owner("DELETE FROM audit_seals WHERE position = \(head)")
            result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == false)
            #expect((result["problems"] as? [String])?.contains { $0.contains("the newest events were deleted") } == true, "\(result)")

            // An event rewritten and resealed with unkeyed SHA-256 (all the owner can compute).
            let last = head - 1
            let row = try await database.withOwner { client in
                try await client.query(PostgresQuery(unsafeSQL: """
                    SELECT e.id, to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor, e.actor_team, e.action, e.outcome,
                           e.team, e.resource_type, e.resource_name, e.request_id, e.job_id::text, '{"rewritten":true}', e.before::text, e.after::text,
                           s.prev_hash
                    FROM audit_seals s JOIN audit_events e ON e.id = s.event_id WHERE s.position = \(last)
                    """), logger: TestDatabase.logger).collect()[0]
            }
            let cells = row.makeRandomAccess()
            let canonical = AuditChain.canonical(
                id: try cells[0].decode(Int64.self), time: try cells[1].decode(String.self), actor: try cells[2].decode(String.self),
                actorTeam: try cells[3].decode(String?.self), action: try cells[4].decode(String.self), outcome: try cells[5].decode(String.self),
                team: try cells[6].decode(String?.self), resourceType: try cells[7].decode(String.self), resourceName: try cells[8].decode(String?.self),
                requestId: try cells[9].decode(String?.self), jobId: try cells[10].decode(String?.self), details: try cells[11].decode(String.self),
                before: try cells[12].decode(String?.self), after: try cells[13].decode(String?.self))
            let resealed = AuditChain.hash(previous: try cells[14].decode(String.self), canonical: canonical)
            try await owner("UPDATE audit_events SET details = '{\"rewritten\": true}' WHERE id = \(try cells[0].decode(Int64.self))")
            try await owner("UPDATE audit_seals SET hash = '\(resealed)', version = 1 WHERE position = \(last)")
            result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect((result["problems"] as? [String])?.contains { $0.contains("position \(last) is of version 1") } == true, "\(result)")
            // ... and the chain made to look unkeyed: the checkpoints still say it is keyed.
            try await owner("DELETE FROM audit_chain_keys")
            result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == false)
            #expect((result["problems"] as? [String])?.contains { $0.contains("recorded keyed from position 1") } == true, "\(result)")
            // A forged checkpoint is not signed.
            var forged = try #require(try await store.latest(1).checkpoints.first)
            forged.position += 1000
            try await store.write(forged)
            result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect((result["problems"] as? [String])?.contains { $0.contains("is not signed with the audit key") } == true, "\(result)")
        }
    }

    @Test("verify recomputes the chain and names the first broken event: edited, deleted, reordered")
    func verify() async throws {
        try await withTestApp { client, database in
            try await Self.seed(database, count: 40)
            try await Self.waitSealed(database)
            var result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == true)
            #expect(result["checked"] as? Int == 40)
            #expect(result["firstBroken"] is NSNull)
            func owner(_ sql: String) async throws {
                _ = try await database.withOwner { try await $0.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect() }
            }
            func eventAt(_ position: Int) async throws -> Int {
                try await database.withOwner { client in
                    try await client.query("SELECT event_id::int FROM audit_seals WHERE position = \(position)", logger: TestDatabase.logger)
                        .collect()[0].decode(Int.self)
                }
            }

            // Edited: one event's details changed.
            let edited = try await eventAt(10)
            try await owner("UPDATE audit_events SET details = '{\"n\": 999}' WHERE id = \(edited)")
            result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == false)
            #expect((result["firstBroken"] as? [String: Any])?["id"] as? Int == edited)
            #expect((result["reason"] as? String)?.contains("changed") == true)
            #expect(result["checked"] as? Int == 9)
            #expect(try await client.call(.get, "/v1/audit/verify?to=0", token: testAdminToken).status == .badRequest)
            #expect(try await client.call(.get, "/v1/audit/verify?from=5&to=2", token: testAdminToken).status == .badRequest)
            #expect(try await client.call(.get, "/v1/audit/verify?from=11", token: testAdminToken).json["ok"] as? Bool == true,
                    "a range after the change checks out")

            // Deleted: a row gone.
            let deleted = try await eventAt(20)
            try await owner("DELETE FROM audit_events WHERE id = \(deleted)")
            result = try await client.call(.get, "/v1/audit/verify?from=11", token: testAdminToken).json
            #expect(result["missingPosition"] as? Int == 20, "\(result)")
            #expect((result["reason"] as? String)?.contains("deleted") == true)

            // Reordered: two events swapped in the chain.
            try await owner("UPDATE audit_seals SET position = -31 WHERE position = 31")
            try await owner("UPDATE audit_seals SET position = 31 WHERE position = 32")
            try await owner("UPDATE audit_seals SET position = 32 WHERE position = -31")
            result = try await client.call(.get, "/v1/audit/verify?from=21", token: testAdminToken).json
            #expect(result["ok"] as? Bool == false)
            #expect((result["firstBroken"] as? [String: Any])?["position"] as? Int == 31, "\(result)")
            #expect((result["reason"] as? String)?.contains("does not link") == true)
        }
    }

    @Test("the runtime role inserts and reads events and seals but can never change or delete them")
    func appendOnly() async throws {
        let database = try await TestDatabase.make()
        defer { Task { await database.drop() } }
        try await Self.seed(database, count: 5)
        try await Self.waitSealedByHand(database)
        for statement in ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events",
                          "UPDATE audit_seals SET hash = 'x'", "DELETE FROM audit_seals", "TRUNCATE audit_seals",
                          "INSERT INTO audit_anchors (position, hash, pruned_before, pruned_events) VALUES (1, 'x', now(), 1)",
                          "DELETE FROM audit_anchors"] {
            await #expect(throws: (any Error).self, "\(statement)") {
                try await database.withRuntime { try await $0.query(PostgresQuery(unsafeSQL: statement), logger: TestDatabase.logger).collect() }
            }
        }
        let count = try await database.withRuntime { client in
            try await client.query("SELECT count(*)::int FROM audit_seals", logger: TestDatabase.logger).collect()[0].decode(Int.self)
        }
        #expect(count == 5)
    }

    /// Seals pending events with the runtime role, as the sealer does (for tests without an app).
    static func waitSealedByHand(_ database: TestDatabase) async throws {
        try await database.withRuntime { client in
            let log = PostgresAuditLog(database: PostgresPool(client: client, logger: TestDatabase.logger, connectionWait: .seconds(TestDatabase.connectionWaitSeconds)))
            while try await log.sealPending() > 0 {}
        }
    }

    @Test("podid db prune-audit deletes old sealed events as the owner and leaves an anchor that verify continues from")
    func prune() async throws {
        try await withTestApp { client, database in
            try await Self.seed(database, count: 30)
            try await Self.waitSealed(database)
            let cutoff = Timestamp.format(Date().addingTimeInterval(-10.5 * 60))
            let environment = ["PATH": "/usr/bin:/bin", "PODID_DATABASE_URL": database.runtimeURLText,
                               "PODID_MIGRATION_DATABASE_URL": database.ownerURLText]
            let (status, output) = try await runProgram(DevCommandTests.binary, ["db", "prune-audit", "--before", cutoff], environment: environment)
            #expect(status == 0, "\(output)")
            #expect(output.contains("pruned 19 audit events"), "\(output)")
            let (refused, message) = try await runProgram(DevCommandTests.binary, ["db", "prune-audit"], environment: environment)
            #expect(refused != 0 && message.contains("kept forever"), "\(message)")

            let result = try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json
            #expect(result["ok"] as? Bool == true, "\(result)")
            #expect(result["anchorPosition"] as? Int == 19)
            #expect(result["checked"] as? Int == 11)
            // New events continue the chain from the anchor.
            try await client.createTeam("after-prune")
            try await Self.waitSealed(database)
            #expect(try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json["checked"] as? Int == 12)
        }
    }
}
