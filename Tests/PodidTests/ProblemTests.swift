import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Every error class answers application/problem+json with type, title, status, detail and requestId.
@Suite("Problem responses", .timeLimit(.minutes(5)))
struct ProblemTests {
    static func expectProblem(_ response: TestResponse, _ status: Int, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status.code == status, "\(context): \(response.body)", sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/problem+json", "\(context)", sourceLocation: sourceLocation)
        let json = response.json
        #expect((json["type"] as? String)?.hasPrefix("urn:podid:problem:") == true, "\(context)", sourceLocation: sourceLocation)
        #expect(json["title"] is String, "\(context)", sourceLocation: sourceLocation)
        #expect(json["status"] as? Int == status, "\(context)", sourceLocation: sourceLocation)
        #expect((json["detail"] as? String)?.isEmpty == false, "\(context)", sourceLocation: sourceLocation)
        #expect(json["requestId"] as? String == response.headers[.init("X-Request-Id")!], "\(context)", sourceLocation: sourceLocation)
        #expect(!response.body.contains("PSQLError") && !response.body.contains("SELECT "), "\(context)", sourceLocation: sourceLocation)
    }

    @Test("each error class is problem+json")
    func errorClasses() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("alpha")
            let viewer = try await client.createToken(team: "alpha", role: "viewer").secret

            Self.expectProblem(try await client.call(.get, "/v1/nowhere", token: testAdminToken), 404, "unknown route")
            Self.expectProblem(try await client.call(.get, "/nowhere"), 404, "unknown route without a token")
            let wrongMethod = try await client.call(.put, "/v1/teams", token: testAdminToken, json: "{}")
            Self.expectProblem(wrongMethod, 405, "wrong method")
            #expect(wrongMethod.headers[.allow]?.contains("GET") == true)
            #expect(wrongMethod.headers[.allow]?.contains("POST") == true)
            Self.expectProblem(try await client.call(.delete, "/v1/teams/alpha/tokens", token: testAdminToken), 405, "wrong method on a templated path")

            Self.expectProblem(try await client.call(.post, "/v1/teams", token: testAdminToken, json: "{not json"), 400, "malformed JSON")
            let wrongType = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":42}"#)
            Self.expectProblem(wrongType, 400, "wrong JSON type")
            #expect((wrongType.json["errors"] as? [[String: String]])?.first?["field"] == "name")
            let missing = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"displayName":"x"}"#)
            Self.expectProblem(missing, 400, "missing field")
            #expect((missing.json["errors"] as? [[String: String]])?.first?["field"] == "name")
            Self.expectProblem(try await client.call(.post, "/v1/teams", token: testAdminToken, json: "{}", headers: [.contentType: "text/plain"]), 415, "wrong content type")

            Self.expectProblem(try await client.call(.get, "/v1/teams"), 401, "no token")
            Self.expectProblem(try await client.call(.get, "/v1/teams", headers: [.authorization: "Basic abc"]), 401, "not a bearer token")
            Self.expectProblem(try await client.call(.post, "/v1/teams", token: viewer, json: #"{"name":"x"}"#), 403, "viewer writing")
            Self.expectProblem(try await client.call(.get, "/v1/teams/zeta", token: testAdminToken), 404, "no such team")
            Self.expectProblem(try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha"}"#), 409, "name taken")
            Self.expectProblem(try await client.call(.patch, "/v1/teams/alpha", token: testAdminToken, json: "{}", headers: [.ifMatch: "\"9\""]), 412, "stale If-Match")
            Self.expectProblem(try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"A"}"#), 422, "validation")

            let big = #"{"name":"big","displayName":""# + String(repeating: "x", count: (1 << 20) + 10) + #""}"#
            Self.expectProblem(try await client.call(.post, "/v1/teams", token: testAdminToken, json: big), 413, "body over 1 MiB")
            // The same without Content-Length: the limit holds while streaming too.
            let chunked = try await client.execute(
                uri: "/v1/teams", method: .post,
                headers: [.authorization: "Bearer \(testAdminToken)", .contentType: "application/json", .transferEncoding: "chunked"],
                body: ByteBuffer(string: big)
            ) { TestResponse(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
            Self.expectProblem(chunked, 413, "chunked body over 1 MiB")
        }
    }

    @Test("a NUL character in a value is a 400 that says so, not a database error")
    func nulCharacters() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("alpha")
            // Names reach PostgreSQL as they came; PostgreSQL cannot store U+0000.
            let answer = try await client.call(.get, "/v1/clusters/lo%00cal", token: testAdminToken)
            Self.expectProblem(answer, 400, "NUL in a name")
            #expect((answer.json["detail"] as? String)?.contains("NUL") == true)
            let binding = try await client.call(.post, "/v1/teams/alpha/identities/api/bindings", token: testAdminToken,
                                                json: #"{"name":"web","cluster":"lo\u0000cal"}"#)
            #expect(binding.status.code < 500, "a NUL in a field: \(binding.status)")
        }
    }

    @Test("X-Request-Id is echoed when sane and generated otherwise")
    func requestIds() async throws {
        try await withTestApp { client, _ in
            let echoed = try await client.call(.get, "/healthz", headers: [.init("X-Request-Id")!: "abc-123"])
            #expect(echoed.headers[.init("X-Request-Id")!] == "abc-123")
            let generated = try await client.call(.get, "/healthz")
            #expect(generated.headers[.init("X-Request-Id")!]?.count == 36)
            let insane = try await client.call(.get, "/healthz", headers: [.init("X-Request-Id")!: String(repeating: "a", count: 200)])
            #expect(insane.headers[.init("X-Request-Id")!]?.count == 36)
        }
    }

    @Test("a null member the contract declares is a 400 naming it, also inside policy and grants; undeclared ones are ignored")
    func nullMembers() async throws {
        try await withTestApp { client, _ in
            let top = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha","displayName":null}"#)
            Self.expectProblem(top, 400, "null displayName")
            #expect((top.json["errors"] as? [[String: String]])?.first?["field"] == "displayName")
            let nested = try await client.call(.post, "/v1/teams", token: testAdminToken,
                                               json: #"{"name":"alpha","policy":{"grants":[{"role":"Reader","scopePrefix":null}]}}"#)
            Self.expectProblem(nested, 400, "null scopePrefix")
            #expect((nested.json["errors"] as? [[String: String]])?.first?["field"] == "policy.grants[0].scopePrefix")
            #expect(try await client.call(.get, "/v1/teams/alpha", token: testAdminToken).status == .notFound, "nothing was created")
            let undeclared = try await client.call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"alpha","note":null}"#)
            #expect(undeclared.status == .created, "\(undeclared.body)")
        }
    }

    @Test("a time with any offset RFC 3339 allows is read; one that is no RFC 3339 time is a 400 that says so")
    func rfc3339Times() async throws {
        try await withTestApp { client, _ in
            let far = try await client.call(.post, "/v1/tokens", token: testAdminToken,
                                            json: #"{"name":"far","role":"auditor","expiresAt":"2999-05-10T04:54:55+22:52"}"#)
            #expect(far.status == .created, "\(far.body)")
            #expect(far.json["expiresAt"] as? String == "2999-05-09T06:02:55.000Z")
            let bad = try await client.call(.post, "/v1/tokens", token: testAdminToken, json: #"{"name":"bad","role":"auditor","expiresAt":""}"#)
            Self.expectProblem(bad, 400, "empty time")
            #expect((bad.json["detail"] as? String)?.contains("not RFC 3339") == true, "\(bad.body)")
        }
    }
}
