import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// The identity API without workers: validation, policy, quota, authorization, ETags and
/// idempotency. What the jobs do is in `IdentityWorkflowTests`.
@Suite("Identities API", .timeLimit(.minutes(5)))
struct IdentitiesAPITests {
    static func fields(_ response: TestResponse) -> [String: String] {
        let errors = response.json["errors"] as? [[String: Any]] ?? []
        return Dictionary(errors.map { ($0["field"] as? String ?? "", $0["message"] as? String ?? "") }, uniquingKeysWith: { a, b in a + "; " + b })
    }

    @Test("POST answers 202 pending with ETag and Location, writes the audit event and queues the job in one go")
    func create() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("payments", policy: devPolicy())
            let response = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken,
                                                 json: identityBody("orders-api"), headers: [.init("X-Request-Id")!: "req-create-1"])
            #expect(response.status == .accepted, "\(response.body)")
            #expect(response.json["state"] as? String == "pending")
            #expect(response.json["generation"] as? Int == 1)
            #expect(response.json["observedGeneration"] as? Int == 0)
            #expect(response.json.keys.contains("clientId") && response.json["clientId"] is NSNull, "clientId is null until provisioned")
            #expect(response.headers[.eTag] == "\"1\"")
            #expect(response.headers[.location] == "/v1/teams/payments/identities/orders-api")

            let jobs = try await client.call(.get, "/v1/jobs?team=payments", token: testAdminToken).items
            #expect(jobs.count == 1)
            #expect(jobs.first?["kind"] as? String == "identity.provision")
            #expect(jobs.first?["state"] as? String == "queued")
            #expect(jobs.first?["resource"] as? String == "/v1/teams/payments/identities/orders-api")
            #expect(jobs.first?["requestId"] as? String == "req-create-1")
            let audit = try await database.auditRows().last
            #expect(audit?.action == "identity.created")
            #expect(audit?.requestId == "req-create-1")

            let list = try await client.call(.get, "/v1/teams/payments/identities", token: testAdminToken)
            #expect(list.items.map { $0["name"] as? String } == ["orders-api"])
            #expect(list.items.first?["resourceId"] is NSNull)
            #expect(list.json["nextCursor"] is NSNull)
        }
    }

    @Test("validation names each field: Azure's name rules and the 24-character limit, location, tags, grants")
    func validation() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy())
            let long = String(repeating: "a", count: 25)
            var response = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken,
                                                 json: identityBody(long, extra: #","tags":{"podid-team":"x"}"#))
            #expect(response.status == .unprocessableContent)
            var fields = Self.fields(response)
            #expect(fields["name"]?.contains("24") == true, "\(fields)")
            #expect(fields["tags.podid-team"] != nil)

            response = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken,
                                             json: #"{"name":"ok-name","subscriptionId":"nope","resourceGroup":"bad/rg","location":"West Europe!","grants":[{"role":"Reader","scope":"subscriptions/x"}]}"#)
            #expect(response.status == .unprocessableContent)
            fields = Self.fields(response)
            #expect(Set(fields.keys).isSuperset(of: ["subscriptionId", "resourceGroup", "location", "grants[0].scope"]), "\(fields)")

            response = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken,
                                             json: #"{"subscriptionId":"\#(devSubscription)","resourceGroup":"podid-dev"}"#)
            #expect(response.status == .unprocessableContent)
            #expect(Self.fields(response)["name"] == "is required")

            response = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: #"{"name": 3}"#)
            #expect(response.status == .badRequest)
        }
    }

    @Test("the team's policy: placement and grants outside it are a 422 naming the field and what is allowed")
    func policy() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy())
            let owner = #"{"name":"greedy","subscriptionId":"\#(devSubscription)","resourceGroup":"other-rg","location":"westeurope","grants":[{"role":"Owner","scope":"/subscriptions/\#(devSubscription)"},{"role":"Reader","scope":"/subscriptions/\#(devSubscription)"}]}"#
            let response = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: owner)
            #expect(response.status == .unprocessableContent)
            let fields = Self.fields(response)
            #expect(fields["resourceGroup"]?.contains("allowed: podid-dev") == true, "\(fields)")
            #expect(fields["grants[0]"]?.contains("Owner on /subscriptions/\(devSubscription) is not allowed") == true, "\(fields)")
            #expect(fields["grants[0]"]?.contains("Reader on \(devGroupScope) and below") == true, "names what is allowed: \(fields)")
            #expect(fields["grants[1]"] != nil, "Reader on the whole subscription is above the allowed prefix")

            try await client.createTeam("empty")
            let none = try await client.call(.post, "/v1/teams/empty/identities", token: testAdminToken, json: identityBody("x-api"))
            #expect(none.status == .unprocessableContent)
            #expect(Self.fields(none)["subscriptionId"]?.contains("nothing (an admin sets the team's policy)") == true)
        }
    }

    @Test("quota: the identity over maxIdentities is a 409 naming the limit, also under concurrent creations")
    func quota() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy(max: 2))
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<5 {
                    group.addTask {
                        try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("id-\(index)")).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .accepted }.count == 2, "\(statuses)")
            #expect(statuses.filter { $0 == .conflict }.count == 3, "\(statuses)")
            let over = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("one-more"))
            #expect(over.status == .conflict)
            #expect((over.json["detail"] as? String)?.contains("maxIdentities is 2") == true, "\(over.body)")
        }
    }

    @Test("names: taken in the team, or the same Azure identity as another team's, is a 409")
    func conflicts() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy())
            try await client.createTeam("billing", policy: devPolicy())
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("shared")).status == .accepted)
            let again = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("shared"))
            #expect(again.status == .conflict)
            #expect((again.json["detail"] as? String)?.contains("already has an identity with this name") == true)
            let other = try await client.call(.post, "/v1/teams/billing/identities", token: testAdminToken, json: identityBody("SHARED"))
            #expect(other.status == .conflict)
            #expect((other.json["detail"] as? String)?.contains("Azure names ignore case") == true, "\(other.body)")
            let delete = try await client.call(.delete, "/v1/teams/payments", token: testAdminToken)
            #expect(delete.status == .conflict, "a team that owns identities cannot be deleted")
        }
    }

    @Test("roles: maintainers write, viewers read, other teams get 404, all audited")
    func roles() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("payments", policy: devPolicy())
            try await client.createTeam("billing", policy: devPolicy())
            let maintainer = try await client.createToken(team: "payments", role: "maintainer").secret
            let viewer = try await client.createToken(team: "payments", role: "viewer").secret
            let outsider = try await client.createToken(team: "billing", role: "maintainer").secret
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: maintainer, json: identityBody("api")).status == .accepted)
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: viewer, json: identityBody("api2")).status == .forbidden)
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api", token: viewer).status == .ok)
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api", token: outsider).status == .notFound)
            #expect(try await client.call(.get, "/v1/teams/payments/identities", token: outsider).status == .notFound)
            #expect(try await client.call(.delete, "/v1/teams/payments/identities/api", token: outsider).status == .notFound)
            #expect(try await client.call(.get, "/v1/teams/payments/identities/api").status == .unauthorized)

            // Jobs: a team sees its own only.
            let jobs = try await client.call(.get, "/v1/jobs", token: viewer).items
            #expect(jobs.count == 1)
            let id = jobs[0]["id"] as? String ?? ""
            #expect(try await client.call(.get, "/v1/jobs", token: outsider).items.isEmpty)
            #expect(try await client.call(.get, "/v1/jobs?team=payments", token: outsider).status == .notFound)
            #expect(try await client.call(.get, "/v1/jobs/\(id)", token: outsider).status == .notFound)
            #expect(try await client.call(.get, "/v1/jobs/\(id)", token: viewer).status == .ok)
            #expect(try await client.call(.post, "/v1/jobs/\(id)/retry", token: viewer).status == .forbidden)
            let retry = try await client.call(.post, "/v1/jobs/\(id)/retry", token: maintainer)
            #expect(retry.status == .conflict, "a queued job is not retried: \(retry.body)")
            #expect(try await client.call(.get, "/v1/jobs/not-a-uuid", token: maintainer).status == .notFound)

            let denials = try await database.auditRows().filter { $0.outcome == "denied" }
            #expect(denials.count >= 6)
        }
    }

    @Test("PATCH and PUT: 202 and generation + 1 when something changes, 200 when nothing does, 412 on a stale If-Match")
    func changes() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("payments", policy: devPolicy())
            #expect(try await client.call(.put, "/v1/teams/payments/identities/api", token: testAdminToken, json: identityBody("api")).status == .accepted)
            var response = try await client.call(.put, "/v1/teams/payments/identities/api", token: testAdminToken, json: identityBody("api"))
            #expect(response.status == .ok, "an unchanged PUT changes nothing")
            #expect(response.headers[.eTag] == "\"1\"")

            response = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken,
                                             json: #"{"tags":{"cost-center":"42"}}"#, headers: [.ifMatch: "\"1\""])
            #expect(response.status == .accepted)
            #expect(response.json["generation"] as? Int == 2)
            #expect(response.headers[.eTag] == "\"2\"")
            #expect((response.json["tags"] as? [String: String]) == ["cost-center": "42"])

            response = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken,
                                             json: #"{"grants":[]}"#, headers: [.ifMatch: "\"1\""])
            #expect(response.status == .preconditionFailed)

            // Two concurrent PATCHes based on the same ETag: exactly one wins.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for tag in ["a", "b"] {
                    group.addTask {
                        try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken,
                                              json: #"{"tags":{"owner":"\#(tag)"}}"#, headers: [.ifMatch: "\"2\""]).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.sorted { $0.code < $1.code } == [.accepted, .preconditionFailed], "\(statuses)")

            // What cannot change, and what policy forbids.
            response = try await client.call(.put, "/v1/teams/payments/identities/api", token: testAdminToken,
                                             json: identityBody("api").replacingOccurrences(of: "westeurope", with: "northeurope"))
            #expect(response.status == .unprocessableContent)
            #expect(Self.fields(response)["location"]?.contains("cannot change") == true)
            response = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken,
                                             json: #"{"grants":[{"role":"Contributor","scope":"\#(devGroupScope)"}]}"#)
            #expect(response.status == .unprocessableContent)
            response = try await client.call(.put, "/v1/teams/payments/identities/other", token: testAdminToken, json: identityBody("api"))
            #expect(response.status == .unprocessableContent, "the body names another identity")

            // A burst of changes while the job waits coalesces into one queued job.
            let jobs = try await client.call(.get, "/v1/jobs?team=payments&state=queued", token: testAdminToken).items
            #expect(jobs.count == 1, "\(jobs)")
            let updates = try await database.auditRows().filter { $0.action == "identity.updated" }
            #expect(updates.count == 2)
        }
    }

    @Test("DELETE answers 202 deleting, cancels queued work, and a second DELETE answers the same")
    func delete() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy())
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api")).status == .accepted)
            #expect(try await client.call(.delete, "/v1/teams/payments/identities/api", token: testAdminToken,
                                          headers: [.ifMatch: "\"7\""]).status == .preconditionFailed)
            let response = try await client.call(.delete, "/v1/teams/payments/identities/api", token: testAdminToken)
            #expect(response.status == .accepted)
            #expect(response.json["state"] as? String == "deleting")
            #expect(try await client.call(.delete, "/v1/teams/payments/identities/api", token: testAdminToken).status == .accepted)
            let patch = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken, json: #"{"tags":{}}"#)
            #expect(patch.status == .conflict, "\(patch.body)")
            let jobs = try await client.call(.get, "/v1/jobs?team=payments", token: testAdminToken).items
            #expect(Set(jobs.map { "\($0["kind"] ?? "") \($0["state"] ?? "")" }) == ["identity.provision cancelled", "identity.delete queued"])
            let cancelled = try await client.call(.get, "/v1/jobs?team=payments&state=cancelled&kind=identity.provision", token: testAdminToken).items
            #expect(cancelled.count == 1)
        }
    }

    @Test("Idempotency-Key: a repeated POST replays the first 202 and creates nothing new")
    func idempotency() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy())
            let key: HTTPFields = [.init("Idempotency-Key")!: "create-api-1"]
            let first = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"), headers: key)
            let second = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"), headers: key)
            #expect(first.status == .accepted)
            #expect(second.status == .accepted)
            #expect(first.body == second.body)
            #expect(try await client.call(.get, "/v1/jobs", token: testAdminToken).items.count == 1)
        }
    }

    @Test("jobs list pages newest first with a stable cursor")
    func jobPaging() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("payments", policy: devPolicy(max: 20))
            for index in 0..<7 {
                #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("id-\(index)")).status == .accepted)
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let path = "/v1/jobs?limit=3" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await client.call(.get, path, token: testAdminToken)
                #expect(page.status == .ok)
                seen += page.items.compactMap { $0["resource"] as? String }
                cursor = page.json["nextCursor"] as? String
            } while cursor != nil
            #expect(seen == (0..<7).reversed().map { "/v1/teams/payments/identities/id-\($0)" })
            #expect(try await client.call(.get, "/v1/jobs?cursor=bogus", token: testAdminToken).status == .badRequest)
        }
    }
}
