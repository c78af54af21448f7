import Foundation
import HTTPTypes
import HummingbirdTesting
import Simulators
import Testing

/// Clusters: admins write, everyone reads, and a job checks the connection.
@Suite("Clusters", .timeLimit(.minutes(5)))
struct ClustersAPITests {
    @Test("register: 201, then the check job fills status: reachable, CRDs served, permissions by SelfSubjectAccessReview")
    func register() async throws {
        try await withWorkerApp { client, database, sims in
            let created = try await client.registerSimCluster(sims)
            #expect(created.headers[.location] == "/v1/clusters/local")
            #expect(created.headers[.eTag] == "\"1\"")
            #expect(created.json["brokerNamespace"] as? String == "aad-broker")
            #expect(created.json["micMode"] as? String == "cluster")
            #expect(created.json["status"] == nil, "not checked yet")
            #expect(try await eventually {
                try await client.call(.get, "/v1/clusters/local", token: testAdminToken).json["status"] is [String: Any]
            })
            let status = try await client.call(.get, "/v1/clusters/local", token: testAdminToken).json["status"] as? [String: Any] ?? [:]
            #expect(status["reachable"] as? Bool == true)
            #expect(status["crdsServed"] as? Bool == true)
            let permissions = status["permissions"] as? [[String: Any]] ?? []
            #expect(permissions.count >= 8 && permissions.allSatisfy { $0["allowed"] as? Bool == true }, "\(permissions)")
            #expect((status["message"] as? String)?.hasPrefix("ok") == true)
            #expect(try await database.auditRows().map(\.action).contains("cluster.checked"))

            // Every token reads clusters; only admins write them.
            try await client.createTeam("payments")
            let viewer = try await client.createToken(team: "payments", role: "viewer").secret
            #expect(try await client.call(.get, "/v1/clusters", token: viewer).items.count == 1)
            #expect(try await client.call(.get, "/v1/clusters/local", token: viewer).status == .ok)
            let maintainer = try await client.createToken(team: "payments", role: "maintainer").secret
            #expect(try await client.call(.post, "/v1/clusters", token: maintainer, json: #"{"name":"x","connection":{"mode":"inCluster"}}"#).status == .forbidden)
            #expect(try await client.call(.delete, "/v1/clusters/local", token: maintainer).status == .forbidden)
            #expect(try await client.call(.post, "/v1/clusters", token: testAdminToken, json: #"{"name":"local","connection":{"mode":"inCluster"}}"#).status == .conflict)
        }
    }

    @Test("the check reports what is wrong: unreachable, CRDs not served, permissions missing")
    func problems() async throws {
        try await withWorkerApp { client, _, sims in
            let port = try DevCommandTests.freePort()
            let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-kube-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try "dev".write(to: directory.appendingPathComponent("token"), atomically: true, encoding: .utf8)
            let body = #"{"name":"gone","apiServer":"http://127.0.0.1:\#(port)","connection":{"mode":"token","tokenFile":"\#(directory.path)/token"}}"#
            #expect(try await client.call(.post, "/v1/clusters", token: testAdminToken, json: body).status == .created)
            let missingFile = #"{"name":"nofile","apiServer":"http://127.0.0.1:\#(port)","connection":{"mode":"token","tokenFile":"/tmp/podid-nonexistent/token"}}"#
            #expect(try await client.call(.post, "/v1/clusters", token: testAdminToken, json: missingFile).status == .created)

            sims.kube.configure {
                $0.crdsServed = false
                $0.deniedVerbs = ["azureidentities:patch"]
            }
            try await client.registerSimCluster(sims, name: "bare")
            @Sendable func status(_ name: String) async throws -> [String: Any]? {
                try await client.call(.get, "/v1/clusters/\(name)", token: testAdminToken).json["status"] as? [String: Any]
            }
            #expect(try await eventually {
                let gone = try await status("gone")
                let nofile = try await status("nofile")
                let bare = try await status("bare")
                return gone != nil && nofile != nil && bare != nil
            })
            let gone = try await status("gone") ?? [:]
            #expect(gone["reachable"] as? Bool == false)
            #expect((gone["message"] as? String)?.contains("cannot reach the API server") == true, "\(gone)")
            let nofile = try await status("nofile") ?? [:]
            #expect((nofile["message"] as? String)?.contains("/tmp/podid-nonexistent/token") == true, "\(nofile)")
            let bare = try await status("bare") ?? [:]
            #expect(bare["reachable"] as? Bool == true)
            #expect(bare["crdsServed"] as? Bool == false)
            let message = bare["message"] as? String ?? ""
            #expect(message.contains("CRDs are not served") && message.contains("may not patch azureidentities"), "\(message)")

            // Fixing the cluster and changing it checks again.
            sims.kube.configure {
                $0.crdsServed = true
                $0.deniedVerbs = []
            }
            let patched = try await client.call(.patch, "/v1/clusters/bare", token: testAdminToken, json: #"{"nodeResourceGroup":"MC_rg_bare_westeurope"}"#,
                                                headers: [.ifMatch: "\"1\""])
            #expect(patched.status == .ok)
            #expect(patched.headers[.eTag] == "\"2\"")
            #expect(try await eventually { (try await status("bare")?["crdsServed"] as? Bool) == true })
        }
    }

    @Test("validation names the field; a cluster with bindings cannot be deleted")
    func validationAndDelete() async throws {
        try await withTestApp { client, _ in
            func fields(_ body: String) async throws -> [String] {
                let response = try await client.call(.post, "/v1/clusters", token: testAdminToken, json: body)
                #expect(response.status == .unprocessableContent, "\(body): \(response.body)")
                return (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
            }
            #expect(try await fields(#"{"name":"Bad_Name","connection":{"mode":"inCluster"}}"#) == ["name"])
            #expect(try await fields(#"{"name":"t","connection":{"mode":"token","tokenFile":"relative/token"}}"#).sorted() == ["apiServer", "connection.tokenFile"])
            #expect(try await fields(#"{"name":"k","connection":{"mode":"kubeconfig"}}"#) == ["connection.path"])
            #expect(try await fields(#"{"name":"m","apiServer":"ftp://x","connection":{"mode":"inCluster"},"brokerNamespace":"Aad"}"#).sorted() == ["apiServer", "brokerNamespace"])
            #expect(try await fields(#"{"name":"u","connection":{"mode":"inCluster"},"kubeletIdentity":{"clientId":"nope"}}"#) == ["kubeletIdentity.clientId"])
            #expect(try await client.call(.post, "/v1/clusters", token: testAdminToken, json: #"{"name":"c","connection":{"mode":"warp"}}"#).status == .badRequest)

            let created = try await client.call(.post, "/v1/clusters", token: testAdminToken,
                                                json: #"{"name":"prod","apiServer":"https://prod.example:443","connection":{"mode":"kubeconfig","path":"/etc/podid/kubeconfig","context":"prod"},"micMode":"namespaced","kubeletIdentity":{"clientId":"00000000-0000-0000-0000-0000000000aa"}}"#)
            #expect(created.status == .created, "\(created.body)")
            #expect((created.json["connection"] as? [String: Any])?["context"] as? String == "prod")
            let cleared = try await client.call(.patch, "/v1/clusters/prod", token: testAdminToken, json: #"{"kubeletIdentity":{}}"#)
            #expect(cleared.json["kubeletIdentity"] == nil, "an empty object clears it: \(cleared.body)")

            try await client.createTeam("payments", policy: bindingPolicy(clusters: ["prod"]))
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api")).status == .accepted)
            let binding = try await client.call(.post, "/v1/teams/payments/identities/api/bindings", token: testAdminToken,
                                                json: #"{"name":"web","cluster":"prod","namespace":"default"}"#)
            #expect(binding.status == .accepted, "\(binding.body)")
            let delete = try await client.call(.delete, "/v1/clusters/prod", token: testAdminToken)
            #expect(delete.status == .conflict)
            #expect((delete.json["detail"] as? String)?.contains("still has bindings") == true)
        }
    }
}
