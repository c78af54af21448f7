import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Every route that exists, called by every kind of caller: the status each gets, and the audit
/// event each success or authenticated denial leaves.
@Suite("Authentication and roles", .timeLimit(.minutes(5)))
struct AuthMatrixTests {
    struct Case: Sendable {
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        /// Expected status per caller; callers not listed are not tried on this route.
        var expected: [String: Int]
        /// The audit action a success writes, if the route changes anything.
        var action: String?
    }

    @Test("each route answers each role as openapi.yaml's summaries say, and audits successes and denials")
    func matrix() async throws {
        // Every denial written on its own: the matrix checks each one (folding has its own test,
        // TenantIsolationTests.deniedLoop).
        try await withTestApp(configure: { $0.auditDenialWindow = 0 }) { client, database in
            try await client.createTeam("alpha")
            try await client.createTeam("beta")
            var tokens: [String: String] = ["admin": testAdminToken]
            tokens["auditor"] = try await client.createToken(team: nil, role: "auditor").secret
            tokens["alpha-maintainer"] = try await client.createToken(team: "alpha", role: "maintainer").secret
            tokens["alpha-viewer"] = try await client.createToken(team: "alpha", role: "viewer").secret
            tokens["beta-maintainer"] = try await client.createToken(team: "beta", role: "maintainer").secret
            tokens["beta-viewer"] = try await client.createToken(team: "beta", role: "viewer").secret
            let victimTeamToken = try await client.createToken(team: "alpha", role: "viewer", name: "victim").id
            let victimPlatformToken = try await client.createToken(team: nil, role: "auditor", name: "victim").id

            let teamRoles = ["auditor", "alpha-maintainer", "alpha-viewer", "beta-maintainer", "beta-viewer"]
            let cases: [Case] = [
                Case(method: .get, path: "/v1/me", expected: Dictionary(uniqueKeysWithValues: (teamRoles + ["admin"]).map { ($0, 200) })),
                Case(method: .get, path: "/v1/teams", expected: Dictionary(uniqueKeysWithValues: (teamRoles + ["admin"]).map { ($0, 200) })),
                Case(method: .post, path: "/v1/teams", body: #"{"name":"gamma"}"#,
                     expected: ["auditor": 403, "alpha-maintainer": 403, "alpha-viewer": 403, "beta-viewer": 403, "admin": 201],
                     action: "team.created"),
                Case(method: .get, path: "/v1/teams/alpha",
                     expected: ["admin": 200, "auditor": 200, "alpha-maintainer": 200, "alpha-viewer": 200,
                                "beta-maintainer": 404, "beta-viewer": 404]),
                Case(method: .patch, path: "/v1/teams/alpha", body: #"{"displayName":"Alpha"}"#,
                     expected: ["auditor": 403, "alpha-maintainer": 403, "alpha-viewer": 403, "beta-maintainer": 404,
                                "beta-viewer": 404, "admin": 200],
                     action: "team.updated"),
                Case(method: .post, path: "/v1/teams/alpha/policy/enforce",
                     expected: ["auditor": 403, "alpha-maintainer": 403, "alpha-viewer": 403, "beta-maintainer": 404,
                                "beta-viewer": 404, "admin": 200],
                     action: "team.policy.enforced"),
                Case(method: .get, path: "/v1/teams/alpha/tokens",
                     expected: ["admin": 200, "alpha-maintainer": 200, "alpha-viewer": 403, "auditor": 403,
                                "beta-maintainer": 404, "beta-viewer": 404]),
                Case(method: .post, path: "/v1/teams/alpha/tokens", body: #"{"name":"ci","role":"viewer"}"#,
                     expected: ["alpha-viewer": 403, "auditor": 403, "beta-maintainer": 404, "beta-viewer": 404,
                                "alpha-maintainer": 201],
                     action: "token.created"),
                Case(method: .delete, path: "/v1/teams/alpha/tokens/\(victimTeamToken)",
                     expected: ["alpha-viewer": 403, "auditor": 403, "beta-maintainer": 404, "beta-viewer": 404,
                                "alpha-maintainer": 204],
                     action: "token.deleted"),
                Case(method: .get, path: "/v1/tokens",
                     expected: ["auditor": 403, "alpha-maintainer": 403, "alpha-viewer": 403, "admin": 200]),
                Case(method: .post, path: "/v1/tokens", body: #"{"name":"dash","role":"auditor"}"#,
                     expected: ["auditor": 403, "alpha-maintainer": 403, "beta-viewer": 403, "admin": 201],
                     action: "token.created"),
                Case(method: .delete, path: "/v1/tokens/\(victimPlatformToken)",
                     expected: ["auditor": 403, "alpha-maintainer": 403, "alpha-viewer": 403, "admin": 204],
                     action: "token.deleted"),
                Case(method: .delete, path: "/v1/teams/beta",
                     expected: ["auditor": 403, "beta-maintainer": 403, "beta-viewer": 403, "alpha-maintainer": 404,
                                "alpha-viewer": 404, "admin": 204],
                     action: "team.deleted"),
            ]

            for test in cases {
                // Without a token, or with an unknown one: 401 and no audit event.
                let before = try await database.auditRows().count
                for token in [nil, "podid_not_a_real_token"] as [String?] {
                    let response = try await client.call(test.method, test.path, token: token, json: test.body)
                    #expect(response.status.code == 401, "\(test.method) \(test.path) with token \(token ?? "none")")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                }
                #expect(try await database.auditRows().count == before, "401s are not audited")

                // Successes run last, after the denials (a delete can only succeed once).
                let order = test.expected.sorted { ($0.value < 300 ? 1 : 0, $0.key) < ($1.value < 300 ? 1 : 0, $1.key) }
                for (role, status) in order {
                    let countBefore = try await database.auditRows().count
                    let response = try await client.call(test.method, test.path, token: tokens[role], json: test.body)
                    #expect(response.status.code == status, "\(test.method) \(test.path) as \(role): \(response.body)")
                    let rows = try await database.auditRows()
                    let added = Array(rows.dropFirst(countBefore))
                    let requestId = response.headers[.init("X-Request-Id")!]
                    if status == 403 || status == 404 {
                        #expect(added.map(\.action) == ["auth.denied"], "\(test.method) \(test.path) as \(role)")
                        #expect(added.first?.outcome == "denied")
                        #expect(added.first?.requestId == requestId)
                        #expect(response.headers[.contentType] == "application/problem+json")
                    } else if test.method != .get, let action = test.action {
                        #expect(added.map(\.action) == [action], "\(test.method) \(test.path) as \(role)")
                        #expect(added.first?.outcome == "success")
                        #expect(added.first?.requestId == requestId)
                    } else {
                        #expect(added.isEmpty, "reads are not audited: \(test.method) \(test.path)")
                    }
                }
            }

            // A team token lists only its own team; /v1/me tells who the caller is.
            let listed = try await client.call(.get, "/v1/teams", token: tokens["alpha-viewer"])
            #expect(listed.items.compactMap { $0["name"] as? String } == ["alpha"])
            let me = try await client.call(.get, "/v1/me", token: tokens["alpha-viewer"])
            #expect(me.json["role"] as? String == "viewer")
            #expect(me.json["team"] as? String == "alpha")
            let adminMe = try await client.call(.get, "/v1/me", token: testAdminToken)
            #expect(adminMe.json["role"] as? String == "admin")
            #expect(adminMe.json["team"] is NSNull)
        }
    }

    @Test("a maintainer cannot mint platform roles; a team token's role must be maintainer or viewer")
    func roleEscalation() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("alpha")
            let maintainer = try await client.createToken(team: "alpha", role: "maintainer").secret
            let escalate = try await client.call(
                .post, "/v1/teams/alpha/tokens", token: maintainer, json: #"{"name":"x","role":"admin"}"#)
            #expect(escalate.status == .unprocessableContent)
            #expect((escalate.json["errors"] as? [[String: String]])?.first?["field"] == "role")
            let platform = try await client.call(.post, "/v1/tokens", token: testAdminToken, json: #"{"name":"x","role":"viewer"}"#)
            #expect(platform.status == .unprocessableContent)
            let unknownRole = try await client.call(.post, "/v1/tokens", token: testAdminToken, json: #"{"name":"x","role":"root"}"#)
            #expect(unknownRole.status == .badRequest)
            #expect((unknownRole.json["errors"] as? [[String: String]])?.first?["field"] == "role")
        }
    }
}
