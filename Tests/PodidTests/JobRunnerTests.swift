import Core
import Foundation
import Logging
import ServiceLifecycle
import Store
import Synchronization
import Testing
import Workers

/// A handler whose behaviour each test sets.
final class ScriptedHandler: JobHandler {
    let calls = Mutex<Int>(0)
    let behaviour: @Sendable (Int) async throws -> Void

    init(_ behaviour: @escaping @Sendable (Int) async throws -> Void) {
        self.behaviour = behaviour
    }

    var count: Int { calls.withLock { $0 } }

    /// Registered by name (`JobHandlers(byName:)`): the test kinds are not in the catalogue.
    var kinds: [any JobKind.Type] { [] }

    func run(_ job: Job, progress: JobProgress) async throws {
        let call = calls.withLock { $0 += 1; return $0 }
        await progress.record(JobStep(name: "step-\(call)", outcome: "succeeded"))
        try await behaviour(call)
    }
}

@Suite("Job runner", .timeLimit(.minutes(5)))
struct JobRunnerTests {
    static let logger: Logger = {
        var logger = Logger(label: "podid.tests.runner")
        logger.logLevel = .critical
        return logger
    }()

    /// Runs `body` while a runner works the queue of a fresh database.
    static func withRunner<R: Sendable>(
        handlers: [String: any JobHandler], lease: Duration = .seconds(30),
        before: @Sendable (PostgresJobQueue, PostgresPool) async throws -> Void = { _, _ in },
        _ body: @Sendable (PostgresJobQueue, PostgresPool) async throws -> R
    ) async throws -> R {
        let database = try await TestDatabase.make()
        defer { Task { await database.drop() } }
        return try await database.withRuntime { client in
            let db = PostgresPool(client: client, logger: logger, connectionWait: .seconds(TestDatabase.connectionWaitSeconds))
            let queue = PostgresJobQueue(database: db)
            try await before(queue, db)
            let runner = JobRunner(queue: queue, handlers: JobHandlers(byName: handlers), workers: 2, name: "test", lease: lease,
                                   pollInterval: .milliseconds(200), logger: logger)
            let group = ServiceGroup(configuration: .init(services: [runner], logger: logger))
            return try await withThrowingTaskGroup(of: R?.self) { tasks in
                tasks.addTask {
                    try await group.run()
                    return nil
                }
                let result: Result<R, any Error>
                do { result = .success(try await body(queue, db)) } catch { result = .failure(error) }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return try result.get()
            }
        }
    }

    static func waitForState(_ queue: PostgresJobQueue, _ id: UUID, _ states: Set<JobState>, timeout: Duration = .seconds(20)) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let job = try await queue.job(id), states.contains(job.state) { return job }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("job \(id) did not reach \(states)")
    }

    static func enqueue(_ db: PostgresPool, kind: String, name: String, maxAttempts: Int = 5) async throws -> UUID {
        try await db.transaction { connection in
            try await PostgresJobQueue.enqueue(
                NewJob(kind: kind, team: "t", resourceType: "identity", resourceName: name, serialKey: name, maxAttempts: maxAttempts),
                on: connection, logger: logger)
        }
    }

    @Test("a job runs to success with its steps recorded")
    func success() async throws {
        let handler = ScriptedHandler { _ in }
        try await Self.withRunner(handlers: ["ok": handler]) { queue, db in
            let id = try await Self.enqueue(db, kind: "ok", name: "a")
            let job = try await Self.waitForState(queue, id, [.succeeded])
            #expect(job.steps.map(\.name) == ["step-1"])
            #expect(handler.count == 1)
        }
    }

    @Test("a retryable error retries with backoff honouring Retry-After; a permanent one fails at once with its message")
    func retries() async throws {
        let flaky = ScriptedHandler { call in
            if call == 1 {
                throw UpstreamError(service: .azure, status: 429, code: "TooManyRequests", message: "slow down", retryable: true,
                                    retryAfter: .milliseconds(300))
            }
        }
        let forbidden = ScriptedHandler { _ in
            throw UpstreamError(service: .azure, status: 403, code: "AuthorizationFailed", message: "podid may not write identities", retryable: false)
        }
        try await Self.withRunner(handlers: ["flaky": flaky, "forbidden": forbidden]) { queue, db in
            let flakyID = try await Self.enqueue(db, kind: "flaky", name: "f")
            let forbiddenID = try await Self.enqueue(db, kind: "forbidden", name: "g")
            let done = try await Self.waitForState(queue, flakyID, [.succeeded, .failed])
            #expect(done.state == .succeeded)
            #expect(done.attempts == 2)
            let failed = try await Self.waitForState(queue, forbiddenID, [.failed])
            #expect(failed.attempts == 1)
            #expect(failed.lastError?.contains("podid may not write identities") == true)
            #expect(forbidden.count == 1)
        }
    }

    @Test("attempts run out: the job fails with the last error")
    func exhausted() async throws {
        let broken = ScriptedHandler { call in
            throw UpstreamError(service: .azure, status: 500, code: "InternalServerError", message: "attempt \(call)", retryable: true,
                                retryAfter: .milliseconds(1))
        }
        // Backoff starts at about a second; keep the test short with two attempts.
        try await Self.withRunner(handlers: ["broken": broken]) { queue, db in
            let id = try await Self.enqueue(db, kind: "broken", name: "b", maxAttempts: 2)
            let failed = try await Self.waitForState(queue, id, [.failed], timeout: .seconds(30))
            #expect(failed.attempts == 2)
            #expect(failed.lastError?.contains("attempt 2") == true)
        }
    }

    @Test("a job whose worker died is reclaimed after its lease and finished by another worker")
    func deadWorker() async throws {
        let handler = ScriptedHandler { _ in }
        // The live workers' lease is long, so that a slow machine never lets it lapse and run the job twice.
        try await Self.withRunner(handlers: ["work": handler], lease: .seconds(15), before: { queue, db in
            // A worker of another process claims the job and dies without a word.
            let id = try await Self.enqueue(db, kind: "work", name: "w")
            #expect(try await queue.claim(worker: "dead-process", lease: .milliseconds(500))?.id == id)
        }) { queue, db in
            let rows = try await db.rows("SELECT id FROM jobs")
            let id = try #require(try rows.first?.decode(UUID.self))
            let job = try await Self.waitForState(queue, id, [.succeeded], timeout: .seconds(20))
            #expect(job.attempts == 2, "claimed by the dead worker, then by a live one")
            #expect(handler.count == 1)
        }
    }

    @Test("a worker whose lease another claim took is stopped: its handler is cancelled and it records no outcome")
    func lostLease() async throws {
        let cancelled = Mutex(false)
        let handler = ScriptedHandler { call in
            guard call == 1 else { return }
            do {
                try await Task.sleep(for: .seconds(120))
            } catch {
                cancelled.withLock { $0 = true }
                throw error
            }
        }
        // A lease long enough that a loaded machine's heartbeats keep it (a beat every 2 s).
        try await Self.withRunner(handlers: ["test.slow": handler], lease: .seconds(12)) { queue, db in
            let id = try await Self.enqueue(db, kind: "test.slow", name: "slow")
            _ = try await Self.waitForState(queue, id, [.running])
            #expect(try await eventually(timeout: .seconds(20)) { handler.count == 1 })
            // Another replica holds the job now (its lease expired during a failover and was
            // claimed again there).
            _ = try await db.rows(
                """
                UPDATE jobs SET lease_token = gen_random_uuid(), lease_owner = 'other-replica/0', steps = '[]',
                                lease_expires_at = now() + interval '1 hour'
                WHERE id = \(id) AND state = 'running'
                """)
            #expect(try await eventually(timeout: .seconds(20)) { cancelled.withLock { $0 } }, "the handler is cancelled")
            try await Task.sleep(for: .seconds(2))
            let job = try #require(try await queue.job(id))
            #expect(job.state == .running, "neither failed nor queued by the worker that lost it")
            #expect(job.lastError == nil)
            #expect(job.steps.isEmpty, "the old worker's heartbeat no longer writes its steps")
            let owner = try await db.rows("SELECT lease_owner FROM jobs WHERE id = \(id)")[0].decode(String.self)
            #expect(owner == "other-replica/0")
        }
    }

    @Test("retry plans: retryable upstream errors back off (at least Retry-After), permanent and domain errors do not retry")
    func plans() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let throttled = UpstreamError(service: .azure, status: 429, code: "TooManyRequests", message: "x", retryable: true, retryAfter: .seconds(60))
        let (retryAt, _) = JobRunner.retryPlan(throttled, attempt: 1, now: now)
        #expect((retryAt?.timeIntervalSince(now) ?? 0) >= 60)
        #expect(JobRunner.retryPlan(UpstreamError(service: .azure, status: 403, code: "AuthorizationFailed", message: "x", retryable: false),
                                    attempt: 1, now: now).0 == nil)
        #expect(JobRunner.retryPlan(DomainError(.conflict, "x"), attempt: 1, now: now).0 == nil)
        #expect(JobRunner.retryPlan(CancellationError(), attempt: 1, now: now).0 != nil)
    }
}
