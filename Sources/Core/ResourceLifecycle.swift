import Foundation

/// What identities and bindings share: a desired state counted by `generation`, the generation a
/// worker last applied, and the state and message people read.
public protocol LifecycleTracked: Sendable {
    var state: ResourceState { get set }
    var message: String? { get set }
    var lastError: String? { get set }
    var generation: Int64 { get set }
    var observedGeneration: Int64 { get set }
}

extension Identity: LifecycleTracked {}
extension Binding: LifecycleTracked {}

/// Something that happened to a resource, as far as its state goes.
public enum LifecycleEvent: Sendable, Equatable {
    /// A new resource was accepted: `pending` until a worker takes it.
    case accepted(message: String)
    /// Its desired state changed: generation + 1, `pending` until a worker applies it.
    case changed
    /// A worker started applying it: `provisioning`.
    case started(message: String)
    /// It waits for something else (a binding for its identity): `pending`.
    case waiting(message: String)
    /// A worker did part of the work; the state stays.
    case progressed(message: String)
    /// A worker applied `generation`: `ready` when that is still the current one, otherwise
    /// `pending` for the newer one. The last error is cleared.
    case applied(generation: Int64, message: String)
    /// An attempt of a job failed with `error`; `final` when the job will not run again (`failed`),
    /// otherwise it is retried at `retryAt`.
    case failed(job: UUID, attempt: Int, maxAttempts: Int, retryAt: Date?, final: Bool, error: String)
    /// A failed job of the resource was queued again (`POST /v1/jobs/{id}/retry`): `pending`.
    case retried(job: UUID)
    /// Deletion was asked for: `deleting`, which nothing else leaves.
    case deleting(message: String)
}

/// The one state machine of identities and bindings:
///
/// ```
///   accepted ─▶ pending ─(started)─▶ provisioning ─(applied)─▶ ready
///                  ▲  ▲                    │                     │
///   changed ───────┘  └─(retried)─ failed ◀┘(failed, final)      │ changed
///                                                                 ▼
///   any ─(deleting)─▶ deleting (sticky: later events change only its message)
/// ```
public enum ResourceLifecycle {
    /// Applies `event` to `resource`'s state, message, generations and last error.
    public static func apply<Resource: LifecycleTracked>(_ event: LifecycleEvent, to resource: inout Resource) {
        let deleting = resource.state == .deleting
        func enter(_ state: ResourceState) {
            if !deleting { resource.state = state }
        }
        switch event {
        case .accepted(let message):
            enter(.pending)
            resource.message = message
        case .changed:
            enter(.pending)
            resource.generation += 1
            resource.message = "waiting for a worker to apply generation \(resource.generation)"
        case .started(let message):
            enter(.provisioning)
            resource.message = message
        case .waiting(let message):
            enter(.pending)
            resource.message = message
        case .progressed(let message):
            resource.message = message
        case .applied(let generation, let message):
            resource.observedGeneration = max(resource.observedGeneration, generation)
            resource.lastError = nil
            if deleting || generation == resource.generation {
                enter(.ready)
                resource.message = message
            } else {
                resource.state = .pending
                resource.message = "waiting for a worker to apply generation \(resource.generation)"
            }
        case .failed(let job, let attempt, let maxAttempts, let retryAt, let final, let error):
            let id = job.uuidString.lowercased()
            resource.lastError = error
            if final {
                enter(.failed)
                resource.message = "job \(id) failed; fix the cause, then POST /v1/jobs/\(id)/retry"
            } else {
                resource.message = "attempt \(attempt) of \(maxAttempts) failed; retrying\(retryAt.map { " at \(Timestamp.format($0))" } ?? "")"
            }
        case .retried(let job):
            guard resource.state == .failed else { return }
            resource.state = .pending
            resource.message = "waiting for a worker to retry job \(job.uuidString.lowercased())"
        case .deleting(let message):
            resource.state = .deleting
            resource.message = message
        }
    }

    /// `resource` after `event`.
    public static func applying<Resource: LifecycleTracked>(_ event: LifecycleEvent, to resource: Resource) -> Resource {
        var copy = resource
        apply(event, to: &copy)
        return copy
    }
}
