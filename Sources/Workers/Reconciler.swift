import Core
import Foundation
import Logging

/// The skeleton of a job that brings one resource (an identity, a binding) to its desired state or
/// deletes it. It owns what every such job does the same way: decode the payload, load the resource,
/// skip when it is gone, run the delete path while the resource is `deleting` (and skip a delete job
/// of a resource that is not), otherwise reconcile; and after a failed attempt, record the
/// lifecycle's `failed` event with the resource's audit event.
public protocol Reconciler: JobHandler {
    associatedtype Resource: LifecycleTracked
    associatedtype Payload: Codable & Sendable & Equatable

    /// The resource's noun in steps and messages, such as `identity`.
    static var noun: String { get }
    /// The kind whose jobs only delete.
    static var deleteKind: any JobKind.Type { get }
    /// Decodes a job's payload.
    static func payload(of job: Job) throws -> Payload
    var logger: Logger { get }

    /// The resource a payload names, if it still exists.
    func load(_ payload: Payload) async throws -> Resource?
    /// Brings the resource to its desired state.
    func reconcile(_ resource: Resource, job: Job, progress: JobProgress) async throws
    /// Removes what podid made for the resource, then its row.
    func delete(_ resource: Resource, job: Job, progress: JobProgress) async throws
    /// Writes `event` (a failed attempt) to the resource with `audit` (the final failure's event).
    func record(_ event: LifecycleEvent, payload: Payload, audit: [AuditDraft]) async throws
    /// The resource's audit event for a job that failed for good.
    func failureEvent(payload: Payload, job: Job, message: String) -> AuditDraft
}

extension Reconciler {
    public func run(_ job: Job, progress: JobProgress) async throws {
        try await runReconciling(job, progress: progress)
    }

    /// The skeleton's run (a handler with kinds of its own dispatches here for the others).
    public func runReconciling(_ job: Job, progress: JobProgress) async throws {
        let payload = try Self.payload(of: job)
        guard let resource = try await load(payload) else {
            await progress.record(JobStep(name: "\(Self.noun).read", outcome: "skipped", details: ["reason": "the \(Self.noun) no longer exists"]))
            return
        }
        if resource.state == .deleting {
            try await delete(resource, job: job, progress: progress)
        } else if job.kind == Self.deleteKind.name {
            await progress.record(JobStep(name: "\(Self.noun).read", outcome: "skipped", details: ["reason": "the \(Self.noun) is not being deleted"]))
        } else {
            try await reconcile(resource, job: job, progress: progress)
        }
    }

    public func attemptFailed(_ job: Job, message: String, final: Bool, retryAt: Date?) async {
        await recordFailure(job, message: message, final: final, retryAt: retryAt)
    }

    /// The skeleton's record of a failed attempt.
    public func recordFailure(_ job: Job, message: String, final: Bool, retryAt: Date?) async {
        guard let payload = try? Self.payload(of: job) else { return }
        let event = LifecycleEvent.failed(job: job.id, attempt: job.attempts, maxAttempts: job.maxAttempts, retryAt: retryAt,
                                          final: final, error: message)
        do {
            try await record(event, payload: payload, audit: final ? [failureEvent(payload: payload, job: job, message: message)] : [])
        } catch {
            logger.warning("recording a \(Self.noun) job failure failed", metadata: ["error": "\(error)", "job_id": "\(job.id)"])
        }
    }
}

/// The audit event a job writes about what it did: actor `podid`, the job's request and id, and
/// its kind among the details.
public func jobEvent(_ action: String, outcome: AuditOutcome = .success, job: Job, team: String?, resourceType: String,
                     resourceName: String, details: [String: JSONValue] = [:], before: JSONValue? = nil) -> AuditDraft {
    var details = details
    details["jobKind"] = .string(job.kind)
    return AuditDraft(actor: "podid", actorTeam: nil, action: action, outcome: outcome, team: team, resourceType: resourceType,
                      resourceName: resourceName, requestId: job.requestId, jobId: job.id, details: details, before: before)
}
