import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Testing

@Suite("Audit writes", .timeLimit(.minutes(5)))
struct AuditWriteTests {
    @Test("a change and its audit event commit together, with actor, request id and before/after")
    func eventContent() async throws {
        try await withTestApp { client, database in
            let created = try await client.call(
                .post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha","displayName":"A"}"#,
                headers: [.init("X-Request-Id")!: "req-create-alpha"])
            #expect(created.headers[.init("X-Request-Id")!] == "req-create-alpha")
            _ = try await client.call(.patch, "/v1/teams/alpha", token: testAdminToken, json: #"{"displayName":"B"}"#)
            let rows = try await database.withOwner { client in
                try await client.query(
                    """
                    SELECT action, actor, team, resource_type, resource_name, request_id,
                           before->>'displayName', after->>'displayName'
                    FROM audit_events ORDER BY id
                    """, logger: TestDatabase.logger
                ).collect().map { try $0.decode((String, String, String?, String, String?, String?, String?, String?).self) }
            }
            #expect(rows.count == 2)
            #expect(rows[0].0 == "team.created")
            #expect(rows[0].1 == "bootstrap-admin")
            #expect(rows[0].2 == "alpha")
            #expect(rows[0].3 == "team")
            #expect(rows[0].5 == "req-create-alpha")
            #expect(rows[0].6 == nil)
            #expect(rows[0].7 == "A")
            #expect(rows[1].0 == "team.updated")
            #expect(rows[1].6 == "A")
            #expect(rows[1].7 == "B")
        }
    }

    @Test("a refused change writes no event; a denial records who was refused what")
    func refusals() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("alpha")
            try await client.createTeam("beta")
            let viewer = try await client.createToken(team: "beta", role: "viewer", name: "beta-dash").secret
            let before = try await database.auditRows().count
            #expect(try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha"}"#).status == .conflict)
            #expect(try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"BAD"}"#).status == .unprocessableContent)
            #expect(try await database.auditRows().count == before)

            #expect(try await client.call(.get, "/v1/teams/alpha", token: viewer).status == .notFound)
            let denial = try await database.auditRows().last
            #expect(denial?.action == "auth.denied")
            #expect(denial?.outcome == "denied")
            #expect(denial?.actor == "beta/beta-dash")
            #expect(denial?.team == "alpha")
        }
    }

    @Test("the runtime role appends events only through podid_audit_append, with the server's id and clock, and never updates or deletes them")
    func appendOnly() async throws {
        let database = try await TestDatabase.make()
        defer { Task { await database.drop() } }
        try await database.withRuntime { client in
            try await client.query(
                "SELECT podid_audit_append('t', NULL, 'test.inserted', 'success', NULL, 'test', NULL, NULL, NULL, '{}', NULL, NULL)",
                logger: TestDatabase.logger)
            let rows = try await client.query(
                "SELECT count(*)::int, bool_and(occurred_at > now() - interval '1 minute') FROM audit_events", logger: TestDatabase.logger).collect()
            let (count, serverClock) = try #require(try rows.first?.decode((Int, Bool).self))
            #expect(count == 1 && serverClock)
            for statement in [
                "INSERT INTO audit_events (actor, action, outcome, resource_type) VALUES ('t', 'test.inserted', 'success', 'test')",
                "INSERT INTO audit_events (id, occurred_at, actor, action, outcome, resource_type) OVERRIDING SYSTEM VALUE VALUES (99, '2001-01-01', 't', 'x', 'success', 'test')",
                "UPDATE audit_events SET action = 'test.changed'", "DELETE FROM audit_events", "TRUNCATE audit_events",
                "DELETE FROM audit_unsealed", "INSERT INTO audit_unsealed VALUES (12345)", "UPDATE audit_seals SET hash = 'x'",
                "INSERT INTO audit_anchors (position, hash, pruned_before, pruned_events) VALUES (1, 'x', now(), 1)",
            ] {
                await #expect {
                    try await client.query(PostgresQuery(unsafeSQL: statement), logger: TestDatabase.logger)
                } throws: { error in
                    (error as? PSQLError)?.serverInfo?[.sqlState] == "42501"  // insufficient_privilege
                }
            }
        }
    }
}
