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

    /// Creates a stored job.
    public init(id: UUID, kind: String, team: String?, resourceType: String, resourceName: String, serialKey: String,
                dedupeKey: String?, payload: JSONValue, state: JobState, attempts: Int, maxAttempts: Int, runAt: Date,
                lastError: String?, steps: [JobStep], requestId: String?, createdAt: Date, updatedAt: Date,
                resource: String = "", finishedAt: Date? = nil) {
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
    /// progress); false when the worker no longer holds the lease.
    func heartbeat(_ id: UUID, worker: String, lease: Duration, steps: [JobStep]) async throws -> Bool
    /// Marks a job succeeded with the steps it took.
    func complete(_ id: UUID, worker: String, steps: [JobStep]) async throws
    /// Records a failed attempt: queued again at `retryAt`, or `failed` when `retryAt` is nil or the
    /// attempts ran out.
    func fail(_ id: UUID, worker: String, error: String, steps: [JobStep], retryAt: Date?) async throws -> JobState
    /// Returns jobs whose lease expired (their worker died) to the queue; how many.
    func reclaimExpiredLeases() async throws -> Int
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
