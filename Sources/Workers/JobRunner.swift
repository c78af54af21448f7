import Core
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// What a job handler reports as it works: the steps, for the job's record.
public final class JobProgress: Sendable {
    let steps = SynchronizedSteps()

    /// Records a step.
    public func record(_ step: JobStep) async {
        await steps.append(step)
    }

    /// The steps so far.
    public var recorded: [JobStep] {
        get async { await steps.all }
    }
}

actor SynchronizedSteps {
    var all: [JobStep] = []
    func append(_ step: JobStep) { all.append(step) }
}

/// Runs jobs of the kinds it names. Steps must be idempotent: a job whose worker died runs again.
public protocol JobHandler: Sendable {
    /// The catalogue's kinds it runs (`JobCatalogue`).
    var kinds: [any JobKind.Type] { get }
    /// Does the work; a thrown `UpstreamError` that is retryable (or any error that is not an
    /// `UpstreamError` or `DomainError`) retries with backoff, anything else fails the job.
    func run(_ job: Job, progress: JobProgress) async throws
    /// Called after an attempt failed with `message`; `final` when the job will not run again
    /// (so the resource can show `failed`), otherwise it is queued for `retryAt`.
    func attemptFailed(_ job: Job, message: String, final: Bool, retryAt: Date?) async
}

extension JobHandler {
    public func attemptFailed(_ job: Job, message: String, final: Bool, retryAt: Date?) async {}
}

/// The handlers of a runner, by the kinds they name: one handler per kind.
public struct JobHandlers: Sendable {
    let byKind: [String: any JobHandler]

    /// Registers each handler for its kinds; two handlers for one kind is a programming error.
    public init(_ handlers: [any JobHandler]) {
        var byKind: [String: any JobHandler] = [:]
        for handler in handlers {
            for kind in handler.kinds {
                precondition(byKind[kind.name] == nil, "two handlers for job kind \(kind.name)")
                byKind[kind.name] = handler
            }
        }
        self.byKind = byKind
    }

    /// Handlers for stored kind names (tests register kinds the catalogue does not have).
    public init(byName: [String: any JobHandler]) {
        self.byKind = byName
    }

    /// The kinds without a handler, from the catalogue.
    public var unhandled: [String] { JobCatalogue.names.filter { byKind[$0] == nil } }

    subscript(kind: String) -> (any JobHandler)? { byKind[kind] }
}

/// The workers: claim jobs, run their handlers with a heartbeat on the lease, and record the
/// outcome — retrying with backoff (honouring `Retry-After`) until the attempts run out. Expired
/// leases of dead workers are returned to the queue. On graceful shutdown no new job is claimed and
/// the running ones finish.
public struct JobRunner: Service {
    let queue: any JobQueue
    let handlers: JobHandlers
    let workers: Int
    let name: String
    let lease: Duration
    let pollInterval: Duration
    let logger: Logger

    /// Creates a runner of `workers` concurrent workers named after `name`.
    public init(queue: any JobQueue, handlers: JobHandlers, workers: Int, name: String = Self.defaultName(),
                lease: Duration = .seconds(30), pollInterval: Duration = .seconds(2), logger: Logger) {
        self.queue = queue
        self.handlers = handlers
        self.workers = workers
        self.name = name
        self.lease = lease
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// `<host>-<pid>`: unique per process, readable in the jobs table.
    public static func defaultName() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    public func run() async throws {
        guard workers > 0 else {
            try await gracefulShutdown()
            return
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await queue.listen(logger: logger) }
            group.addTask { await reclaimLoop() }
            group.addTask { await statsLoop() }
            for index in 0..<workers {
                group.addTask { await workLoop(worker: "\(name)/\(index)") }
            }
            // Until shutdown (or cancellation); then the loops stop claiming and running jobs finish.
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    func reclaimLoop() async {
        while !Task.isCancelled {
            do {
                let reclaimed = try await queue.reclaimExpiredLeases()
                if reclaimed.requeued > 0 {
                    logger.notice("returned jobs with expired leases to the queue", metadata: ["count": "\(reclaimed.requeued)"])
                }
                for job in reclaimed.failed {
                    // A job that keeps killing its worker (out of memory, a crash): failed, so that
                    // the resource shows it rather than one replica after another dying.
                    Counter(label: "podid_jobs_failed_total", dimensions: [("kind", job.kind)]).increment()
                    logger.error("job failed: its workers died with it", metadata: [
                        "job_id": "\(job.id)", "job_kind": "\(job.kind)", "lease_expiries": "\(job.leaseExpiries)", "error": "\(job.lastError ?? "")"])
                    await handlers[job.kind]?.attemptFailed(job, message: job.lastError ?? "its worker died", final: true, retryAt: nil)
                }
            } catch {
                logger.warning("reclaiming expired leases failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: lease / 2)
        }
    }

    /// Publishes the backlog: queued jobs by kind and the oldest due job's wait.
    func statsLoop() async {
        var seen = Set(handlers.byKind.keys)
        while !Task.isCancelled {
            if let stats = try? await queue.stats() {
                seen.formUnion(stats.queuedByKind.keys)
                for kind in seen {
                    Gauge(label: "podid_jobs_queued", dimensions: [("kind", kind)]).record(stats.queuedByKind[kind] ?? 0)
                }
                Gauge(label: "podid_jobs_oldest_queued_age_seconds").record(stats.oldestDueAgeSeconds)
            }
            try? await Task.sleep(for: .seconds(5))
        }
    }

    func workLoop(worker: String) async {
        while !Task.isCancelled {
            let notified = await queue.notificationCount()
            let job: Job?
            do {
                job = try await queue.claim(worker: worker, lease: lease)
            } catch {
                logger.warning("claiming a job failed", metadata: ["error": "\(error)", "worker": "\(worker)"])
                try? await Task.sleep(for: pollInterval)
                continue
            }
            guard let job else {
                await queue.waitForWork(after: notified, timeout: pollInterval)
                continue
            }
            await runToCompletion(job, worker: worker)
        }
    }

    /// Runs a job in a task of its own, so that a shutdown (which cancels the loop) lets it finish.
    /// A job still running a lease's time after the shutdown began is cancelled and released to the
    /// queue, so that shutting down never hangs on a stuck call; another worker takes it.
    func runToCompletion(_ job: Job, worker: String) async {
        guard let lease = job.lease else {
            logger.error("a claimed job has no lease token", metadata: ["job_id": "\(job.id)"])
            return
        }
        let done = Mutex(false)
        let task = Task {
            await execute(job, lease: lease)
            done.withLock { $0 = true }
        }
        var graceEnds: ContinuousClock.Instant?
        while !done.withLock({ $0 }) {
            if Task.isCancelled && graceEnds == nil { graceEnds = .now + self.lease }
            if let graceEnds, ContinuousClock.now >= graceEnds {
                task.cancel()
                logger.warning("shutting down with a job still running: released to the queue",
                               metadata: ["job_id": "\(job.id)", "job_kind": "\(job.kind)"])
                _ = try? await queue.fail(lease, error: "released: the worker shut down before the job finished", steps: [], retryAt: Date())
                return
            }
            // A detached sleep: the loop's cancellation must not turn this wait into a busy spin.
            await Task.detached { try? await Task.sleep(for: .milliseconds(20)) }.value
        }
    }

    /// How a claim of a job ended.
    enum ClaimOutcome: Sendable {
        /// The handler returned (nil) or threw.
        case finished((any Error)?)
        /// The claim lost the lease: neither success nor failure, the job's new holder records that.
        case leaseLost(String)
    }

    /// Runs the handler under the job's lease while a watchdog renews it. When the lease is lost —
    /// a heartbeat finds another claim, or none has succeeded for a whole lease (PostgreSQL away
    /// for longer than that, so another replica may reclaim the job) — the handler is cancelled
    /// and nothing more is recorded: its database writes would be refused anyway
    /// (`PostgresPool.transaction`), and its calls to Azure and Kubernetes stop with it.
    func execute(_ job: Job, lease: JobLease) async {
        var logger = logger
        logger[metadataKey: "job_id"] = "\(job.id)"
        logger[metadataKey: "job_kind"] = "\(job.kind)"
        Counter(label: "podid_jobs_claimed_total", dimensions: [("kind", job.kind)]).increment()
        let started = ContinuousClock.now
        let progress = JobProgress()
        // The heartbeat also saves the steps so far, at least every two seconds, so that a running
        // job shows its progress.
        let beat = min(self.lease / 3, .seconds(2))
        let leaseDuration = self.lease
        let handler = handlers[job.kind]
        let queue = queue
        let outcome: ClaimOutcome = await withTaskGroup(of: ClaimOutcome?.self) { group in
            group.addTask {
                do {
                    guard let handler else { throw DomainError(.validation, "no handler for job kind '\(job.kind)'") }
                    try await JobLease.$current.withValue(lease) {
                        try await handler.run(job, progress: progress)
                    }
                    return .finished(nil)
                } catch let lost as JobLeaseLost {
                    return .leaseLost("\(lost)")
                } catch {
                    return .finished(error)
                }
            }
            group.addTask {
                var renewed = ContinuousClock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: beat)
                    if Task.isCancelled { return nil }
                    let sent = ContinuousClock.now
                    do {
                        if try await queue.heartbeat(lease, duration: leaseDuration, steps: await progress.recorded) {
                            renewed = sent
                        } else {
                            if Task.isCancelled { return nil }
                            return .leaseLost("another worker holds the job's lease")
                        }
                    } catch {
                        if ContinuousClock.now - renewed >= leaseDuration {
                            return .leaseLost("no heartbeat reached the database for a whole lease (\(leaseDuration)): \(error)")
                        }
                    }
                }
                return nil
            }
            var first: ClaimOutcome?
            while first == nil, let next = await group.next() {
                first = next
            }
            group.cancelAll()
            return first ?? .leaseLost("the worker was cancelled")
        }
        switch outcome {
        case .leaseLost(let reason):
            leaseLost(job, reason: reason, logger: logger)
        case .finished(nil):
            let completed: Bool
            do {
                completed = try await queue.complete(lease, steps: await progress.recorded)
            } catch {
                // The outcome could not be recorded (the database is away): the lease expires and
                // the job runs again; its steps are idempotent.
                logger.warning("recording a finished job failed", metadata: ["error": "\(error)"])
                return
            }
            guard completed else {
                leaseLost(job, reason: "the job finished after its lease had passed to another worker", logger: logger)
                return
            }
            Counter(label: "podid_jobs_succeeded_total", dimensions: [("kind", job.kind)]).increment()
            logger.info("job succeeded", metadata: ["attempt": "\(job.attempts)"])
        case .finished(let error?):
            let (retryAt, message) = Self.retryPlan(error, attempt: job.attempts)
            let state: JobState?
            do {
                state = try await queue.fail(lease, error: message, steps: await progress.recorded, retryAt: retryAt)
            } catch {
                // The outcome could not be recorded (the database is away): the lease expires and
                // the job runs again, so nothing is lost.
                logger.warning("recording a failed attempt failed", metadata: ["error": "\(error)", "job_error": "\(message)"])
                return
            }
            guard let state else {
                leaseLost(job, reason: "the attempt failed after its lease had passed to another worker: \(message)", logger: logger)
                return
            }
            await handler?.attemptFailed(job, message: message, final: state == .failed, retryAt: state == .failed ? nil : retryAt)
            if state == .failed {
                Counter(label: "podid_jobs_failed_total", dimensions: [("kind", job.kind)]).increment()
                logger.error("job failed", metadata: ["error": "\(message)", "attempt": "\(job.attempts)"])
            } else {
                Counter(label: "podid_jobs_retried_total", dimensions: [("kind", job.kind)]).increment()
                logger.notice("job will be retried", metadata: ["error": "\(message)", "retry_at": "\(retryAt.map(Timestamp.format) ?? "-")"])
            }
        }
        Timer(label: "podid_jobs_duration_seconds", dimensions: [("kind", job.kind)]).recordNanoseconds((ContinuousClock.now - started).inNanoseconds)
    }

    func leaseLost(_ job: Job, reason: String, logger: Logger) {
        Counter(label: "podid_jobs_lease_lost_total", dimensions: [("kind", job.kind)]).increment()
        logger.warning("lost the lease of a running job: stopped it and recorded nothing; its new holder finishes it",
                       metadata: ["reason": "\(reason)", "attempt": "\(job.attempts)"])
    }

    /// When to retry after `error`, if at all, and the message kept as the job's last error.
    public static func retryPlan(_ error: any Error, attempt: Int, now: Date = Date()) -> (Date?, String) {
        switch error {
        case let upstream as UpstreamError:
            guard upstream.retryable else { return (nil, upstream.description) }
            let delay = Backoff.delay(attempt: attempt, retryAfter: upstream.retryAfter)
            return (now.adding(delay), upstream.description)
        case let domain as DomainError where domain.kind == .unavailable:
            // The database is restarting or busy: try again.
            let delay = Backoff.delay(attempt: attempt)
            return (now.adding(delay), domain.detail)
        case let domain as DomainError:
            // Domain errors are decisions (a conflict, a policy), not accidents: retrying will not help.
            return (nil, domain.detail)
        default:
            let delay = Backoff.delay(attempt: attempt)
            return (now.adding(delay), "\(error)")
        }
    }
}
