import Core
import Foundation
import Logging
import PostgresNIO
import Store
import Testing
import Workers

@Suite("Job queue", .timeLimit(.minutes(5)))
struct JobQueueTests {
    static let logger = Logger(label: "podid.tests.jobs")

    /// Runs `body` with a queue on a fresh database, as the runtime role.
    static func withQueue<R: Sendable>(_ body: @Sendable (PostgresJobQueue, PostgresPool) async throws -> R) async throws -> R {
        let database = try await TestDatabase.make()
        defer { Task { await database.drop() } }
        return try await database.withRuntime { client in
            let db = PostgresPool(client: client, logger: logger, connectionWait: .seconds(TestDatabase.connectionWaitSeconds))
            return try await body(PostgresJobQueue(database: db), db)
        }
    }

    static func job(_ name: String, serial: String? = nil, dedupe: String? = nil, maxAttempts: Int = 3) -> NewJob {
        NewJob(kind: "test.job", team: "alpha", resourceType: "identity", resourceName: name, serialKey: serial ?? name,
               dedupeKey: dedupe, payload: .object(["name": .string(name)]), maxAttempts: maxAttempts, requestId: "req-\(name)")
    }

    static func enqueue(_ db: PostgresPool, _ job: NewJob) async throws -> UUID {
        try await db.transaction { connection in try await PostgresJobQueue.enqueue(job, on: connection, logger: logger) }
    }

    @Test("a job enqueued in a transaction is claimed, leased and completed with its steps")
    func lifecycle() async throws {
        try await Self.withQueue { queue, db in
            // A rolled-back transaction leaves no job.
            await #expect(throws: (any Error).self) {
                try await db.transaction { connection in
                    try await PostgresJobQueue.enqueue(Self.job("rolled-back"), on: connection, logger: Self.logger)
                    throw DomainError(.conflict, "abort")
                }
            }
            #expect(try await queue.claim(worker: "w1", lease: .seconds(30)) == nil)

            let id = try await Self.enqueue(db, Self.job("a"))
            let claimed = try #require(try await queue.claim(worker: "w1", lease: .seconds(30)))
            #expect(claimed.id == id)
            #expect(claimed.state == .running)
            #expect(claimed.attempts == 1)
            #expect(claimed.payload.at("name") == "a")
            #expect(claimed.requestId == "req-a")
            #expect(try await queue.claim(worker: "w2", lease: .seconds(30)) == nil, "a running job is not claimed twice")
            let step = JobStep(name: "azure.identity.put", outcome: "succeeded")
            let lease = try #require(claimed.lease)
            #expect(try await queue.heartbeat(lease, duration: .seconds(30), steps: [step]))
            #expect(try await queue.job(id)?.steps.map(\.name) == ["azure.identity.put"], "a running job shows its steps")
            #expect(try await queue.heartbeat(JobLease(jobId: id, token: UUID()), duration: .seconds(30), steps: []) == false,
                    "only the claim's own token renews the lease")
            #expect(try await queue.complete(lease, steps: [JobStep(name: "azure.identity.put", outcome: "succeeded", details: ["x-ms-request-id": "r1"])]))
            let done = try #require(try await queue.job(id))
            #expect(done.state == .succeeded)
            #expect(done.steps.first?.details["x-ms-request-id"] == "r1")
        }
    }

    @Test("a burst of changes to one resource coalesces into one queued job")
    func dedupe() async throws {
        try await Self.withQueue { queue, db in
            var first = Self.job("a", dedupe: "identity:a")
            let id1 = try await Self.enqueue(db, first)
            first.payload = .object(["name": "a", "generation": .number(2)])
            let id2 = try await Self.enqueue(db, first)
            #expect(id1 == id2)
            let claimed = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(claimed.payload.at("generation") == .number(2), "the latest payload wins")
            // While it runs, a new change queues a new job (it will run after this one).
            let id3 = try await Self.enqueue(db, first)
            #expect(id3 != id1)
            #expect(try await queue.claim(worker: "w2", lease: .seconds(30)) == nil, "same serial key: waits")
            #expect(try await queue.complete(try #require(claimed.lease), steps: []))
            #expect(try await queue.claim(worker: "w2", lease: .seconds(30))?.id == id3)
        }
    }

    @Test("concurrent workers claim every job exactly once, never two jobs of one resource at a time")
    func concurrentClaims() async throws {
        try await Self.withQueue { queue, db in
            for index in 0..<30 { _ = try await Self.enqueue(db, Self.job("j\(index)", serial: "resource-\(index % 5)")) }
            let claims = try await withThrowingTaskGroup(of: [(UUID, String)].self) { group in
                for worker in 0..<6 {
                    group.addTask {
                        var mine: [(UUID, String)] = []
                        while let job = try await queue.claim(worker: "w\(worker)", lease: .seconds(30)) {
                            mine.append((job.id, job.serialKey))
                            _ = try await queue.complete(try #require(job.lease), steps: [])
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            // Workers stop when nothing is claimable at that moment; finish what is left.
            var all = claims
            while let job = try await queue.claim(worker: "late", lease: .seconds(30)) {
                all.append((job.id, job.serialKey))
                _ = try await queue.complete(try #require(job.lease), steps: [])
            }
            #expect(all.count == 30)
            #expect(Set(all.map(\.0)).count == 30, "no job was claimed twice")
            let running = try await db.rows("SELECT count(*)::int FROM jobs WHERE state <> 'succeeded'")
            #expect(try running.first?.decode(Int.self) == 0)
        }
    }

    @Test("a failed attempt is retried later, then fails for good when attempts run out; retry queues it again")
    func failures() async throws {
        try await Self.withQueue { queue, db in
            let id = try await Self.enqueue(db, Self.job("f", maxAttempts: 2))
            let first = try #require(try await queue.claim(worker: "w", lease: .seconds(30))?.lease)
            let later = Date().addingTimeInterval(3600)
            #expect(try await queue.fail(first, error: "throttled", steps: [], retryAt: later) == .queued)
            #expect(try await queue.claim(worker: "w", lease: .seconds(30)) == nil, "not due before its retry time")
            _ = try await db.rows("UPDATE jobs SET run_at = now() WHERE id = \(id)")
            let second = try #require(try await queue.claim(worker: "w", lease: .seconds(30))?.lease)
            #expect(try await queue.fail(second, error: "still throttled", steps: [], retryAt: Date()) == .failed,
                    "the second of two attempts was the last")
            let failed = try #require(try await queue.job(id))
            #expect(failed.lastError == "still throttled")
            #expect(failed.attempts == 2)

            let jobs = JobService(database: PostgresStore(pool: db))
            let admin = CallContext(principal: Principal(tokenId: nil, tokenName: "admin", role: .admin, team: nil), requestId: "test",
                                    operation: "retryJob")
            #expect(try await jobs.retry(id.uuidString, context: admin).state == .queued)
            await #expect(throws: DomainError.self, "only failed jobs are retried") { try await jobs.retry(id.uuidString, context: admin) }
            let again = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(again.attempts == 1)
            #expect(try await queue.fail(try #require(again.lease), error: "forbidden", steps: [], retryAt: nil) == .failed, "permanent errors fail at once")
        }
    }

    @Test("an expired lease returns the job to the queue; the old worker can no longer finish it")
    func leaseExpiry() async throws {
        try await Self.withQueue { queue, db in
            let id = try await Self.enqueue(db, Self.job("l"))
            let dead = try #require(try await queue.claim(worker: "dead", lease: .seconds(30))?.lease)
            #expect(try await queue.reclaimExpiredLeases() == ReclaimedJobs(requeued: 0, failed: []))
            // Time passes without heartbeats (set in SQL: timing a short lease is flaky on a loaded machine).
            let remaining = try await db.rows("SELECT extract(epoch FROM lease_expires_at - now())::float8 FROM jobs WHERE id = \(id)")
            #expect(try (25.0...31.0).contains(remaining[0].decode(Double.self)), "the lease lasts what the worker asked for")
            _ = try await db.rows("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = \(id)")
            #expect(try await queue.reclaimExpiredLeases().requeued == 1)
            // The same worker name claims it again (a restarted process reusing its name): only the
            // token tells the two claims apart.
            let reclaimed = try #require(try await queue.claim(worker: "dead", lease: .seconds(30)))
            #expect(reclaimed.id == id)
            #expect(reclaimed.attempts == 2)
            #expect(reclaimed.leaseExpiries == 1)
            #expect(try await queue.complete(dead, steps: []) == false)
            #expect(try await queue.fail(dead, error: "late", steps: [], retryAt: nil) == nil, "the old claim's failure is no failure of the job")
            #expect(try await queue.job(id)?.state == .running, "the old claim's completion is ignored")
            #expect(try await queue.complete(try #require(reclaimed.lease), steps: []))
            #expect(try await queue.job(id)?.state == .succeeded)
        }
    }

    @Test("a job whose workers keep dying fails once its attempts are used, naming how often, instead of moving from worker to worker")
    func poisonJob() async throws {
        try await Self.withQueue { queue, db in
            let id = try await Self.enqueue(db, Self.job("poison", maxAttempts: 2))
            for round in 1...2 {
                let claimed = try #require(try await queue.claim(worker: "w\(round)", lease: .seconds(30)))
                #expect(claimed.attempts == round)
                // The worker dies (out of memory): no heartbeat, no outcome.
                _ = try await db.rows("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = \(id)")
                let reclaimed = try await queue.reclaimExpiredLeases()
                if round == 1 {
                    #expect(reclaimed == ReclaimedJobs(requeued: 1, failed: []))
                } else {
                    #expect(reclaimed.requeued == 0)
                    #expect(reclaimed.failed.map(\.id) == [id])
                }
            }
            let failed = try #require(try await queue.job(id))
            #expect(failed.state == .failed)
            #expect(failed.leaseExpiries == 2)
            #expect(failed.finishedAt != nil)
            #expect(failed.lastError?.contains("died 2 time(s)") == true, "\(failed.lastError ?? "")")
            #expect(try await queue.claim(worker: "w3", lease: .seconds(30)) == nil, "no worker takes it again")
        }
    }

    @Test("a claim that lost its lease writes nothing: its transactions are refused while the new claim's go through")
    func fencedWrites() async throws {
        try await Self.withQueue { queue, db in
            let id = try await Self.enqueue(db, Self.job("fenced"))
            let old = try #require(try await queue.claim(worker: "w", lease: .seconds(30))?.lease)
            @Sendable func write(_ value: String) async throws {
                try await db.transaction { connection in
                    try await connection.query("UPDATE jobs SET request_id = \(value) WHERE id = \(id)", logger: Self.logger)
                }
            }
            try await JobLease.$current.withValue(old) { try await write("by-old-before") }
            _ = try await db.rows("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = \(id)")
            _ = try await queue.reclaimExpiredLeases()
            let new = try #require(try await queue.claim(worker: "w", lease: .seconds(30))?.lease)
            await #expect(throws: JobLeaseLost.self) {
                try await JobLease.$current.withValue(old) { try await write("by-old-after") }
            }
            try await JobLease.$current.withValue(new) { try await write("by-new") }
            #expect(try await queue.job(id)?.requestId == "by-new")
            // Outside any job (an API request) nothing is fenced.
            try await write("by-api")
            #expect(try await queue.job(id)?.requestId == "by-api")
        }
    }

    @Test("finished jobs older than the retention go; queued, running and recent ones stay")
    func retention() async throws {
        try await Self.withQueue { queue, db in
            let old = try await Self.enqueue(db, Self.job("old"))
            let recent = try await Self.enqueue(db, Self.job("recent"))
            let running = try await Self.enqueue(db, Self.job("running"))
            let queued = try await Self.enqueue(db, Self.job("queued", serial: "running"))
            _ = try await db.rows("UPDATE jobs SET state = 'succeeded', finished_at = now() - interval '40 days' WHERE id = \(old)")
            _ = try await db.rows("UPDATE jobs SET state = 'failed', finished_at = now() - interval '1 day' WHERE id = \(recent)")
            _ = try await db.rows("UPDATE jobs SET state = 'running', created_at = now() - interval '90 days' WHERE id = \(running)")
            // Housekeeping's retention deletes it, and audits how many went.
            let store = PostgresStore(pool: db)
            let retention = Housekeeping.retention(jobs: queue, health: PostgresHealthStore(database: db), idempotency: PostgresIdempotencyStore(database: db),
                                                   audit: store.audit, jobRetentionDays: 30, healthHistoryDays: 30, logger: Self.logger)
            try await retention.runOnce()
            #expect(try await queue.job(old) == nil)
            for kept in [recent, running, queued] { #expect(try await queue.job(kept) != nil) }
            let events = try await db.rows("SELECT resource_name, details->>'count' FROM audit_events WHERE action = 'housekeeping.pruned'")
                .map { try $0.decode((String, String).self) }
            #expect(events.count == 1 && events.first?.0 == "jobs" && events.first?.1 == "1", "\(events)")
            try await retention.runOnce()
            #expect(try await db.rows("SELECT 1 FROM audit_events WHERE action = 'housekeeping.pruned'").count == 1, "nothing pruned, nothing audited")
        }
    }

    @Test("NOTIFY wakes a waiting worker long before its polling timeout")
    func notifications() async throws {
        try await Self.withQueue { queue, db in
            let listener = Task { await queue.listen(logger: Self.logger) }
            defer { listener.cancel() }
            // Wait until the listener receives notifications at all (LISTEN takes a moment to start).
            var listening = false
            for _ in 0..<100 where !listening {
                let before = await queue.notificationCount()
                _ = try await db.rows("SELECT pg_notify('podid_jobs', '')")
                await queue.waitForWork(after: before, timeout: .milliseconds(300))
                listening = await queue.notificationCount() > before
            }
            #expect(listening, "the listener receives notifications")
            let before = await queue.notificationCount()
            let started = ContinuousClock.now
            async let woke: Void = queue.waitForWork(after: before, timeout: .seconds(60))
            try await Task.sleep(for: .milliseconds(200))
            _ = try await Self.enqueue(db, Self.job("n"))
            await woke
            #expect(ContinuousClock.now - started < .seconds(30), "woken by the notification, not the 60 s poll")
            #expect(await queue.notificationCount() > before)
        }
    }

    @Test("backoff grows exponentially with jitter, is capped, and honours Retry-After")
    func backoff() {
        #expect(Backoff.delay(attempt: 1, random: { _ in 1 }) == .seconds(1))
        #expect(Backoff.delay(attempt: 4, random: { _ in 1 }) == .seconds(8))
        #expect(Backoff.delay(attempt: 4, random: { _ in 0.5 }) == .seconds(4))
        #expect(Backoff.delay(attempt: 30, random: { _ in 1 }) == .seconds(300))
        #expect(Backoff.delay(attempt: 1, retryAfter: .seconds(20), random: { _ in 1 }) == .seconds(20))
    }
}

extension PostgresJobQueue {
    /// One job, as the jobs API reads it.
    func job(_ id: UUID) async throws -> Job? {
        try await PostgresStore(pool: database).jobs.get(id, lock: .none)
    }
}
