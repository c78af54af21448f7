import Foundation
import Logging

/// The states of a background job.
public enum JobState: String, Sendable, Codable, CaseIterable {
    /// Waiting for its run time and a free worker.
    case queued
    /// Claimed by a worker that holds its lease.
    case running
    /// Done.
    case succeeded
    /// Stopped: a permanent error, or its attempts ran out. `POST /v1/jobs/{id}/retry` queues it again.
    case failed
    /// Dropped because what it would have done no longer applies.
    case cancelled
}

/// One step a job took, kept on the job for people to read.
public struct JobStep: Sendable, Equatable, Codable {
    /// What was done, such as `azure.identity.put`.
    public var name: String
    /// `succeeded`, `failed` or `skipped`.
    public var outcome: String
    /// When it was done.
    public var at: Date
    /// Upstream request ids and other facts.
    public var details: [String: String]

    /// Creates a step.
    public init(name: String, outcome: String, at: Date = Date(), details: [String: String] = [:]) {
        self.name = name
        self.outcome = outcome
        self.at = at
        self.details = details
    }
}

/// A job to enqueue, in the same transaction as the change that causes it.
public struct NewJob: Sendable, Equatable {
    /// What the job does, such as `identity.provision`.
    public var kind: String
    /// The team whose resource it works on.
    public var team: String?
    /// The kind of resource, such as `identity`.
    public var resourceType: String
    /// The resource's name.
    public var resourceName: String
    /// Jobs with the same serial key never run at the same time (one identity, say).
    public var serialKey: String
    /// A queued job with the same dedupe key absorbs this one (a burst of changes, one job).
    public var dedupeKey: String?
    /// The job's input.
    public var payload: JSONValue
    /// Attempts before the job fails.
    public var maxAttempts: Int
    /// The API request that caused it.
    public var requestId: String?
    /// The API path of the resource it works on, such as `/v1/teams/payments/identities/orders`
    /// (`<type>/<name>` when the caller gives none).
    public var resource: String
    /// When the job may run at the earliest (nil: now). A queued job that absorbs this one runs at
    /// the earlier of the two times.
    public var runAt: Date?

    /// Creates a job request.
    public init(kind: String, team: String?, resourceType: String, resourceName: String, serialKey: String,
                dedupeKey: String? = nil, payload: JSONValue = .object([:]), maxAttempts: Int = 10, requestId: String? = nil,
                resource: String? = nil) {
        self.resource = resource ?? "\(resourceType)/\(resourceName)"
        self.kind = kind
        self.team = team
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.serialKey = serialKey
        self.dedupeKey = dedupeKey
        self.payload = payload
        self.maxAttempts = maxAttempts
        self.requestId = requestId
    }
}

/// A job as stored.
public struct Job: Sendable, Equatable {
    public var id: UUID
    public var kind: String
    public var team: String?
    public var resourceType: String
    public var resourceName: String
    public var serialKey: String
    public var dedupeKey: String?
    public var payload: JSONValue
    public var state: JobState
    public var attempts: Int
    public var maxAttempts: Int
    public var runAt: Date
    public var lastError: String?
    public var steps: [JobStep]
    public var requestId: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// The API path of the resource it works on.
    public var resource: String
    /// When it succeeded or failed for good.
    public var finishedAt: Date?
    /// The running claim's token (nil unless running): a claim's every write must carry it.
    public var leaseToken: UUID?
    /// How often a worker died holding this job (its lease expired).
    public var leaseExpiries: Int = 0

    /// The running claim of this job, when it is running.
    public var lease: JobLease? { leaseToken.map { JobLease(jobId: id, token: $0) } }

    /// Creates a stored job.
    public init(id: UUID, kind: String, team: String?, resourceType: String, resourceName: String, serialKey: String,
                dedupeKey: String?, payload: JSONValue, state: JobState, attempts: Int, maxAttempts: Int, runAt: Date,
                lastError: String?, steps: [JobStep], requestId: String?, createdAt: Date, updatedAt: Date,
                resource: String = "", finishedAt: Date? = nil, leaseToken: UUID? = nil, leaseExpiries: Int = 0) {
        self.leaseToken = leaseToken
        self.leaseExpiries = leaseExpiries
        self.resource = resource
        self.finishedAt = finishedAt
        self.id = id
        self.kind = kind
        self.team = team
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.serialKey = serialKey
        self.dedupeKey = dedupeKey
        self.payload = payload
        self.state = state
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.runAt = runAt
        self.lastError = lastError
        self.steps = steps
        self.requestId = requestId
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The job queue: claimed with SKIP LOCKED, leased, serialized per resource.
public protocol JobQueue: Sendable {
    /// Claims the oldest due job whose serial key has no running job, leasing it to `worker`.
    func claim(worker: String, lease: Duration) async throws -> Job?
    /// Extends a lease and saves the steps so far (so the jobs API shows a running job's
    /// progress); false when the claim no longer holds the lease.
    func heartbeat(_ lease: JobLease, duration: Duration, steps: [JobStep]) async throws -> Bool
    /// Marks a job succeeded with the steps it took; false when the claim no longer held the lease
    /// (the outcome is the lease's new holder's to record).
    func complete(_ lease: JobLease, steps: [JobStep]) async throws -> Bool
    /// Records a failed attempt: queued again at `retryAt`, or `failed` when `retryAt` is nil or the
    /// attempts ran out; nil when the claim no longer held the lease.
    func fail(_ lease: JobLease, error: String, steps: [JobStep], retryAt: Date?) async throws -> JobState?
    /// Returns jobs whose lease expired (their worker died) to the queue, and fails those that have
    /// used their attempts (a job that kills its worker must not move from replica to replica
    /// forever).
    func reclaimExpiredLeases() async throws -> ReclaimedJobs
    /// Deletes jobs that finished (succeeded, failed or cancelled) before `before`; how many.
    func pruneFinished(before: Date) async throws -> Int
    /// How many notifications have arrived so far (read it before claiming).
    func notificationCount() async -> Int
    /// Waits until more than `count` notifications have arrived (a job may be ready) or `timeout`
    /// passes; a notification that came between reading the count and waiting is not missed.
    func waitForWork(after count: Int, timeout: Duration) async
    /// Receives the queue's notifications until cancelled (they wake `waitForWork`).
    func listen(logger: Logger) async
    /// Queued jobs by kind and the age of the oldest due one, for the metrics.
    func stats() async throws -> JobQueueStats
}

/// What reclaiming expired leases did.
public struct ReclaimedJobs: Sendable, Equatable {
    /// Jobs queued again for another worker.
    public var requeued: Int
    /// Jobs that had used their attempts: failed for good ("the worker running it died N times").
    public var failed: [Job]

    /// Creates a result.
    public init(requeued: Int, failed: [Job]) {
        self.requeued = requeued
        self.failed = failed
    }
}

/// One claim of a running job. Every write a job makes runs under its lease
/// (`JobLease.$current`): the database refuses a transaction whose claim has lost the lease, so
/// a worker that lost it (a failover longer than the lease, a pause) cannot overwrite what the
/// job's new holder does.
public struct JobLease: Sendable, Equatable, Hashable {
    /// The job.
    public var jobId: UUID
    /// The claim's token, new with every claim.
    public var token: UUID

    /// Creates a lease.
    public init(jobId: UUID, token: UUID) {
        self.jobId = jobId
        self.token = token
    }

    /// The lease the current task's writes run under (set by the job runner around a handler).
    @TaskLocal public static var current: JobLease?
}

/// A job's write was refused: its claim no longer holds the lease (another worker may be running
/// the job). Neither a success nor a failure of the job: the claim stops and records nothing.
public struct JobLeaseLost: Error, CustomStringConvertible, Sendable {
    /// The job.
    public var jobId: UUID

    /// Creates the error.
    public init(jobId: UUID) {
        self.jobId = jobId
    }

    public var description: String { "the lease of job \(jobId) was lost: another worker may be running it" }
}

/// The queue's backlog.
public struct JobQueueStats: Sendable, Equatable {
    /// Queued jobs (due or not) by kind.
    public var queuedByKind: [String: Int]
    /// Seconds the oldest due queued job has waited past its run time (0 when none).
    public var oldestDueAgeSeconds: Double

    /// Creates stats.
    public init(queuedByKind: [String: Int], oldestDueAgeSeconds: Double) {
        self.queuedByKind = queuedByKind
        self.oldestDueAgeSeconds = oldestDueAgeSeconds
    }
}

/// Filters of `GET /v1/jobs`.
public struct JobFilter: Sendable, Equatable {
    public var team: String?
    public var state: JobState?
    public var kind: String?
    /// The API path of the resource.
    public var resource: String?

    /// Creates a filter.
    public init(team: String? = nil, state: JobState? = nil, kind: String? = nil, resource: String? = nil) {
        self.team = team
        self.state = state
        self.kind = kind
        self.resource = resource
    }
}

/// Backoff between attempts: exponential, jittered between half and all of it, and never shorter
/// than what the upstream asked for (`Retry-After`).
public enum Backoff {
    /// The delay before attempt `attempt + 1` (attempt counts from 1).
    public static func delay(attempt: Int, base: Duration = .seconds(1), cap: Duration = .seconds(300),
                             retryAfter: Duration? = nil,
                             random: (ClosedRange<Double>) -> Double = { Double.random(in: $0) }) -> Duration {
        let exponent = min(max(attempt - 1, 0), 20)
        let ceiling = min(cap.inSeconds, base.inSeconds * pow(2, Double(exponent)))
        let jittered = Duration.milliseconds(Int64(random(0.5...1.0) * ceiling * 1000))
        guard let retryAfter else { return jittered }
        return max(jittered, retryAfter)
    }
}
