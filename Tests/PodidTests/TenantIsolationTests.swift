import App
import Core
import Foundation
import Logging
import PostgresNIO
import HTTP
import HTTPTypes
import Simulators
import Store
import Testing

/// Attacks on tenant isolation, each tried as a team with a valid token would try it: real HTTP,
/// a real PostgreSQL and the simulators. docs/security.md lists each control with its test here.
@Suite("Tenant isolation attacks", .timeLimit(.minutes(5)))
struct TenantIsolationTests {
    static let account = devGroupScope + "/providers/Microsoft.Storage/storageAccounts/data"

    /// A policy that allows Reader on the storage account `data` only.
    static func accountPolicy() -> String {
        #"{"subscriptions":["\#(devSubscription)"],"resourceGroups":["podid-dev"],"grants":[{"role":"Reader","scopePrefix":"\#(account)"}],"clusters":[],"namespaces":[],"maxIdentities":10}"#
    }

    static func body(_ name: String, scope: String) -> String {
        let escaped = scope.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return #"{"name":"\#(name)","subscriptionId":"\#(devSubscription)","resourceGroup":"podid-dev","location":"westeurope","grants":[{"role":"Reader","scope":"\#(escaped)"}]}"#
    }

    static func fields(_ response: TestResponse) -> [String] {
        (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
    }

    @Test("a grant below the allowed account cannot climb out of it: dot segments, escapes, queries and fragments are 422; a scope Azure answers differently is deleted, audited and fails the job")
    func grantScopes() async throws {
        try await withWorkerApp { client, database, sims in
            try await client.createTeam("data", policy: Self.accountPolicy())
            let maintainer = try await client.createToken(team: "data", role: "maintainer").secret
            let climbs = [
                "/../../../..", "/..", "/.", "/./../..", "/%2e%2e/%2e%2e", "/%2E%2E", "/..%2f..", "%2f..%2f..",
                "?x=/../..", "#/../..", "/../../providers/Microsoft.Storage/storageAccounts/data", "/ ..", "\\..\\..",
            ]
            for (index, climb) in climbs.enumerated() {
                let response = try await client.call(.post, "/v1/teams/data/identities", token: maintainer,
                                                     json: Self.body("climb\(index)", scope: Self.account + climb))
                #expect(response.status == .unprocessableContent, "\(climb): \(response.status) \(response.body)")
                #expect(Self.fields(response).contains("grants[0].scope"), "\(climb): \(response.body)")
            }
            // The same holds for the policy an admin writes.
            let policy = try await client.call(.patch, "/v1/teams/data", token: testAdminToken,
                                               json: #"{"policy":{"grants":[{"role":"Reader","scopePrefix":"\#(Self.account)/../.."}]}}"#)
            #expect(policy.status == .unprocessableContent, "\(policy.body)")
            #expect(Self.fields(policy) == ["policy.grants[0].scopePrefix"], "\(policy.body)")
            #expect(try await send("GET", "\(sims.azureURL)/_sim/roleassignments").json.array?.isEmpty ?? false, "no role assignment was made")

            // A hop in front of ARM rewrites the account's path to the resource group: Azure creates
            // the assignment there. podid reads `properties.scope`, deletes it and fails the job.
            sims.azure.configure { $0.scopeRewrites = [Self.account.lowercased(): devGroupScope] }
            let created = try await client.call(.post, "/v1/teams/data/identities", token: maintainer, json: Self.body("etl", scope: Self.account))
            #expect(created.status == .accepted, "\(created.body)")
            let failed = try await client.waitForIdentity("data", "etl", state: "failed")
            #expect((failed["lastError"] as? String)?.contains("not on the requested") == true, "\(failed)")
            #expect((failed["roleAssignments"] as? [Any])?.isEmpty ?? true, "no access recorded: \(failed)")
            let principal = try #require(failed["principalId"] as? String)
            #expect(try await sims.roleAssignments(principalId: principal).isEmpty, "the misplaced assignment was deleted")
            #expect(try await database.auditRows().contains { $0.action == "azure.roleassignment.refused" && $0.outcome == "failure" })
        }
    }

    @Test("a token's secret is never stored: an Idempotency-Key replay says the token was created and shows no secret; secrets kept before are dropped")
    func tokenSecretsAtRest() async throws {
        try await withTestApp { client, database in
            try await client.createTeam("data")
            let maintainer = try await client.createToken(team: "data", role: "maintainer").secret
            let headers: HTTPFields = [.init("Idempotency-Key")!: "ci-token-1"]
            let first = try await client.call(.post, "/v1/teams/data/tokens", token: maintainer, json: #"{"name":"ci","role":"viewer"}"#, headers: headers)
            #expect(first.status == .created, "\(first.body)")
            let secret = try #require(first.json["token"] as? String)
            #expect(TokenSecret.isSecret(secret))
            let replay = try await client.call(.post, "/v1/teams/data/tokens", token: maintainer, json: #"{"name":"ci","role":"viewer"}"#, headers: headers)
            #expect(replay.status == .created)
            #expect(replay.headers[.init("Idempotent-Replayed")!] == "true")
            #expect(replay.json["id"] as? String == first.json["id"] as? String, "the same token, not a second one")
            #expect(replay.json["token"] == nil, "no secret in a replay: \(replay.body)")
            #expect(!replay.body.contains(TokenSecret.prefix))
            // Nothing the runtime role can read holds the secret.
            let stored = try await database.withOwner { client in
                try await client.query("SELECT count(*)::int FROM idempotency_keys WHERE position(\(secret)::bytea in body) > 0",
                                       logger: TestDatabase.logger).collect().first?.decode(Int.self)
            }
            #expect(stored == 0)
            // The secret still works: it was only not stored.
            #expect(try await client.call(.get, "/v1/me", token: secret).status == .ok)
        }

        // A database from before: a stored token creation with its secret is dropped by the migration.
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        let runtimeUser = try database.runtimeURL.username
        try await database.withOwner { client in
            let all = try Migration.bundled()
            try await MigrationRunner(client: client, migrations: all.filter { $0.version < 7 }, logger: TestDatabase.logger).apply(runtimeUser: runtimeUser)
            let secret = TokenSecret.generate()
            let withSecret = #"{"id":"1","name":"ci","role":"viewer","token":"\#(secret)"}"#
            let without = #"{"id":"2","name":"ci","role":"viewer"}"#
            for (key, body) in [("a", withSecret), ("b", without)] {
                try await client.query("INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body, completed_at) VALUES ('s', \(key), 'f', 201, '{}', convert_to(\(body), 'UTF8'), now())",
                                       logger: TestDatabase.logger)
            }
            try await MigrationRunner(client: client, migrations: all, logger: TestDatabase.logger).apply(runtimeUser: runtimeUser)
            let keys = try await client.query("SELECT key FROM idempotency_keys ORDER BY key", logger: TestDatabase.logger).collect().map { try $0.decode(String.self) }
            #expect(keys == ["b"])
        }
    }

    @Test("a team cannot have podid delete in Azure an identity an admin adopted: changing its deletionPolicy is admin-only")
    func adoptedDeletionPolicy() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.createTeam("data", policy: devPolicy())
            let maintainer = try await client.createToken(team: "data", role: "maintainer").secret
            let shared = try await sims.createAzureIdentity("shared-db-reader")
            let resourceId = try #require(shared["id"]?.string)
            let adopt = #"{"name":"shared-db-reader","subscriptionId":"\#(devSubscription)","resourceGroup":"podid-dev","resourceId":"\#(resourceId)"}"#
            #expect(try await client.call(.post, "/v1/teams/data/identities", token: testAdminToken, json: adopt).status == .accepted)
            let ready = try await client.waitForIdentity("data", "shared-db-reader", state: "ready")
            #expect(ready["deletionPolicy"] as? String == "retain")

            let path = "/v1/teams/data/identities/shared-db-reader"
            let patch = try await client.call(.patch, path, token: maintainer, json: #"{"deletionPolicy":"delete"}"#)
            #expect(patch.status == .forbidden, "\(patch.body)")
            #expect((patch.json["detail"] as? String)?.contains("only an admin may change its deletionPolicy") == true, "\(patch.body)")
            let put = try await client.call(.put, path, token: maintainer, json: String(adopt.dropLast()) + #","location":"westeurope","deletionPolicy":"delete"}"#)
            #expect(put.status == .forbidden, "\(put.body)")
            // What the team may still change, it changes.
            #expect(try await client.call(.patch, path, token: maintainer, json: #"{"tags":{"app":"reports"}}"#).status == .accepted)
            #expect(try await client.call(.get, path, token: maintainer).json["deletionPolicy"] as? String == "retain")

            // The team deletes it in podid: Azure keeps it.
            #expect(try await client.call(.delete, path, token: maintainer).status == .accepted)
            #expect(try await client.waitForIdentityGone("data", "shared-db-reader"))
            #expect(try await sims.azureIdentities().contains { $0["id"]?.string?.lowercased() == resourceId.lowercased() })

            // An admin may decide otherwise.
            #expect(try await client.call(.post, "/v1/teams/data/identities", token: testAdminToken, json: adopt).status == .accepted)
            _ = try await client.waitForIdentity("data", "shared-db-reader", state: "ready")
            #expect(try await client.call(.patch, path, token: testAdminToken, json: #"{"deletionPolicy":"delete"}"#).status == .accepted)
        }
    }

    @Test("object names cannot collide across teams: data/platform-etl and data-platform/etl get their own objects; bindings under the old names move, audited, leaving other teams' objects alone")
    func objectNames() async throws {
        #expect(KubeNames.azureIdentity(team: "data", identity: "platform-etl", scheme: .joined)
            == KubeNames.azureIdentity(team: "data-platform", identity: "etl", scheme: .joined), "the old scheme collides")
        try await withWorkerApp { client, database, sims in
            try await client.registerSimCluster(sims)
            for (team, identity) in [("data", "platform-etl"), ("data-platform", "etl")] {
                try await client.createTeam(team, policy: bindingPolicy())
                #expect(try await client.call(.post, "/v1/teams/\(team)/identities", token: testAdminToken, json: identityBody(identity)).status == .accepted)
                let bound = try await client.call(.post, "/v1/teams/\(team)/identities/\(identity)/bindings", token: testAdminToken,
                                                  json: #"{"name":"web","cluster":"local","selector":"\#(team)-web"}"#)
                #expect(bound.status == .accepted, "\(bound.body)")
            }
            var clientIds: [String] = []
            for (team, identity) in [("data", "platform-etl"), ("data-platform", "etl")] {
                _ = try await client.waitForBinding(team, identity, "web", state: "ready")
                let name = KubeNames.azureIdentity(team: team, identity: identity)
                #expect(name.count <= 63 && Rules.isDNS1123Label(name), "\(name)")
                let object = try #require(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(name)"))
                #expect(object[["metadata", "labels", "podid.io/team"]]?.string == team)
                let clientId = try #require(try await client.call(.get, "/v1/teams/\(team)/identities/\(identity)", token: testAdminToken).json["clientId"] as? String)
                #expect(object[["spec", "clientID"]]?.string == clientId)
                clientIds.append(clientId)
            }
            #expect(Set(clientIds).count == 2, "each team's pods get its own identity")

            // As an older podid left it: team data's objects under the joined names, both
            // bindings recorded under the old scheme.
            let base = "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker"
            let labels = #""app.kubernetes.io/managed-by":"podid","podid.io/team":"data","podid.io/identity":"platform-etl""#
            let oldIdentity = KubeNames.azureIdentity(team: "data", identity: "platform-etl", scheme: .joined)
            let oldBinding = KubeNames.azureIdentityBinding(team: "data", identity: "platform-etl", binding: "web", scheme: .joined)
            #expect(try await send("DELETE", "\(base)/azureidentitybindings/\(KubeNames.azureIdentityBinding(team: "data", identity: "platform-etl", binding: "web"))").status == 200)
            #expect(try await send("POST", "\(base)/azureidentities", body: #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"\#(oldIdentity)","labels":{\#(labels)}},"spec":{"type":0,"resourceID":"x","clientID":"\#(clientIds[0])"}}"#).status == 201)
            #expect(try await send("POST", "\(base)/azureidentitybindings", body: #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"\#(oldBinding)","labels":{\#(labels),"podid.io/binding":"web"}},"spec":{"azureIdentity":"\#(oldIdentity)","selector":"data-web"}}"#).status == 201)
            try await database.withOwner { client in
                _ = try await client.query("UPDATE bindings SET object_naming = 1", logger: TestDatabase.logger)
            }

            // The start-up step queues their apply jobs; they move the objects.
            let store = try await database.withRuntimeStore { store in try await BindingService.queueRenames(in: store) }
            // Both, unless a health sweep's repair of the AzureIdentityBinding removed above got
            // there first (its apply job moves that binding as well).
            #expect((1...2).contains(store), "\(store)")
            #expect(try await eventually {
                let rows = try await database.withOwner { client in
                    try await client.query("SELECT count(*)::int FROM bindings WHERE object_naming = 2", logger: TestDatabase.logger).collect().first?.decode(Int.self)
                }
                return rows == 2
            })
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/\(oldIdentity)") == nil, "the old AzureIdentity is gone")
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(oldBinding)") == nil)
            let binding = KubeNames.azureIdentityBinding(team: "data", identity: "platform-etl", binding: "web")
            #expect(try await sims.kubeObject("/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentitybindings/\(binding)")?[["spec", "selector"]]?.string == "data-web")
            let audit = try await database.auditRows()
            #expect(audit.contains { $0.action == "binding.renaming" && $0.team == "data" })
            #expect(audit.contains { $0.action == "binding.renamed" && $0.team == "data" })
            #expect(audit.contains { $0.action == "k8s.azureidentity.deleted" && $0.team == "data" })
            // Team data-platform's job found team data's objects at its old names and left them.
            #expect(!audit.contains { $0.action.hasSuffix(".deleted") && $0.team == "data-platform" })
            for (team, identity) in [("data", "platform-etl"), ("data-platform", "etl")] {
                _ = try await client.waitForBinding(team, identity, "web", state: "ready")
            }
        }
    }

    @Test("a default selector cannot be guessed from team and binding names; object names stay valid however long the names")
    func unguessableNames() {
        let first = KubeNames.defaultSelector(binding: "web")
        let second = KubeNames.defaultSelector(binding: "web")
        #expect(first != second)
        #expect(first.hasPrefix("web-") && first.count == 17 && KubeNames.isLabelValue(first), "\(first)")
        #expect(!first.contains("payments"))
        let long = KubeNames.defaultSelector(binding: String(repeating: "b", count: 63))
        #expect(long.count <= 63 && KubeNames.isLabelValue(long), "\(long)")
        let team = String(repeating: "t", count: 63)
        for name in [KubeNames.azureIdentity(team: team, identity: "Identity_With_Caps"),
                     KubeNames.azureIdentityBinding(team: team, identity: String(repeating: "i", count: 24), binding: String(repeating: "b", count: 63))] {
            #expect(name.count <= 63 && Rules.isDNS1123Label(name), "\(name)")
        }
        // Names that differ only where the readable part is cut still differ.
        #expect(KubeNames.azureIdentity(team: team, identity: "etl-a") != KubeNames.azureIdentity(team: team, identity: "etl-b"))
    }

    @Test("cluster credentials come only from PODID_CLUSTER_CREDENTIALS_DIR: a path outside is 422; a link out of it or a kubeconfig naming a file outside fails the check before anything is sent; errors never quote the file")
    func clusterCredentials() async throws {
        try await withWorkerApp { client, _, sims in
            // A secret of podid's own, outside the credential directories (as its federated token would be).
            let outside = URL(fileURLWithPath: "/var/tmp/podid-secret-\(UUID().uuidString.prefix(8))")
            let secret = "podid-own-secret-\(UUID().uuidString)"
            try secret.write(to: outside, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: outside) }
            let inside = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-creds-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: inside, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: inside) }

            for (connection, field) in [
                (#"{"mode":"token","tokenFile":"\#(outside.path)"}"#, "connection.tokenFile"),
                (#"{"mode":"token","tokenFile":"\#(inside.path)/../../var/tmp/x"}"#, "connection.tokenFile"),
                (#"{"mode":"token","tokenFile":"\#(inside.path)/token","caFile":"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}"#, "connection.caFile"),
                (#"{"mode":"kubeconfig","path":"/root/.kube/config"}"#, "connection.path"),
            ] {
                let response = try await client.call(.post, "/v1/clusters", token: testAdminToken,
                                                     json: #"{"name":"leak","apiServer":"\#(sims.kubeURL)","connection":\#(connection)}"#)
                #expect(response.status == .unprocessableContent, "\(connection): \(response.body)")
                #expect(Self.fields(response).contains(field), "\(connection): \(response.body)")
                #expect(response.body.contains("PODID_CLUSTER_CREDENTIALS_DIR"), "\(response.body)")
            }

            // Inside by its path, outside by its target: a link, and a kubeconfig naming the secret.
            let link = inside.appendingPathComponent("token")
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: outside)
            let kubeconfig = inside.appendingPathComponent("config")
            try """
                apiVersion: v1
                kind: Config
                current-context: leak
                contexts: [{name: leak, context: {cluster: c, user: u}}]
                clusters: [{name: c, cluster: {server: "\(sims.kubeURL)"}}]
                users: [{name: u, user: {tokenFile: "\(outside.path)"}}]
                """.write(to: kubeconfig, atomically: true, encoding: .utf8)
            // And a kubeconfig that is no YAML, with a secret on the line that breaks it.
            let broken = inside.appendingPathComponent("broken")
            try "users:\n- token: \(secret)\n  : : [\n".write(to: broken, atomically: true, encoding: .utf8)
            sims.kube.requestLog.clear()
            for (name, connection) in [("link", #"{"mode":"token","tokenFile":"\#(link.path)"}"#),
                                       ("kubeconfig", #"{"mode":"kubeconfig","path":"\#(kubeconfig.path)"}"#),
                                       ("broken", #"{"mode":"kubeconfig","path":"\#(broken.path)"}"#)] {
                let response = try await client.call(.post, "/v1/clusters", token: testAdminToken,
                                                     json: #"{"name":"\#(name)","apiServer":"\#(sims.kubeURL)","connection":\#(connection)}"#)
                #expect(response.status == .created, "\(name): \(response.body)")
            }
            @Sendable func status(_ name: String) async throws -> [String: Any]? {
                try await client.call(.get, "/v1/clusters/\(name)", token: testAdminToken).json["status"] as? [String: Any]
            }
            #expect(try await eventually {
                let link = try await status("link")
                let kubeconfig = try await status("kubeconfig")
                let broken = try await status("broken")
                return link != nil && kubeconfig != nil && broken != nil
            })
            for name in ["link", "kubeconfig"] {
                let message = try await status(name)?["message"] as? String ?? ""
                #expect(message.contains("outside the credential directories"), "\(name): \(message)")
            }
            let everything = try await client.call(.get, "/v1/clusters", token: testAdminToken).body
            #expect(!everything.contains(secret), "no cluster status quotes the secret")
            #expect(sims.kube.requestLog.all.isEmpty, "nothing reached the API server: \(sims.kube.requestLog.all.map(\.path))")
        }
    }

    @Test("metrics behind a token when configured: no token, a wrong one or an admin token is 401, the metrics token reads them")
    func metricsToken() async throws {
        let metricsToken = "metrics-scrape-token-0123456789abcdefghij"
        try await withTestApp(configure: { $0.metricsToken = metricsToken }) { client, _ in
            for token in [nil, "metrics-scrape-token-0123456789abcdefghiX", testAdminToken] {
                let response = try await client.call(.get, "/metrics", token: token)
                #expect(response.status == .unauthorized, "\(token ?? "no token"): \(response.body)")
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(!response.body.contains("http_requests"), "no metric shows")
            }
            let scraped = try await client.call(.get, "/metrics", token: metricsToken)
            #expect(scraped.status == .ok, "\(scraped.body)")
            // The other public paths stay public.
            #expect(try await client.call(.get, "/healthz").status == .ok)
        }
        try await withTestApp { client, _ in
            let open = try await client.call(.get, "/metrics")
            #expect(open.status == .ok, "without the setting /metrics is public")
        }
    }

    @Test("a token created without expiresAt expires after the default lifetime; 0 days means none")
    func defaultTokenExpiry() async throws {
        try await withTestApp { client, _ in
            try await client.createTeam("data")
            let created = try await client.call(.post, "/v1/teams/data/tokens", token: testAdminToken, json: #"{"name":"ci","role":"maintainer"}"#)
            #expect(created.status == .created, "\(created.body)")
            let expiresAt = try #require((created.json["expiresAt"] as? String).flatMap(Timestamp.parse), "\(created.body)")
            #expect(abs(expiresAt.timeIntervalSinceNow - 90 * 86_400) < 120, "\(expiresAt)")
            let chosen = try await client.call(.post, "/v1/tokens", token: testAdminToken,
                                               json: #"{"name":"dash","role":"auditor","expiresAt":"2099-01-01T00:00:00Z"}"#)
            #expect((chosen.json["expiresAt"] as? String)?.hasPrefix("2099-01-01") == true, "an explicit expiry wins: \(chosen.body)")
        }
        try await withTestApp(configure: { $0.tokenDefaultExpiryDays = 0 }) { client, _ in
            let created = try await client.call(.post, "/v1/tokens", token: testAdminToken, json: #"{"name":"forever","role":"auditor"}"#)
            #expect(created.status == .created && (created.json["expiresAt"] == nil || created.json["expiresAt"] is NSNull), "\(created.body)")
        }
    }

    @Test("the bootstrap admin token rotates through its file without a restart: the new line works, the removed one stops within seconds, a broken file admits nobody")
    func bootstrapRotation() async throws {
        let file = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-admin-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: file) }
        let old = "podid_rotation_old_0123456789abcdefghijklmno"
        let new = "podid_rotation_new_0123456789abcdefghijklmno"
        try "\(old)\n".write(to: file, atomically: true, encoding: .utf8)
        try await withTestApp(configure: { $0.adminToken = nil; $0.adminTokenFile = file.path }) { client, _ in
            @Sendable func status(_ token: String) async throws -> HTTPResponse.Status {
                try await client.call(.get, "/v1/teams", token: token).status
            }
            #expect(try await status(old) == .ok)
            #expect(try await status(new) == .unauthorized)
            try "# rotating\n\(old)\n\(new)\n".write(to: file, atomically: true, encoding: .utf8)
            #expect(try await eventually(timeout: .seconds(5)) { try await status(new) == .ok }, "the new token works")
            #expect(try await status(old) == .ok, "both work while clients move")
            try "\(new)\n".write(to: file, atomically: true, encoding: .utf8)
            #expect(try await eventually(timeout: .seconds(5)) { try await status(old) == .unauthorized }, "the old token stops")
            #expect(try await status(new) == .ok)
            try "short\n".write(to: file, atomically: true, encoding: .utf8)
            #expect(try await eventually(timeout: .seconds(5)) { try await status(new) == .unauthorized }, "a broken file admits no one")
        }
    }

    @Test("rate limits: a looping token gets 429 with Retry-After and nothing done, a team's tokens share one limit, another team is served throughout, and a client that waits as told gets through")
    func rateLimits() async throws {
        // Slow buckets, so that refills during the test (however busy the machine) stay small: a
        // token holds one request and regains one every 10 s; the team holds two.
        try await withTestApp(configure: { $0.rateLimitPerToken = 0.1; $0.rateLimitPerTeam = 0.2 }) { client, _ in
            try await client.createTeam("data")
            try await client.createTeam("web")
            let first = try await client.createToken(team: "data", role: "maintainer", name: "loop").secret
            let second = try await client.createToken(team: "data", role: "maintainer", name: "other").secret
            let web = try await client.createToken(team: "web", role: "viewer").secret
            let webToo = try await client.createToken(team: "web", role: "viewer", name: "second").secret
            var extra: [String] = []
            for index in 0..<3 { extra.append(try await client.createToken(team: "data", role: "viewer", name: "fresh\(index)").secret) }
            let started = ContinuousClock.now
            var served = 0
            var refused: TestResponse?
            for _ in 0..<6 {
                let response = try await client.call(.get, "/v1/teams/data/identities", token: first)
                if response.status == .ok { served += 1 } else if response.status == .tooManyRequests { refused = refused ?? response }
                else { Issue.record("unexpected \(response.status): \(response.body)") }
            }
            let elapsed = Double((ContinuousClock.now - started).components.seconds)
            #expect(served >= 1 && served <= 1 + Int(elapsed * 0.1) + 1, "\(served) served in \(elapsed) s")
            let limited = try #require(refused, "the loop was refused")
            #expect(limited.headers[.contentType] == "application/problem+json")
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap { Int($0) }, "\(limited.headers)")
            #expect((1...10).contains(retryAfter), "\(retryAfter)")
            #expect((limited.json["detail"] as? String)?.contains("this token") == true, "\(limited.body)")
            #expect(try await client.call(.get, "/v1/teams/web", token: web).status == .ok, "another team is served")

            // A refused write does nothing.
            let write = try await client.call(.post, "/v1/teams/data/tokens", token: first, json: #"{"name":"more","role":"viewer"}"#)
            #expect(write.status == .tooManyRequests, "\(write.body)")

            // The team's other tokens each have a token bucket of their own but draw on the same
            // team bucket: fresh tokens are refused once the team's two are spent.
            var teamRefusal: TestResponse?
            for token in [second] + extra where teamRefusal == nil {
                let response = try await client.call(.get, "/v1/teams/data", token: token)
                if response.status == .tooManyRequests { teamRefusal = response }
            }
            let team = try #require(teamRefusal, "the team limit refused a fresh token")
            #expect((team.json["detail"] as? String)?.contains("team 'data'") == true, "\(team.body)")
            #expect(try await client.call(.get, "/v1/teams/web", token: webToo).status == .ok, "another team is still served")

            // Waiting as told: the bucket has room again.
            // (Spent again first: on a slow machine the bucket may have refilled since the loop.)
            var again: Int?
            for _ in 0..<500 where again == nil {
                again = try await client.call(.get, "/v1/teams/data/identities", token: first).headers[.retryAfter].flatMap { Int($0) }
            }
            let wait = try #require(again, "the token is refused again once its bucket is spent")
            try await Task.sleep(for: .seconds(Double(wait) + 0.5))
            #expect(try await client.call(.get, "/v1/teams/data/identities", token: first).status == .ok, "served again after Retry-After")
            let tokens = try await client.call(.get, "/v1/teams/data/tokens", token: testAdminToken)
            #expect(!tokens.body.contains("\"more\""), "the refused write made no token: \(tokens.body)")
        }
    }

    @Test("repeated denials fold into one audit event with a count, whatever names the loop varies")
    func deniedLoop() async throws {
        try await withTestApp(configure: { $0.auditDenialWindow = 10 }) { client, database in
            try await client.createTeam("data")
            try await client.createTeam("web")
            let viewer = try await client.createToken(team: "web", role: "viewer").secret
            let started = ContinuousClock.now
            for index in 0..<30 {
                let forbidden = try await client.call(.post, "/v1/teams/web/identities", token: viewer, json: identityBody("x\(index)"))
                #expect(forbidden.status == .forbidden, "\(forbidden.body)")
                let hidden = try await client.call(.get, "/v1/teams/data/identities/probe\(index)", token: viewer)
                #expect(hidden.status == .notFound, "\(hidden.body)")
            }
            let windows = Int((ContinuousClock.now - started).components.seconds) / 10 + 1
            @Sendable func denials() async throws -> [[String: Any]] {
                let texts = try await database.withOwner { owner in
                    var rows: [String] = []
                    let sequence = try await owner.query("SELECT details::text FROM audit_events WHERE action = 'auth.denied' ORDER BY id",
                                                         logger: TestDatabase.logger)
                    for try await text in sequence.decode(String.self) { rows.append(text) }
                    return rows
                }
                return texts.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
            }
            @Sendable func represented(_ rows: [[String: Any]]) -> Int {
                rows.reduce(0) { $0 + (($1["folded"] as? Bool) == true ? ($1["count"] as? Int ?? 0) : 1) }
            }
            let written = try await denials()
            // Per operation and window at most two rows (the first denial, and the fold when it ends).
            #expect(written.count <= 4 * windows, "the first of each operation per window is written at once, the rest folded: \(written.count) rows")
            #expect(try await eventually(timeout: .seconds(40)) { represented(try await denials()) == 60 },
                    "when the windows end, the folds are written: every denial is counted")
            let rows = try await denials()
            #expect(rows.count <= 4 * windows, "\(rows.count) rows for 60 denials")
            let probes = try #require(rows.filter { ($0["status"] as? Int) == 404 && ($0["folded"] as? Bool) == true }
                .max { ($0["count"] as? Int ?? 0) < ($1["count"] as? Int ?? 0) })
            #expect((probes["resources"] as? [String])?.count == min(10, probes["count"] as? Int ?? 0), "a sample of the names tried: \(probes)")
        }
    }

    @Test("an unknown token repeated costs one lookup, not one per request; a new token works at once")
    func unknownTokenCache() async throws {
        let memory = InMemoryDatabase()
        let authenticator = TokenAuthenticator(tokens: memory.tokens, bootstrapAdminToken: nil)
        let unknown = TokenSecret.generate()
        for _ in 0..<50 { #expect(try await authenticator.principal(for: unknown) == nil) }
        #expect(await authenticator.databaseLookups == 1)
        let secret = TokenSecret.generate()
        try await memory.tokens.insert(TokenRecord(id: UUID(), name: "new", role: .viewer, team: "web", expiresAt: nil, createdAt: Date(), createdBy: "t"),
                                       secretHash: TokenSecret.hash(secret))
        #expect(try await authenticator.principal(for: secret)?.tokenName == "new")
    }

    @Test("a loop of health check requests coalesces per cluster: one queued sweep, spaced after the last one")
    func healthCheckLoop() async throws {
        try await withWorkerApp(configure: { $0.healthCheckSpacing = 10 }) { client, database, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("payments", policy: bindingPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            _ = try await client.call(.post, "/v1/teams/payments/identities/api/bindings", token: testAdminToken,
                                      json: #"{"name":"web","cluster":"local","selector":"payments-api"}"#)
            _ = try await client.waitForBinding("payments", "api", "web", state: "ready")
            let path = "/v1/teams/payments/identities/api/bindings/web/health"
            #expect(try await client.call(.post, path, token: testAdminToken).status == .accepted)
            #expect(try await eventually { try await client.call(.get, path, token: testAdminToken).json["observedAt"] is String })
            // The sweep the loop's requests are spaced after (a later sweep only moves them later).
            let observed = try #require((try await client.call(.get, path, token: testAdminToken).json["observedAt"] as? String).flatMap(Timestamp.parse))
            for _ in 0..<30 {
                #expect(try await client.call(.post, path, token: testAdminToken).status == .accepted)
            }
            let (queued, runAt) = try await database.withOwner { owner in
                let rows = try await owner.query(
                    "SELECT count(*)::int, max(run_at) FROM jobs WHERE kind = 'health.check' AND state = 'queued'", logger: TestDatabase.logger)
                for try await (count, runAt) in rows.decode((Int, Date?).self) { return (count, runAt) }
                return (0, nil)
            }
            #expect(queued == 1, "\(queued) sweeps queued")
            let next = try #require(runAt, "one sweep waits")
            #expect(next >= observed.addingTimeInterval(9), "\(next) vs last sweep \(observed)")
        }
    }

    @Test("a narrowed policy lists what it no longer allows, reports it as OutsidePolicy, and one admin call removes it: the grant's role assignment, the binding's objects")
    func narrowedPolicy() async throws {
        try await withWorkerApp { client, database, sims in
            try await client.registerSimCluster(sims)
            try await client.createTeam("data", policy: bindingPolicy(namespaces: ["default"]))
            try await client.createTeam("web", policy: bindingPolicy())
            let maintainer = try await client.createToken(team: "data", role: "maintainer").secret
            let other = try await client.createToken(team: "web", role: "maintainer").secret
            #expect(try await client.call(.post, "/v1/teams/data/identities", token: maintainer,
                                          json: identityBody("etl", grants: ["Reader", "Storage Blob Data Reader"])).status == .accepted)
            for (name, namespace) in [("web", "aad-broker"), ("batch", "default")] {
                let bound = try await client.call(.post, "/v1/teams/data/identities/etl/bindings", token: maintainer,
                                                  json: #"{"name":"\#(name)","cluster":"local","namespace":"\#(namespace)"}"#)
                #expect(bound.status == .accepted, "\(bound.body)")
            }
            _ = try await client.waitForBinding("data", "etl", "batch", state: "ready")
            #expect(try await eventually {
                try await send("GET", "\(sims.azureURL)/_sim/roleassignments").json.array?.count == 2
            }, "both grants assigned")

            // The admin narrows the policy: Reader only, no namespaces but the broker's.
            let narrowed = try await client.call(.patch, "/v1/teams/data", token: testAdminToken,
                                                 json: #"{"policy":{"grants":[{"role":"Reader","scopePrefix":"\#(devGroupScope)"}],"namespaces":[]}}"#)
            #expect(narrowed.status == .ok, "\(narrowed.body)")
            let outside = narrowed.json["outsidePolicy"] as? [[String: Any]] ?? []
            #expect(Set(outside.compactMap { $0["kind"] as? String }) == ["grant", "binding"], "\(narrowed.body)")
            #expect(outside.contains { ($0["grant"] as? [String: Any])?["role"] as? String == "Storage Blob Data Reader" }, "\(outside)")
            #expect(outside.contains { $0["binding"] as? String == "batch" && ($0["message"] as? String)?.contains("default") == true }, "\(outside)")
            #expect(!outside.contains { $0["binding"] as? String == "web" }, "the broker namespace stays allowed: \(outside)")
            // A change that leaves the policy alone lists nothing.
            let renamed = try await client.call(.patch, "/v1/teams/data", token: testAdminToken, json: #"{"displayName":"Data"}"#)
            #expect(renamed.json["outsidePolicy"] == nil, "\(renamed.body)")

            // The health check says so for the binding outside the policy.
            let health = try await HealthTests.check(client, binding: "/v1/teams/data/identities/etl/bindings/batch")
            #expect(HealthTests.codes(health).contains("OutsidePolicy"), "\(health)")

            // Only an admin enforces; another team does not even see the team.
            #expect(try await client.call(.post, "/v1/teams/data/policy/enforce", token: maintainer).status == .forbidden)
            #expect(try await client.call(.post, "/v1/teams/data/policy/enforce", token: other).status == .notFound)
            let enforced = try await client.call(.post, "/v1/teams/data/policy/enforce", token: testAdminToken)
            #expect(enforced.status == .ok, "\(enforced.body)")
            #expect((enforced.json["removed"] as? [Any])?.count == 2, "\(enforced.body)")
            let identity = try await client.waitForIdentity("data", "etl", state: "ready")
            #expect((identity["grants"] as? [[String: Any]])?.compactMap { $0["role"] as? String } == ["Reader"], "\(identity)")
            #expect(try await eventually {
                let assignments = try await send("GET", "\(sims.azureURL)/_sim/roleassignments").json.array ?? []
                return assignments.count == 1
            }, "the refused grant's role assignment is deleted in Azure")
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/data/identities/etl/bindings/batch", token: testAdminToken).status == .notFound
            }, "the binding outside the policy is gone")
            #expect(try await client.call(.get, "/v1/teams/data/identities/etl/bindings/web", token: testAdminToken).status == .ok)
            let actions = try await database.auditRows().map(\.action)
            #expect(actions.contains("team.policy.enforced"), "\(actions)")
            let again = try await client.call(.post, "/v1/teams/data/policy/enforce", token: testAdminToken)
            #expect((again.json["removed"] as? [Any])?.isEmpty == true, "\(again.body)")
        }
    }

    @Test("a team created again under an old name reads none of the old team's history: audit events, their ids, jobs and retries are 404; admins still see it all, and the chain verifies")
    func reusedTeamName() async throws {
        try await withWorkerApp { client, database, _ in
            try await client.createTeam("data", policy: devPolicy())
            let oldToken = try await client.createToken(team: "data", role: "maintainer", name: "old").secret
            #expect(try await client.call(.post, "/v1/teams/data/identities", token: oldToken, json: identityBody("secret-etl")).status == .accepted)
            _ = try await client.waitForIdentity("data", "secret-etl", state: "ready")
            let oldEvents = try await client.call(.get, "/v1/audit?limit=100", token: oldToken).items
            let oldEvent = try #require(oldEvents.first { $0["action"] as? String == "identity.created" }?["id"], "\(oldEvents)")
            let oldJob = try #require(try await client.call(.get, "/v1/jobs", token: oldToken).items.first?["id"] as? String)
            #expect(try await client.call(.delete, "/v1/teams/data/identities/secret-etl", token: testAdminToken).status == .accepted)
            #expect(try await eventually {
                try await client.call(.get, "/v1/teams/data/identities/secret-etl", token: testAdminToken).status == .notFound
            })
            #expect(try await client.call(.delete, "/v1/teams/data", token: testAdminToken).status == .noContent)

            // Someone else's team gets the name.
            try await client.createTeam("data", policy: devPolicy())
            let newToken = try await client.createToken(team: "data", role: "maintainer", name: "new").secret
            let events = try await client.call(.get, "/v1/audit?limit=200", token: newToken)
            #expect(events.status == .ok)
            #expect(!events.body.contains("secret-etl"), "no event of the old team: \(events.body)")
            #expect(events.items.contains { $0["action"] as? String == "team.created" }, "the new team's own history: \(events.body)")
            #expect(try await client.call(.get, "/v1/audit/\(oldEvent)", token: newToken).status == .notFound)
            let export = try await client.call(.get, "/v1/audit?team=data&action=identity.", token: newToken)
            #expect(export.items.isEmpty, "\(export.body)")
            let jobs = try await client.call(.get, "/v1/jobs", token: newToken)
            #expect(!jobs.body.contains(oldJob) && !jobs.body.contains("secret-etl"), "\(jobs.body)")
            #expect(try await client.call(.get, "/v1/jobs/\(oldJob)", token: newToken).status == .notFound)
            #expect(try await client.call(.post, "/v1/jobs/\(oldJob)/retry", token: newToken).status == .notFound)

            // The platform keeps the whole history under the name, and sealed events still verify.
            let all = try await client.call(.get, "/v1/audit?team=data&limit=200", token: testAdminToken)
            #expect(all.body.contains("secret-etl"), "\(all.body)")
            #expect(try await client.call(.get, "/v1/jobs/\(oldJob)", token: testAdminToken).status == .ok)
            #expect(try await eventually {
                try await client.call(.get, "/v1/audit/verify", token: testAdminToken).json["ok"] as? Bool == true
            })
            let ids = try await database.withOwner { owner in
                var count = 0
                for try await _ in try await owner.query("SELECT DISTINCT team_id FROM audit_events WHERE team = 'data' AND team_id IS NOT NULL",
                                                         logger: TestDatabase.logger) { count += 1 }
                return count
            }
            #expect(ids == 2, "two teams of one name, two ids")
        }
    }

    @Test("a cluster-mode cluster serves one team: a second team's policy is 422 naming the fix, so is switching a shared cluster to cluster mode; namespaced clusters are shared, their selectors are per namespace, and a taken selector never names a team")
    func sharedClusterMode() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.registerSimCluster(sims, name: "shared", extra: "")
            try await client.createTeam("data", policy: bindingPolicy(namespaces: ["data"], clusters: ["shared"]))
            // A second team may not have it: its pods could take data's identities by their label.
            let refused = try await client.call(.post, "/v1/teams", token: testAdminToken,
                                                json: #"{"name":"web","policy":\#(bindingPolicy(namespaces: ["web"], clusters: ["shared"]))}"#)
            #expect(refused.status == .unprocessableContent, "\(refused.body)")
            #expect(Self.fields(refused) == ["policy.clusters[0]"], "\(refused.body)")
            let message = (refused.json["errors"] as? [[String: Any]])?.first?["message"] as? String ?? ""
            #expect(message.contains("--forceNamespaced") && message.contains(#"{"micMode":"namespaced"}"#) && message.contains("singleTeam"), "\(message)")
            try await client.createTeam("web", policy: bindingPolicy(namespaces: ["web"], clusters: []))
            let added = try await client.call(.patch, "/v1/teams/web", token: testAdminToken, json: #"{"policy":{"clusters":["shared"]}}"#)
            #expect(added.status == .unprocessableContent, "the same through PATCH: \(added.body)")

            // Namespaced, the cluster is shared; switching it back to cluster mode is refused.
            #expect(try await client.call(.patch, "/v1/clusters/shared", token: testAdminToken, json: #"{"micMode":"namespaced"}"#).status == .ok)
            #expect(try await client.call(.patch, "/v1/teams/web", token: testAdminToken, json: #"{"policy":{"clusters":["shared"]}}"#).status == .ok)
            let back = try await client.call(.patch, "/v1/clusters/shared", token: testAdminToken, json: #"{"micMode":"cluster"}"#)
            #expect(back.status == .unprocessableContent && Self.fields(back) == ["micMode"], "\(back.body)")
            // Registering a cluster-mode cluster that two policies list already is refused too.
            try await client.createTeam("ops", policy: bindingPolicy(namespaces: ["ops"], clusters: ["later"]))
            try await client.createTeam("dev", policy: bindingPolicy(namespaces: ["dev"], clusters: ["later"]))
            let later = try await client.call(.post, "/v1/clusters", token: testAdminToken,
                                              json: #"{"name":"later","connection":{"mode":"inCluster"}}"#)
            #expect(later.status == .unprocessableContent && Self.fields(later) == ["micMode"], "\(later.body)")
            // An admin who says the teams are one tenant may keep cluster mode.
            #expect(try await client.call(.patch, "/v1/clusters/shared", token: testAdminToken, json: #"{"micMode":"cluster","singleTeam":true}"#).status == .ok)
            let unmark = try await client.call(.patch, "/v1/clusters/shared", token: testAdminToken, json: #"{"singleTeam":false}"#)
            #expect(unmark.status == .unprocessableContent && Self.fields(unmark) == ["singleTeam"], "\(unmark.body)")
            #expect(try await client.call(.patch, "/v1/clusters/shared", token: testAdminToken, json: #"{"micMode":"namespaced","singleTeam":false}"#).status == .ok)

            // Namespaced: each binding goes where its team's pods run, and a selector is taken only
            // in its namespace.
            for team in ["data", "web"] {
                #expect(try await client.call(.post, "/v1/teams/\(team)/identities", token: testAdminToken, json: identityBody("\(team)-api")).status == .accepted)
            }
            let first = try await client.call(.post, "/v1/teams/data/identities/data-api/bindings", token: testAdminToken,
                                              json: #"{"name":"web","cluster":"shared","selector":"api"}"#)
            #expect(first.status == .accepted && first.json["namespace"] as? String == "data", "the team's only namespace: \(first.body)")
            let second = try await client.call(.post, "/v1/teams/web/identities/web-api/bindings", token: testAdminToken,
                                               json: #"{"name":"web","cluster":"shared","selector":"api"}"#)
            #expect(second.status == .accepted && second.json["namespace"] as? String == "web", "another namespace, the same selector: \(second.body)")
            // web gets a second namespace and tries data's selector there: taken, without a word of data.
            _ = try await client.call(.patch, "/v1/teams/web", token: testAdminToken, json: #"{"policy":{"namespaces":["web","data"]}}"#)
            let taken = try await client.call(.post, "/v1/teams/web/identities/web-api/bindings", token: testAdminToken,
                                              json: #"{"name":"probe","cluster":"shared","namespace":"data","selector":"api"}"#)
            #expect(taken.status == .conflict, "\(taken.body)")
            #expect(!taken.body.contains("team") && !taken.body.contains("\"data\","), "the answer names no team: \(taken.body)")
            let unnamed = try await client.call(.post, "/v1/teams/web/identities/web-api/bindings", token: testAdminToken,
                                                json: #"{"name":"second","cluster":"shared"}"#)
            #expect(unnamed.status == .unprocessableContent && Self.fields(unnamed) == ["namespace"], "two namespaces: say which: \(unnamed.body)")
        }
    }
}

