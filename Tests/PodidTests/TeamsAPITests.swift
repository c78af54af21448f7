import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("Teams API", .timeLimit(.minutes(5)))
struct TeamsAPITests {
    static let subscription = "00000000-0000-0000-0000-000000000000"

    @Test("create, read, update and delete a team with its policy")
    func crud() async throws {
        try await withTestApp { client, _ in
            let policy = """
                {"subscriptions":["\(Self.subscription)"],"resourceGroups":["podid-dev"],
                 "grants":[{"role":"Reader","scopePrefix":"/subscriptions/\(Self.subscription)/resourceGroups/podid-dev"}],
                 "clusters":["local"],"namespaces":["payments"],"maxIdentities":5}
                """
            let created = try await client.call(
                .post, "/v1/teams", token: testAdminToken,
                json: #"{"name":"payments","displayName":"Payments","contacts":["pay@example.com"],"policy":\#(policy)}"#)
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/v1/teams/payments")
            #expect(created.headers[.eTag] == "\"1\"")
            #expect(created.json["displayName"] as? String == "Payments")
            let createdPolicy = created.json["policy"] as? [String: Any]
            #expect(createdPolicy?["maxIdentities"] as? Int == 5)
            #expect((createdPolicy?["grants"] as? [[String: Any]])?.first?["role"] as? String == "Reader")

            let read = try await client.call(.get, "/v1/teams/payments", token: testAdminToken)
            #expect(read.status == .ok)
            #expect(read.json["contacts"] as? [String] == ["pay@example.com"])
            #expect((read.json["createdAt"] as? String)?.contains(".") == true, "timestamps keep fractional seconds")

            let patched = try await client.call(
                .patch, "/v1/teams/payments", token: testAdminToken,
                json: #"{"displayName":"Payments Platform","policy":{"maxIdentities":7}}"#,
                headers: [.ifMatch: "\"1\""])
            #expect(patched.status == .ok)
            #expect(patched.headers[.eTag] == "\"2\"")
            let patchedPolicy = patched.json["policy"] as? [String: Any]
            #expect(patchedPolicy?["maxIdentities"] as? Int == 7)
            #expect(patchedPolicy?["clusters"] as? [String] == ["local"], "absent policy keys are kept")

            let deleted = try await client.call(.delete, "/v1/teams/payments", token: testAdminToken)
            #expect(deleted.status == .noContent)
            #expect(try await client.call(.get, "/v1/teams/payments", token: testAdminToken).status == .notFound)
        }
    }

    @Test("a new team without a policy allows nothing and has the default quota")
    func defaults() async throws {
        try await withTestApp { client, _ in
            let created = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"ops"}"#)
            #expect(created.status == .created)
            #expect(created.json["displayName"] as? String == "ops")
            let policy = created.json["policy"] as? [String: Any]
            #expect(policy?["subscriptions"] as? [String] == [])
            #expect(policy?["grants"] as? [Any] != nil)
            #expect(policy?["maxIdentities"] as? Int == 20)
        }
    }

    @Test("invalid names and policies are 422 naming each field")
    func validation() async throws {
        try await withTestApp { client, database in
            for name in ["Payments", "-pay", "pay-", "pay_ments", "", String(repeating: "a", count: 41)] {
                let response = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"\#(name)"}"#)
                #expect(response.status == .unprocessableContent, "name '\(name)'")
                #expect((response.json["errors"] as? [[String: String]])?.first?["field"] == "name")
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            #expect(try await client.call(.post, "/v1/teams", token: testAdminToken,
                                          json: #"{"name":"\#(String(repeating: "a", count: 40))"}"#).status == .created)

            let bad = try await client.call(
                .post, "/v1/teams", token: testAdminToken,
                json: """
                    {"name":"team-a","contacts":["ok",""],"policy":{"subscriptions":["not-a-guid"],
                     "resourceGroups":["bad/group"],"grants":[{"role":"Reader","scopePrefix":"subscriptions/x"}],
                     "clusters":["Local"],"namespaces":["ns","ns"],"maxIdentities":-1}}
                    """)
            #expect(bad.status == .unprocessableContent)
            let fields = Set((bad.json["errors"] as? [[String: String]] ?? []).compactMap { $0["field"] })
            #expect(fields == [
                "contacts[1]", "policy.subscriptions[0]", "policy.resourceGroups[0]", "policy.grants[0].scopePrefix",
                "policy.clusters[0]", "policy.namespaces[1]", "policy.maxIdentities",
            ])
            #expect(try await database.auditRows().filter { $0.action == "team.created" }.count == 1)
        }
    }

    @Test("a taken name is 409; a stale If-Match is 412; an unusable If-Match is 412")
    func conflicts() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments")
            let again = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"payments"}"#)
            #expect(again.status == .conflict)
            #expect((again.json["detail"] as? String)?.contains("already exists") == true)

            _ = try await client.call(.patch, "/v1/teams/payments", token: testAdminToken, json: #"{"displayName":"A"}"#)
            let stale = try await client.call(
                .patch, "/v1/teams/payments", token: testAdminToken, json: #"{"displayName":"B"}"#, headers: [.ifMatch: "\"1\""])
            #expect(stale.status == .preconditionFailed)
            let staleDelete = try await client.call(.delete, "/v1/teams/payments", token: testAdminToken, headers: [.ifMatch: "\"1\""])
            #expect(staleDelete.status == .preconditionFailed)
            let garbage = try await client.call(
                .patch, "/v1/teams/payments", token: testAdminToken, json: #"{"displayName":"B"}"#, headers: [.ifMatch: "yesterday"])
            #expect(garbage.status == .preconditionFailed)
            let current = try await client.call(.get, "/v1/teams/payments", token: testAdminToken)
            #expect(current.json["displayName"] as? String == "A")
            #expect(try await client.call(.delete, "/v1/teams/payments", token: testAdminToken,
                                          headers: [.ifMatch: current.headers[.eTag]!]).status == .noContent)
        }
    }

    @Test("concurrent PATCHes with the same If-Match: exactly one wins, the others get 412")
    func concurrentPatches() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments")
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        try await client.call(
                            .patch, "/v1/teams/payments", token: testAdminToken, json: #"{"displayName":"v\#(index)"}"#,
                            headers: [.ifMatch: "\"1\""]
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.filter { $0 == .preconditionFailed }.count == 5)
        }
    }

    @Test("pages by name with an opaque cursor; concurrent inserts never duplicate or skip existing teams")
    func pagination() async throws {
        try await withTestApp { client, _ in
            let existing = (0..<25).map { String(format: "team-%02d", $0 * 2) }
            for name in existing { try await client.createTeam(name) }
            // Insert more teams (interleaved names) while paging through.
            let inserter = Task {
                for index in 0..<25 { try await client.createTeam(String(format: "team-%02d", index * 2 + 1)) }
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let path = "/v1/teams?limit=4" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await client.call(.get, path, token: testAdminToken)
                #expect(page.status == .ok)
                seen += page.items.compactMap { $0["name"] as? String }
                cursor = page.json["nextCursor"] as? String
            } while cursor != nil
            try await inserter.value
            #expect(seen == seen.sorted(), "pages come in name order")
            #expect(Set(seen).count == seen.count, "no team appears twice")
            #expect(Set(existing).isSubset(of: Set(seen)), "no team that existed before paging is skipped")

            let bad = try await client.call(.get, "/v1/teams?limit=0", token: testAdminToken)
            #expect(bad.status == .badRequest)
            #expect((bad.json["errors"] as? [[String: String]])?.first?["field"] == "limit")
            let tooMany = try await client.call(.get, "/v1/teams?limit=501", token: testAdminToken)
            #expect(tooMany.status == .badRequest)
            let badCursor = try await client.call(.get, "/v1/teams?cursor=%21%21", token: testAdminToken)
            #expect(badCursor.status == .badRequest)
            #expect((badCursor.json["errors"] as? [[String: String]])?.first?["field"] == "cursor")
            let all = try await client.call(.get, "/v1/teams?limit=500", token: testAdminToken)
            #expect(all.items.count == 50)
            #expect(all.json["nextCursor"] is NSNull)
        }
    }
}
