import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Testing

@Suite("Tokens", .timeLimit(.minutes(5)))
struct TokenTests {
    @Test("a new token works at once, its secret is shown once and stored only as SHA-256")
    func createAndUse() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("alpha")
            let created = try await client.call(
                .post, "/v1/teams/alpha/tokens", token: testAdminToken,
                json: #"{"name":"deploy","role":"maintainer","expiresAt":"2099-01-01T00:00:00Z"}"#)
            #expect(created.status == .created)
            let secret = try #require(created.json["token"] as? String)
            let id = try #require(created.json["id"] as? String)
            #expect(secret.hasPrefix("podid_"))
            #expect(secret.count >= 6 + 43, "at least 32 random bytes")
            #expect(created.headers[.location] == "/v1/teams/alpha/tokens/\(id)")
            #expect(created.json["createdBy"] as? String == "bootstrap-admin")

            let me = try await client.call(.get, "/v1/me", token: secret)
            #expect(me.status == .ok)
            #expect(me.json["tokenId"] as? String == id)
            #expect(me.json["tokenName"] as? String == "deploy")
            #expect((me.json["expiresAt"] as? String)?.hasPrefix("2099-01-01T00:00:00") == true)

            let listed = try await client.call(.get, "/v1/teams/alpha/tokens", token: secret)
            #expect(listed.items.count == 1)
            #expect(listed.items.first?["token"] == nil, "lists never show secrets")
            #expect(!listed.body.contains(secret))

            let stored = try await database.withOwner { client in
                try await client.query("SELECT encode(secret_hash, 'hex') FROM tokens", logger: TestDatabase.logger)
                    .collect().map { try $0.decode(String.self) }
            }
            #expect(stored.count == 1)
            #expect(stored.first?.count == 64)
            #expect(stored.first?.contains(secret) == false)
            let audit = try await database.auditRows()
            #expect(!audit.contains { ($0.resourceName ?? "").contains(secret) })
        }
    }

    @Test("a revoked token stops working within 5 seconds; so do the tokens of a deleted team")
    func revocation() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("alpha")
            let (secret, id) = try await client.createToken(team: "alpha", role: "viewer")
            let other = try await client.createToken(team: "alpha", role: "viewer", name: "other").secret
            #expect(try await client.call(.get, "/v1/me", token: secret).status == .ok)
            #expect(try await client.call(.get, "/v1/me", token: other).status == .ok)
            #expect(try await client.call(.delete, "/v1/teams/alpha/tokens/\(id)", token: testAdminToken).status == .noContent)
            #expect(try await client.call(.delete, "/v1/teams/alpha/tokens/\(id)", token: testAdminToken).status == .notFound)
            #expect(try await client.call(.delete, "/v1/teams/alpha", token: testAdminToken).status == .noContent)
            let deadline = ContinuousClock.now + .seconds(6)
            var statuses: [HTTPResponse.Status] = []
            repeat {
                statuses = [
                    try await client.call(.get, "/v1/me", token: secret).status,
                    try await client.call(.get, "/v1/me", token: other).status,
                ]
                if statuses == [.unauthorized, .unauthorized] { break }
                try await Task.sleep(for: .milliseconds(250))
            } while ContinuousClock.now < deadline
            #expect(statuses == [.unauthorized, .unauthorized])
        }
    }

    @Test("an expired token is refused; expiry must be in the future; ids must exist")
    func expiry() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("alpha")
            let past = try await client.call(
                .post, "/v1/teams/alpha/tokens", token: testAdminToken,
                json: #"{"name":"old","role":"viewer","expiresAt":"2001-01-01T00:00:00Z"}"#)
            #expect(past.status == .unprocessableContent)
            #expect((past.json["errors"] as? [[String: String]])?.first?["field"] == "expiresAt")

            let (secret, id) = try await client.createToken(team: "alpha", role: "viewer")
            try await database.withOwner { client in
                try await client.query(
                    "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = \(UUID(uuidString: id)!)",
                    logger: TestDatabase.logger)
            }
            #expect(try await client.call(.get, "/v1/me", token: secret).status == .unauthorized)
            #expect(try await client.call(.delete, "/v1/teams/alpha/tokens/not-a-uuid", token: testAdminToken).status == .notFound)
            #expect(try await client.call(.delete, "/v1/tokens/\(id)", token: testAdminToken).status == .notFound,
                    "a team token is not a platform token")
        }
    }

    @Test("token lists page oldest first")
    func paging() async throws {
        try await withTestApp { client, _ in
            var ids: [String] = []
            for index in 0..<7 { ids.append(try await client.createToken(team: nil, role: "auditor", name: "t\(index)").id) }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.call(.get, "/v1/tokens?limit=3" + (cursor.map { "&cursor=\($0)" } ?? ""), token: testAdminToken)
                #expect(page.status == .ok)
                seen += page.items.compactMap { $0["id"] as? String }
                cursor = page.json["nextCursor"] as? String
            } while cursor != nil
            #expect(seen == ids)
        }
    }
}
