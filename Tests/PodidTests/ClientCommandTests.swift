import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// The client commands against a running server: apply (plan, idempotence, --wait, --prune,
/// --dry-run), get, login, and errors as one line with exit codes.
@Suite("Client commands", .timeLimit(.minutes(5)))
struct ClientCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func podid(_ arguments: [String], port: Int, token: String = testAdminToken, home: String = NSTemporaryDirectory()) async throws -> (Int32, String) {
        try await runProgram(DevCommandTests.binary, arguments,
                             environment: ["PATH": "/usr/bin:/bin", "HOME": home, "PODID_SERVER": "http://127.0.0.1:\(port)", "PODID_TOKEN": token],
                             timeout: .seconds(120))
    }

    @Test("apply onboards a team with two identities and three bindings to ready; again is all unchanged; prune and dry-run")
    func apply() async throws {
        try await withWorkerApp(live: true) { client, _, sims in
            let port = try #require(client.port)
            try await client.registerSimCluster(sims)
            let onboarding = Self.root.appendingPathComponent("docs/examples/onboarding.yaml").path

            let (dryStatus, dry) = try await Self.podid(["apply", "-f", onboarding, "--dry-run"], port: port)
            #expect(dryStatus == 0, "\(dry)")
            #expect(dry.contains("create    team payments") && dry.contains("dry run: 6 change(s) planned, none made"), "\(dry)")
            #expect(try await client.call(.get, "/v1/teams/payments", token: testAdminToken).status == .notFound, "a dry run changes nothing")

            let (status, output) = try await Self.podid(["apply", "-f", onboarding, "--wait"], port: port)
            #expect(status == 0, "\(output)")
            #expect(output.contains("create    identity payments/orders-api") && output.contains("create    binding payments/invoices/batch"))
            #expect(output.contains("all ready"), "\(output)")
            let identities = try await client.call(.get, "/v1/teams/payments/identities", token: testAdminToken).items
            #expect(identities.count == 2 && identities.allSatisfy { $0["state"] as? String == "ready" })

            let (againStatus, again) = try await Self.podid(["apply", "-f", onboarding], port: port)
            #expect(againStatus == 0)
            let planned = again.split(separator: "\n").filter { !$0.hasPrefix("applied:") }
            #expect(planned.count == 6 && planned.allSatisfy { $0.hasPrefix("unchanged") }, "\(again)")
            #expect(again.contains("applied: 0 change(s)"))

            // A smaller file with --prune: one identity goes, one binding goes, one grant changes.
            let small = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("small-\(UUID().uuidString).yaml")
            defer { try? FileManager.default.removeItem(at: small) }
            try """
                team: payments
                identities:
                  - name: orders-api
                    subscriptionId: "00000000-0000-0000-0000-000000000000"
                    resourceGroup: podid-dev
                    location: westeurope
                    tags: {app: orders, cost-center: "4711"}
                    grants: []
                    bindings:
                      - {name: api, cluster: local, selector: payments-orders}
                """.write(to: small, atomically: true, encoding: .utf8)
            let (pruneStatus, pruned) = try await Self.podid(["apply", "-f", small.path, "--prune", "--wait"], port: port)
            #expect(pruneStatus == 0, "\(pruned)")
            #expect(pruned.contains("update    identity payments/orders-api (grants)"), "\(pruned)")
            #expect(pruned.contains("delete    binding payments/orders-api/worker") && pruned.contains("delete    identity payments/invoices (and its bindings)"))
            #expect(try await client.waitForIdentityGone("payments", "invoices"))
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/payments/identities/orders-api/bindings/worker", token: testAdminToken).status == .notFound
            })

            // get, as a table and as JSON.
            let (_, table) = try await Self.podid(["get", "identities", "--team", "payments"], port: port)
            #expect(table.hasPrefix("NAME") && table.contains("orders-api"), "\(table)")
            let (_, json) = try await Self.podid(["get", "bindings", "--team", "payments", "--identity", "orders-api", "-o", "json"], port: port)
            let bindings = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [[String: Any]] ?? []
            #expect(bindings.map { $0["name"] as? String } == ["api"], "\(json)")
        }
    }

    @Test("apply under a tight rate limit waits as Retry-After says and finishes")
    func applyRateLimited() async throws {
        // One request a second, bursts of ten: the onboarding takes more than ten calls.
        try await withWorkerApp(live: true, configure: { $0.rateLimitPerToken = 1 }) { client, _, sims in
            let port = try #require(client.port)
            try await client.registerSimCluster(sims)
            let onboarding = Self.root.appendingPathComponent("docs/examples/onboarding.yaml").path
            // An admin token of the API (the bootstrap token is never limited).
            let admin = try await client.createToken(team: nil, role: "admin", name: "onboarding").secret
            let (status, output) = try await Self.podid(["apply", "-f", onboarding], port: port, token: admin)
            #expect(status == 0, "\(output)")
            let (againStatus, again) = try await Self.podid(["apply", "-f", onboarding], port: port, token: admin)
            #expect(againStatus == 0, "\(again)")
            #expect(again.split(separator: "\n").filter { !$0.hasPrefix("applied:") }.allSatisfy { $0.hasPrefix("unchanged") }, "\(again)")
        }
    }

    @Test("errors are one line from the problem, with exit 1; bad files exit 64; login stores the server and token, mode 0600")
    func errorsAndLogin() async throws {
        try await withTestApp(live: true) { client, _ in
            let port = try #require(client.port)
            let (status, output) = try await Self.podid(["get", "identities", "--team", "nope"], port: port)
            #expect(status == 1)
            #expect(output.contains("Error: 404 Not Found: team 'nope' was not found."), "\(output)")
            let (unauthorized, message) = try await Self.podid(["get", "teams"], port: port, token: "wrong")
            #expect(unauthorized == 1 && message.contains("401 Unauthorized"), "\(message)")
            let (missing, missingMessage) = try await Self.podid(["apply", "-f", "/nonexistent/file.yaml"], port: port)
            #expect(missing == 64 && missingMessage.contains("cannot read /nonexistent/file.yaml: no such file"), "\(missingMessage)")

            let home = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-home-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: home) }
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            let (loggedIn, login) = try await runProgram(
                "/bin/sh", ["-c", "echo \(testAdminToken) | \(DevCommandTests.binary) login --server http://127.0.0.1:\(port)"],
                environment: ["PATH": "/usr/bin:/bin", "HOME": home.path])
            #expect(loggedIn == 0, "\(login)")
            #expect(login.contains("logged in to http://127.0.0.1:\(port) as bootstrap-admin (admin)"), "\(login)")
            let file = home.appendingPathComponent(".config/podid/config.json")
            let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let (listed, teams) = try await runProgram(DevCommandTests.binary, ["get", "teams", "-o", "json"],
                                                       environment: ["PATH": "/usr/bin:/bin", "HOME": home.path])
            #expect(listed == 0 && teams.hasPrefix("["), "the stored login is used: \(teams)")
        }
    }
}
