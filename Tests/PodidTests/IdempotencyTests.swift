import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Testing

@Suite("Idempotency-Key", .timeLimit(.minutes(5)))
struct IdempotencyTests {
    static let key = HTTPField.Name("Idempotency-Key")!

    @Test("the same key and body replays the first response and changes nothing twice")
    func replay() async throws {
        try await withTestApp { client, database in
            let body = #"{"name":"alpha"}"#
            let first = try await client.call(.post, "/v1/teams", token: testAdminToken, json: body, headers: [Self.key: "k-1"])
            #expect(first.status == .created)
            let second = try await client.call(.post, "/v1/teams", token: testAdminToken, json: body, headers: [Self.key: "k-1"])
            #expect(second.status == .created)
            #expect(second.body == first.body)
            #expect(second.headers[.location] == "/v1/teams/alpha")
            #expect(second.headers[.eTag] == first.headers[.eTag])
            #expect(second.headers[.init("Idempotent-Replayed")!] == "true")
            #expect(try await database.auditRows().filter { $0.action == "team.created" }.count == 1)

            // A token's secret is shown once: a replay answers with the same token, without its secret.
            let tokenBody = #"{"name":"ci","role":"auditor"}"#
            let token1 = try await client.call(.post, "/v1/tokens", token: testAdminToken, json: tokenBody, headers: [Self.key: "k-2"])
            let token2 = try await client.call(.post, "/v1/tokens", token: testAdminToken, json: tokenBody, headers: [Self.key: "k-2"])
            #expect(token1.json["id"] as? String == token2.json["id"] as? String)
            #expect(token1.json["token"] is String && token2.json["token"] == nil, "\(token2.body)")
            #expect(try await client.call(.get, "/v1/tokens", token: testAdminToken).items.count == 1)
        }
    }

    @Test("the same key with another body is 422; keys are per caller; a bad key is 400")
    func mismatchAndScope() async throws {
        try await withTestApp { client, _ in
            #expect(try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha"}"#,
                                          headers: [Self.key: "k"]).status == .created)
            let other = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"beta"}"#, headers: [Self.key: "k"])
            #expect(other.status == .unprocessableContent)
            #expect((other.json["errors"] as? [[String: String]])?.first?["field"] == "Idempotency-Key")

            let admin2 = try await client.createToken(team: nil, role: "admin", name: "second-admin").secret
            let sameKeyOtherCaller = try await client.call(.post, "/v1/teams", token: admin2, json: #"{"name":"beta"}"#, headers: [Self.key: "k"])
            #expect(sameKeyOtherCaller.status == .created)

            let bad = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"gamma"}"#,
                                            headers: [Self.key: String(repeating: "k", count: 300)])
            #expect(bad.status == .badRequest)
        }
    }

    @Test("a failed request does not keep its key, so the corrected retry runs")
    func failuresAreNotKept() async throws {
        try await withTestApp { client, _ in
            let failed = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"BAD"}"#, headers: [Self.key: "k"])
            #expect(failed.status == .unprocessableContent)
            let retried = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"good"}"#, headers: [Self.key: "k"])
            #expect(retried.status == .created)
        }
    }

    @Test("keys expire after 24 hours")
    func expiry() async throws {
        try await withTestApp { client, database in
            #expect(try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha"}"#,
                                          headers: [Self.key: "k"]).status == .created)
            try await database.withOwner { client in
                try await client.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'", logger: TestDatabase.logger)
            }
            let again = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha"}"#, headers: [Self.key: "k"])
            #expect(again.status == .conflict, "an expired key runs the request again")
        }
    }
}
