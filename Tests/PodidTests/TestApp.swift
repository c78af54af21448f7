import App
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Prometheus
import Testing

/// The bootstrap admin token every test app accepts.
let testAdminToken = "podid_test_admin_token_0123456789abcdefghijklmnop"

/// Runs `body` against a podid app on its own migrated database, serving as the runtime role.
func withTestApp<R: Sendable>(
    live: Bool = false, configure: (inout PodidConfig) -> Void = { _ in }, _ body: @Sendable (any TestClientProtocol, TestDatabase) async throws -> R
) async throws -> R {
    let database = try await TestDatabase.make()
    var config = PodidConfig()
    config.databaseConnectWait = TestDatabase.connectionWaitSeconds
    config.clusterCredentialDirectories = testCredentialDirectories
    config.databaseURL = database.runtimeURLText
    config.migrationDatabaseURL = database.ownerURLText
    config.adminToken = testAdminToken
    config.httpPort = 0
    // No workers: these tests talk to no Azure (tests with workers point them at the simulator).
    config.workers = 0
    config.rateLimitPerToken = 0
    config.rateLimitPerTeam = 0
    // The test client keeps one connection for a whole test: no idle timeout unless a test sets one.
    config.httpIdleTimeout = 0
    configure(&config)
    let app = try PodidApplication.build(
        config: config, registry: PrometheusCollectorRegistry(), logger: Logger(label: "podid.test"))
    do {
        let result = try await app.test(live ? .live : .router) { client in
            try await body(client, database)
        }
        await database.drop()
        return result
    } catch {
        await database.drop()
        throw error
    }
}

/// A decoded response.
struct TestResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: String

    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    /// The body's `items` as JSON objects.
    var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
}

extension TestClientProtocol {
    /// Sends a request with an optional bearer token and JSON body.
    func call(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await execute(uri: path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }) { response in
            TestResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// Creates a team as the admin; returns its name.
    @discardableResult
    func createTeam(_ name: String, policy: String = "{}") async throws -> String {
        let response = try await call(.post, "/v1/teams", token: testAdminToken, json: #"{"name":"\#(name)","policy":\#(policy)}"#)
        #expect(response.status == .created, "creating team \(name): \(response.body)")
        return name
    }

    /// Creates a token as the admin; returns its secret and id.
    func createToken(team: String?, role: String, name: String = "t") async throws -> (secret: String, id: String) {
        let path = team.map { "/v1/teams/\($0)/tokens" } ?? "/v1/tokens"
        let response = try await call(.post, path, token: testAdminToken, json: #"{"name":"\#(name)","role":"\#(role)"}"#)
        #expect(response.status == .created, "creating token: \(response.body)")
        return (response.json["token"] as? String ?? "", response.json["id"] as? String ?? "")
    }
}

/// Rows of an audit query, as the owner sees them.
struct AuditRow: Sendable, Equatable {
    var action: String
    var outcome: String
    var actor: String
    var team: String?
    var resourceName: String?
    var requestId: String?
}

extension TestDatabase {
    /// Every audit event, oldest first.
    func auditRows() async throws -> [AuditRow] {
        try await withOwner { client in
            var rows: [AuditRow] = []
            let sequence = try await client.query(
                "SELECT action, outcome, actor, team, resource_name, request_id FROM audit_events ORDER BY id",
                logger: TestDatabase.logger)
            for try await (action, outcome, actor, team, name, requestId) in sequence.decode(
                (String, String, String, String?, String?, String?).self)
            {
                rows.append(AuditRow(action: action, outcome: outcome, actor: actor, team: team, resourceName: name, requestId: requestId))
            }
            return rows
        }
    }
}
