import Foundation
import HTTPTypes
import HummingbirdTesting
import Simulators
import Testing

/// `podid worker` killed with SIGKILL in the middle of provisioning: once its leases expire another
/// worker finishes the jobs, and Azure ends with exactly one identity and one set of role
/// assignments per podid identity.
@Suite("Worker crash", .timeLimit(.minutes(5)))
struct WorkerCrashTests {
    static func startWorker(_ database: TestDatabase, _ sims: RunningSimulators, log: URL) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DevCommandTests.binary)
        process.arguments = ["worker"]
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PODID_") && !$0.key.hasPrefix("AZURE_") }
        environment["PODID_DATABASE_URL"] = database.runtimeURLText
        environment["PODID_MIGRATION_DATABASE_URL"] = database.ownerURLText
        environment["PODID_WORKERS"] = "3"
        environment["PODID_LOG_LEVEL"] = "warning"
        environment["PODID_LOOPBACK_ONLY"] = "1"
        environment["PODID_AZURE_ARM_ENDPOINT"] = sims.azureURL
        environment["PODID_AZURE_AUTHORITY_HOST"] = sims.azureURL
        environment["PODID_AZURE_IMDS_ENDPOINT"] = sims.azureURL
        environment["PODID_AZURE_TENANT_ID"] = sims.simulators.seed.tenantId
        environment["PODID_AZURE_CLIENT_ID"] = sims.azure.clientId
        environment["PODID_AZURE_CLIENT_SECRET"] = sims.azure.clientSecret
        environment["PODID_AZURE_IDENTITY_WRITES_PER_SECOND"] = "50"
        process.environment = environment
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    @Test("kill -9 mid-job, leases expire, another worker converges: one identity and one assignment each")
    func killedWorker() async throws {
        try await withWorkerApp(workers: 0) { client, database, sims in
            try await client.createTeam("payments", policy: devPolicy())
            // Role assignments take 20 s, so the worker is surely inside one when it dies, also on a
            // loaded machine where the polls below take seconds.
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "roleAssignment.put", latencyMs: 20_000)] }
            let names = (0..<3).map { "crash-\($0)" }
            for name in names {
                #expect(try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody(name)).status == .accepted)
            }
            let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("worker-\(UUID().uuidString).log")
            defer { try? FileManager.default.removeItem(at: log) }
            let first = try Self.startWorker(database, sims, log: log)
            let midJob = try await eventually(timeout: .seconds(60)) {
                var provisioned = 0
                for name in names {
                    let identity = try await client.call(.get, "/v1/teams/payments/identities/\(name)", token: testAdminToken).json
                    if identity["resourceId"] is String { provisioned += 1 }
                }
                return provisioned == names.count
            }
            // A running job shows its progress (saved with the lease's heartbeat).
            #expect(try await eventually(timeout: .seconds(12)) {
                let running = try await client.call(.get, "/v1/jobs?state=running", token: testAdminToken).items
                return running.contains { job in
                    (job["steps"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == "azure.identity.put" }
                }
            }, "the jobs API shows a running job's steps")
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
            #expect(midJob, "the worker created the identities before it was killed: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            let running = try await client.call(.get, "/v1/jobs?state=running", token: testAdminToken).items
            #expect(running.count == names.count, "the killed worker's jobs still hold their leases")

            // Time passes: the leases expire. A new worker returns the jobs to the queue and finishes them.
            _ = try await database.withOwner { owner in
                try await owner.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'",
                                      logger: TestDatabase.logger).collect()
            }
            sims.azure.configure { $0.faults = [] }
            let second = try Self.startWorker(database, sims, log: log)
            defer {
                second.terminate()
                second.waitUntilExit()
            }
            for name in names {
                let ready = try await client.waitForIdentity("payments", name, state: "ready", timeout: .seconds(60))
                let principalId = try #require(ready["principalId"] as? String)
                #expect(try await sims.roleAssignments(principalId: principalId).count == 1, "one set of role assignments for \(name)")
            }
            #expect(try await sims.azureIdentities().count == names.count, "exactly one Azure identity each")
            let jobs = try await client.call(.get, "/v1/jobs?kind=identity.provision", token: testAdminToken).items
            #expect(jobs.allSatisfy { $0["state"] as? String == "succeeded" && ($0["attempts"] as? Int ?? 0) >= 2 }, "\(jobs)")
        }
    }

    @Test("SIGTERM lets a running job finish before the worker exits")
    func gracefulShutdown() async throws {
        try await withWorkerApp(workers: 0) { client, database, sims in
            try await client.createTeam("payments", policy: devPolicy())
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "roleAssignment.put", latencyMs: 3000)] }
            _ = try await client.call(.post, "/v1/teams/payments/identities", token: testAdminToken, json: identityBody("graceful"))
            let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("worker-\(UUID().uuidString).log")
            defer { try? FileManager.default.removeItem(at: log) }
            let worker = try Self.startWorker(database, sims, log: log)
            #expect(try await eventually(timeout: .seconds(60)) {
                try await client.call(.get, "/v1/teams/payments/identities/graceful", token: testAdminToken).json["resourceId"] is String
            })
            worker.terminate()
            #expect(try await eventually(timeout: .seconds(30)) { !worker.isRunning })
            #expect(worker.terminationStatus == 0, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            let identity = try await client.call(.get, "/v1/teams/payments/identities/graceful", token: testAdminToken).json
            #expect(identity["state"] as? String == "ready", "the job finished before the worker exited: \(identity)")
            #expect(try await client.jobs(of: "payments", "graceful").first?["state"] as? String == "succeeded")
        }
    }
}
