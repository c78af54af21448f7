import Core
import Foundation
import HTTPTypes
import HummingbirdTesting
import Simulators
import Testing

/// The identity jobs against PostgreSQL and the Azure simulator: provisioning, updates, adoption,
/// deletion, and what happens under throttling, outages, replication delays and missing permissions.
@Suite("Identity workflows", .timeLimit(.minutes(5)))
struct IdentityWorkflowTests {
    @Test("provision: pending → ready with resourceId and clientId, the identity tagged and granted in Azure, every step audited; delete removes both")
    func provisionAndDelete() async throws {
        // A replication window long enough that even a slow machine reaches the role assignment inside it.
        // A replication delay long enough that the first role assignment meets it even when the
        // machine is busy (a job on a loaded CI machine took over 5 s from identity to assignment).
        try await withWorkerApp(configureAzure: { $0.principalNotFoundSeconds = 12 }) { client, database, sims in
            try await client.createTeam("payments", policy: devPolicy())
            let created = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken,
                                                json: identityBody("orders-api", extra: #","tags":{"app":"orders"}"#),
                                                headers: [.init("X-Request-Id")!: "req-provision"])
            #expect(created.status == .accepted)
            let ready = try await client.waitForIdentity("payments", "orders-api", state: "ready")
            let clientId = try #require(ready["clientId"] as? String)
            let principalId = try #require(ready["principalId"] as? String)
            #expect((ready["resourceId"] as? String)?.hasSuffix("/userAssignedIdentities/orders-api") == true)
            #expect(ready["tenantId"] as? String == sims.simulators.seed.tenantId)
            #expect(ready["observedGeneration"] as? Int == 1)
            #expect(ready["lastError"] is NSNull)

            let inAzure = try await sims.azureIdentities()
            #expect(inAzure.count == 1)
            #expect(inAzure.first?[["properties", "clientId"]]?.string == clientId)
            #expect(inAzure.first?["tags"]?.stringMap == ["app": "orders", "podid-managed-by": "podid", "podid-team": "payments", "podid-identity": "orders-api"])
            let assignments = try await sims.roleAssignments(principalId: principalId)
            #expect(assignments.count == 1)
            #expect(assignments.first?[["properties", "scope"]]?.string?.lowercased() == devGroupScope.lowercased())

            // The replication delay was waited out inside the job, not by failing it.
            let job = try #require(try await client.jobs(of: "payments", "orders-api").first)
            #expect(job["state"] as? String == "succeeded")
            #expect(job["attempts"] as? Int == 1)
            let steps = job["steps"] as? [[String: Any]] ?? []
            let refused = sims.azure.requestLog.all.filter { $0.operation == "roleAssignment.put" && $0.status == 400 }
            #expect(!refused.isEmpty, "the simulator answered PrincipalNotFound at least once")
            #expect(steps.contains { $0["outcome"] as? String == "waiting" }, "PrincipalNotFound was retried in place: \(steps)")
            #expect(steps.contains { $0["name"] as? String == "azure.identity.put" && ($0["details"] as? [String: String])?["upstreamRequestId"] != nil })

            let story = try await database.auditRows().filter { $0.requestId == "req-provision" }.map(\.action)
            #expect(story == ["identity.created", "azure.identity.created", "azure.roleassignment.created", "identity.ready"])
            // The audit API tells the same story for the request id, newest first, with the job and Azure's ids.
            let told = try await client.call(.get, "/v1/audit?requestId=req-provision", token: testAdminToken).items
            #expect(told.compactMap { $0["action"] as? String } == story.reversed())
            #expect(told.dropLast().allSatisfy { $0["jobId"] is String }, "the job's events name the job")
            #expect(told.contains { ($0["details"] as? [String: Any])?["upstreamRequestId"] is String })
            let azureRequestIds = Set(sims.azure.requestLog.all.filter { $0.operation == "identity.put" }.map(\.requestId))
            let audited = try await database.withOwner { client in
                try await client.query("SELECT details->>'upstreamRequestId' FROM audit_events WHERE action = 'azure.identity.created'",
                                       logger: TestDatabase.logger).collect().map { try $0.decode(String.self) }
            }
            #expect(Set(audited).isSubset(of: azureRequestIds) && audited.count == 1, "the audit names Azure's request id")

            let deleted = try await client.call(.delete, "/v1/teams/payments/identities/orders-api", token: testAdminToken,
                                                headers: [.init("X-Request-Id")!: "req-delete"])
            #expect(deleted.status == .accepted)
            #expect(try await client.waitForIdentityGone("payments", "orders-api"))
            #expect(try await sims.azureIdentities().isEmpty)
            #expect(try await sims.roleAssignments(principalId: principalId).isEmpty)
            let deletion = try await database.auditRows().filter { $0.requestId == "req-delete" }.map(\.action)
            #expect(deletion == ["identity.deleted", "azure.roleassignment.deleted", "azure.identity.deleted", "identity.removed"])
        }
    }

    @Test("update: tags and grants are diffed against Azure; assignments removed outside podid come back")
    func update() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.createTeam("payments", policy: devPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            let ready = try await client.waitForIdentity("payments", "api", state: "ready")
            let principalId = try #require(ready["principalId"] as? String)
            let clientId = ready["clientId"] as? String

            let patch = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken,
                                              json: #"{"tags":{"tier":"gold"},"grants":[{"role":"Storage Blob Data Reader","scope":"\#(devGroupScope)"}]}"#)
            #expect(patch.status == .accepted)
            let updated = try await client.waitForIdentity("payments", "api", state: "ready")
            #expect(updated["observedGeneration"] as? Int == 2)
            #expect(updated["clientId"] as? String == clientId, "an update never recreates the identity")
            let assignments = try await sims.roleAssignments(principalId: principalId)
            #expect(assignments.count == 1)
            #expect(assignments.first?[["properties", "roleDefinitionId"]]?.string?.hasSuffix("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1") == true,
                    "Storage Blob Data Reader replaced Reader")
            #expect(try await sims.azureIdentities().first?["tags"]?.stringMap["tier"] == "gold")
            #expect(try await client.jobs(of: "payments", "api").first?["kind"] as? String == "identity.update")

            // Someone deletes the assignment in Azure; the next update puts it back.
            let id = try #require(assignments.first?["id"]?.string)
            #expect(try await send("DELETE", "\(sims.azureURL)\(id)?api-version=2022-04-01").status == 200)
            _ = try await client.call(.patch, "/v1/teams/payments/identities/api", token: testAdminToken, json: #"{"tags":{"tier":"silver"}}"#)
            _ = try await client.waitForIdentity("payments", "api", state: "ready")
            #expect(try await sims.roleAssignments(principalId: principalId).count == 1)
        }
    }

    @Test("adoption: an admin adopts any identity (kept on delete by default); a team only one tagged for it")
    func adoption() async throws {
        try await withWorkerApp { client, database, sims in
            try await client.createTeam("payments", policy: devPolicy())
            let legacy = try await sims.createAzureIdentity("legacy-app", tags: ["owner": "ops"])
            let resourceId = try #require(legacy["id"]?.string)
            let body = #"{"name":"legacy-app","subscriptionId":"\#(devSubscription)","resourceGroup":"podid-dev","resourceId":"\#(resourceId)","tags":{"app":"legacy"},"grants":[{"role":"Reader","scope":"\#(devGroupScope)"}]}"#
            let adopted = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: body)
            #expect(adopted.status == .accepted, "\(adopted.body)")
            #expect(adopted.json["deletionPolicy"] as? String == "retain")
            let ready = try await client.waitForIdentity("payments", "legacy-app", state: "ready")
            #expect(ready["clientId"] as? String == legacy[["properties", "clientId"]]?.string, "the same identity, not a new one")
            #expect(ready["location"] as? String == "westeurope")
            #expect((ready["tags"] as? [String: String]) == ["owner": "ops", "app": "legacy"], "its own tags are kept")
            #expect(try await sims.azureIdentities().first?["tags"]?.stringMap["podid-team"] == "payments")
            #expect(try await client.jobs(of: "payments", "legacy-app").first?["kind"] as? String == "identity.adopt")
            #expect(try await database.auditRows().contains { $0.action == "identity.adopted" })

            _ = try await client.call(.delete, "/v1/teams/payments/identities/legacy-app", token: testAdminToken)
            #expect(try await client.waitForIdentityGone("payments", "legacy-app"))
            #expect(try await sims.azureIdentities().count == 1, "retained in Azure")
            #expect(try await database.auditRows().contains { $0.action == "azure.identity.retained" })

            // A team maintainer may adopt only an identity whose podid tags name the team.
            let maintainer = try await client.createToken(team: "payments", role: "maintainer").secret
            let stranger = try await sims.createAzureIdentity("stranger")
            let strangerBody = #"{"name":"stranger","subscriptionId":"\#(devSubscription)","resourceGroup":"podid-dev","resourceId":"\#(stranger["id"]?.string ?? "")"}"#
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: maintainer, json: strangerBody).status == .accepted)
            let failed = try await client.waitForIdentity("payments", "stranger", state: "failed", token: maintainer)
            #expect((failed["lastError"] as? String)?.contains("carries no podid tags, so team 'payments' cannot adopt it") == true, "\(failed)")
            let job = try #require(try await client.jobs(of: "payments", "stranger").first)
            #expect(job["state"] as? String == "failed")
            #expect(job["attempts"] as? Int == 1, "a decision is not retried")

            // The retained identity still carries podid's tags for the team: the team may adopt it back.
            let again = body.replacingOccurrences(of: #","tags":{"app":"legacy"}"#, with: "")
            #expect(try await client.call(.post, "/v1/teams/payments/identities", token: maintainer, json: again).status == .accepted)
            _ = try await client.waitForIdentity("payments", "legacy-app", state: "ready", token: maintainer)
        }
    }

    @Test("a name taken in Azure by an identity podid did not create fails the job and leaves it alone")
    func takenName() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.createTeam("payments", policy: devPolicy())
            _ = try await sims.createAzureIdentity("taken", tags: ["owner": "someone-else"])
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("taken"))
            let failed = try await client.waitForIdentity("payments", "taken", state: "failed")
            #expect((failed["lastError"] as? String)?.contains("podid did not create it for team 'payments'") == true, "\(failed)")
            #expect(try await sims.azureIdentities().first?["tags"]?.stringMap == ["owner": "someone-else"], "untouched")
            _ = try await client.call(.delete, "/v1/teams/payments/identities/taken", token: testAdminToken)
            #expect(try await client.waitForIdentityGone("payments", "taken"))
            #expect(try await sims.azureIdentities().count == 1, "not podid's, so not deleted")
        }
    }

    @Test("a permanent 403 fails the job at once with the missing permission; after the fix, retry makes it ready")
    func forbidden() async throws {
        try await withWorkerApp { client, database, sims in
            try await client.createTeam("payments", policy: devPolicy())
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "roleAssignment.put", forbiddenRate: 1)] }
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            let failed = try await client.waitForIdentity("payments", "api", state: "failed")
            let lastError = failed["lastError"] as? String ?? ""
            #expect(lastError.contains("not allowed to PUT") && lastError.contains("Microsoft.Authorization/roleAssignments/write"), "\(lastError)")
            #expect(lastError.contains("Role Based Access Control Administrator"), "says what to grant: \(lastError)")
            let job = try #require(try await client.jobs(of: "payments", "api").first)
            #expect(job["attempts"] as? Int == 1)
            #expect(try await database.auditRows().contains { $0.action == "identity.failed" && $0.outcome == "failure" })

            sims.azure.configure { $0.faults = [] }
            let retry = try await client.call(.post, "/v1/jobs/\(job["id"] as? String ?? "")/retry", token: testAdminToken)
            #expect(retry.status == .accepted, "\(retry.body)")
            #expect(retry.json["state"] as? String == "queued")
            let ready = try await client.waitForIdentity("payments", "api", state: "ready")
            #expect((ready["roleAssignments"] as? [Any])?.count == 1)
            #expect(try await sims.azureIdentities().count == 1, "the retry reused the identity it had created")
            #expect(try await database.auditRows().contains { $0.action == "job.retried" })
        }
    }

    @Test("a 30 % 429 storm with Retry-After and 5 % 500s: everything converges, waits honour Retry-After")
    func throttlingStorm() async throws {
        try await withWorkerApp(workers: 1) { client, _, sims in
            try await client.createTeam("payments", policy: devPolicy())
            sims.azure.configure {
                $0.principalNotFoundSeconds = 0
                $0.faults = [SimFaultRule(operation: "*", throttleRate: 0.3, errorRate: 0.05, retryAfterSeconds: 1)]
            }
            for index in 0..<4 {
                #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("storm-\(index)")).status == .accepted)
            }
            for index in 0..<4 {
                let ready = try await client.waitForIdentity("payments", "storm-\(index)", state: "ready", timeout: .seconds(90))
                #expect((ready["roleAssignments"] as? [Any])?.count == 1)
            }
            let log = sims.azure.requestLog.all.filter { $0.operation != "token.entra" }
            let throttled = log.enumerated().filter { $0.element.status == 429 }
            #expect(throttled.count >= 1, "the storm happened: \(throttled.count) of \(log.count)")
            // One worker: the request after a 429 came no sooner than its Retry-After (1 s).
            for (index, record) in throttled where index + 1 < log.count {
                let next = log[index + 1]
                let gap = (simTime(next.time) ?? 0) - (simTime(record.time) ?? 0)
                #expect(gap >= 0.95, "\(record.operation) answered 429 at \(record.time); the next request came at \(next.time)")
            }
            sims.azure.configure { $0.faults = [] }
            #expect(try await sims.azureIdentities().count == 4)
        }
    }

    @Test("a burst of 500s: the identity stays provisioning with lastError while the job backs off, then converges")
    func outage() async throws {
        try await withWorkerApp { client, _, sims in
            try await client.createTeam("payments", policy: devPolicy())
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "identity.put", errorRate: 1)] }
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("api"))
            #expect(try await eventually(timeout: .seconds(40)) {
                let identity = try await client.call(.get, "/v1/teams/payments/identities/api", token: testAdminToken).json
                return identity["state"] as? String == "provisioning" && (identity["lastError"] as? String)?.contains("InternalServerError") == true
            })
            let job = try #require(try await client.jobs(of: "payments", "api").first)
            #expect(["queued", "running"].contains(job["state"] as? String), "retried, not failed: \(job)")
            #expect((job["lastError"] as? String)?.contains("500") == true)
            sims.azure.configure { $0.faults = [] }
            let ready = try await client.waitForIdentity("payments", "api", state: "ready", timeout: .seconds(60))
            #expect(ready["lastError"] is NSNull)
            #expect(try await sims.azureIdentities().count == 1)
        }
    }
}

extension IdentityWorkflowTests {
    @Test("metrics: jobs by kind and outcome, queue depth and age, Azure requests by operation and status")
    func metrics() async throws {
        try await withWorkerApp(registry: ProcessMetrics.registry) { client, _, _ in
            try await client.createTeam("payments", policy: devPolicy())
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("measured"))
            _ = try await client.waitForIdentity("payments", "measured", state: "ready")
            // The queue gauges are refreshed every 5 seconds.
            #expect(try await eventually(timeout: .seconds(15)) {
                let text = try await client.call(.get, "/metrics").body
                return text.contains(#"podid_jobs_claimed_total{kind="identity.provision"}"#)
                    && text.contains(#"podid_jobs_succeeded_total{kind="identity.provision"}"#)
                    && text.contains(#"podid_jobs_queued{kind="identity.provision"}"#)
                    && text.contains("podid_jobs_oldest_queued_age_seconds")
                    && text.contains(#"podid_azure_requests_total{operation="identity.put",status="201"}"#)
                    && text.contains(#"podid_azure_requests_total{operation="roleAssignment.put",status="201"}"#)
            })
        }
    }
}

/// Seconds since 1970 of a simulator timestamp.
func simTime(_ text: String) -> Double? {
    (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))?.timeIntervalSince1970
}
