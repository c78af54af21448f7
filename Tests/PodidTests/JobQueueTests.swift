import Core
import Foundation
import Logging
import PostgresNIO
import Store
import Testing

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
            #expect(try await queue.heartbeat(id, worker: "w1", lease: .seconds(30), steps: [step]))
            #expect(try await queue.job(id)?.steps.map(\.name) == ["azure.identity.put"], "a running job shows its steps")
            #expect(try await queue.heartbeat(id, worker: "w2", lease: .seconds(30), steps: []) == false)
            try await queue.complete(id, worker: "w1", steps: [JobStep(name: "azure.identity.put", outcome: "succeeded", details: ["x-ms-request-id": "r1"])])
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
            try await queue.complete(claimed.id, worker: "w", steps: [])
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
                            try await queue.complete(job.id, worker: "w\(worker)", steps: [])
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
                try await queue.complete(job.id, worker: "late", steps: [])
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
            _ = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            let later = Date().addingTimeInterval(3600)
            #expect(try await queue.fail(id, worker: "w", error: "throttled", steps: [], retryAt: later) == .queued)
            #expect(try await queue.claim(worker: "w", lease: .seconds(30)) == nil, "not due before its retry time")
            _ = try await db.rows("UPDATE jobs SET run_at = now() WHERE id = \(id)")
            _ = try #require(try await queue.claim(worker: "w", lease: .seconds(30)))
            #expect(try await queue.fail(id, worker: "w", error: "still throttled", steps: [], retryAt: Date()) == .failed,
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
            #expect(try await queue.fail(id, worker: "w", error: "forbidden", steps: [], retryAt: nil) == .failed, "permanent errors fail at once")
        }
    }

    @Test("an expired lease returns the job to the queue; the old worker can no longer finish it")
    func leaseExpiry() async throws {
        try await Self.withQueue { queue, db in
            let id = try await Self.enqueue(db, Self.job("l"))
            _ = try #require(try await queue.claim(worker: "dead", lease: .seconds(30)))
            #expect(try await queue.reclaimExpiredLeases() == 0)
            // Time passes without heartbeats (set in SQL: timing a short lease is flaky on a loaded machine).
            let remaining = try await db.rows("SELECT extract(epoch FROM lease_expires_at - now())::float8 FROM jobs WHERE id = \(id)")
            #expect(try (25.0...31.0).contains(remaining[0].decode(Double.self)), "the lease lasts what the worker asked for")
            _ = try await db.rows("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = \(id)")
            #expect(try await queue.reclaimExpiredLeases() == 1)
            let reclaimed = try #require(try await queue.claim(worker: "alive", lease: .seconds(30)))
            #expect(reclaimed.id == id)
            #expect(reclaimed.attempts == 2)
            try await queue.complete(id, worker: "dead", steps: [])
            #expect(try await queue.job(id)?.state == .running, "the dead worker's completion is ignored")
            try await queue.complete(id, worker: "alive", steps: [])
            #expect(try await queue.job(id)?.state == .succeeded)
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
