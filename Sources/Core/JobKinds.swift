import Foundation

/// A kind of background job: its name, its typed payload, and the keys that serialize and
/// coalesce it, all derived from the `Subject` it works on. Every kind is listed in `JobCatalogue`;
/// a handler in Workers names the kinds it runs.
public protocol JobKind: Sendable {
    /// What the job works on (an identity, a binding, a cluster's name).
    associatedtype Subject
    /// The job's input, stored as JSON.
    associatedtype Payload: Codable, Sendable, Equatable

    /// The stored kind, such as `identity.provision`.
    static var name: String { get }
    /// Attempts before the job fails.
    static var maxAttempts: Int { get }
    /// The payload for a subject.
    static func payload(_ subject: Subject) -> Payload
    /// Jobs with the same serial key never run at the same time.
    static func serialKey(_ subject: Subject) -> String
    /// A queued job with the same dedupe key absorbs a new one (nil: never).
    static func dedupeKey(_ subject: Subject) -> String?
    /// The team, resource type, resource name and API path the job is listed under.
    static func target(_ subject: Subject) -> JobTarget
}

/// Where a job shows in `GET /v1/jobs`.
public struct JobTarget: Sendable, Equatable {
    public var team: String?
    public var resourceType: String
    public var resourceName: String
    /// The API path of the resource.
    public var path: String

    /// Creates a target.
    public init(team: String?, resourceType: String, resourceName: String, path: String) {
        self.team = team
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.path = path
    }
}

extension JobKind {
    public static var maxAttempts: Int { 10 }

    /// The job for `subject`, caused by request `requestId`.
    public static func job(_ subject: Subject, requestId: String?) -> NewJob {
        let target = target(subject)
        return NewJob(kind: name, team: target.team, resourceType: target.resourceType, resourceName: target.resourceName,
                      serialKey: serialKey(subject), dedupeKey: dedupeKey(subject), payload: .encoding(payload(subject)),
                      maxAttempts: maxAttempts, requestId: requestId, resource: target.path)
    }

    /// The typed payload of a stored job of this kind.
    public static func payload(of job: Job) throws -> Payload {
        do {
            return try JSONDecoder().decode(Payload.self, from: Data(job.payload.canonicalText.utf8))
        } catch {
            throw DomainError(.validation, "job \(job.id.uuidString.lowercased()) of kind \(job.kind) has a payload that is not a \(name) payload (\(job.payload.canonicalText)); it cannot run")
        }
    }
}

/// Every job kind podid runs. Adding one: declare it here, and name it in its handler's `kinds`.
public enum JobCatalogue {
    public static let kinds: [any JobKind.Type] = [
        IdentityProvision.self, IdentityAdopt.self, IdentityUpdate.self, IdentityDelete.self,
        BindingApply.self, BindingDelete.self, BindingRepair.self,
        ClusterCheck.self, HealthCheck.self,
    ]

    /// The stored names.
    public static var names: [String] { kinds.map { $0.name } }
}

// MARK: identities

/// The payload of every identity job.
public struct IdentityJobPayload: Codable, Sendable, Equatable {
    public var team: String
    public var identity: String
    /// The generation the job was queued for (reconcile jobs; they always work from the current row).
    public var generation: Int64?

    public init(team: String, identity: String, generation: Int64? = nil) {
        self.team = team
        self.identity = identity
        self.generation = generation
    }
}

/// Provision, adopt and update: they bring an identity to its desired state and share one dedupe
/// key, so a burst of changes while a job waits coalesces into one job.
public protocol IdentityReconcileKind: JobKind where Subject == Identity, Payload == IdentityJobPayload {}

extension IdentityReconcileKind {
    public static func payload(_ identity: Identity) -> IdentityJobPayload {
        IdentityJobPayload(team: identity.team, identity: identity.name, generation: identity.generation)
    }
    public static func serialKey(_ identity: Identity) -> String { IdentityJobKeys.serial(team: identity.team, name: identity.name) }
    public static func dedupeKey(_ identity: Identity) -> String? { IdentityJobKeys.serial(team: identity.team, name: identity.name) }
    public static func target(_ identity: Identity) -> JobTarget { IdentityJobKeys.target(team: identity.team, name: identity.name) }
}

/// Creates the Azure identity and its role assignments.
public enum IdentityProvision: IdentityReconcileKind {
    public static let name = "identity.provision"
}

/// Takes over an existing Azure identity, then its role assignments.
public enum IdentityAdopt: IdentityReconcileKind {
    public static let name = "identity.adopt"
}

/// Brings tags and role assignments in line with a changed desired state.
public enum IdentityUpdate: IdentityReconcileKind {
    public static let name = "identity.update"
}

/// Removes podid's role assignments and (unless retained) the Azure identity, then the row.
public enum IdentityDelete: JobKind {
    public static let name = "identity.delete"
    public static func payload(_ key: IdentityKey) -> IdentityJobPayload { IdentityJobPayload(team: key.team, identity: key.name) }
    public static func serialKey(_ key: IdentityKey) -> String { IdentityJobKeys.serial(team: key.team, name: key.name) }
    public static func dedupeKey(_ key: IdentityKey) -> String? { "identity-delete:\(key.team)/\(key.name)" }
    public static func target(_ key: IdentityKey) -> JobTarget { IdentityJobKeys.target(team: key.team, name: key.name) }
}

enum IdentityJobKeys {
    /// Jobs of one identity never run at once.
    static func serial(team: String, name: String) -> String { "identity:\(team)/\(name)" }

    static func target(team: String, name: String) -> JobTarget {
        JobTarget(team: team, resourceType: "identity", resourceName: name, path: "/v1/teams/\(team)/identities/\(name)")
    }
}

extension Identity {
    /// The reconcile job for the identity's current desired state: provision or adopt until it
    /// exists in Azure, then update.
    public func reconcileJob(requestId: String?) -> NewJob {
        if resourceId != nil { return IdentityUpdate.job(self, requestId: requestId) }
        return adoptResourceId != nil ? IdentityAdopt.job(self, requestId: requestId) : IdentityProvision.job(self, requestId: requestId)
    }
}

// MARK: bindings

/// The payload of every binding job.
public struct BindingJobPayload: Codable, Sendable, Equatable {
    public var team: String
    public var identity: String
    public var binding: String

    public init(team: String, identity: String, binding: String) {
        self.team = team
        self.identity = identity
        self.binding = binding
    }
}

/// What both binding kinds share.
public protocol BindingKind: JobKind where Subject == Binding, Payload == BindingJobPayload {}

extension BindingKind {
    public static func payload(_ binding: Binding) -> BindingJobPayload {
        BindingJobPayload(team: binding.team, identity: binding.identity, binding: binding.name)
    }

    /// Jobs touching one AzureIdentity object (all bindings of an identity in one cluster and
    /// namespace) never run at once: the last binding's delete and a new binding's apply cannot race.
    public static func serialKey(_ binding: Binding) -> String {
        "k8s:\(binding.cluster)/\(binding.namespace)/\(binding.azureIdentityObjectName)"
    }

    public static func target(_ binding: Binding) -> JobTarget {
        JobTarget(team: binding.team, resourceType: "binding", resourceName: "\(binding.identity)/\(binding.name)", path: binding.path)
    }
}

/// Applies the AzureIdentity and the AzureIdentityBinding.
public enum BindingApply: BindingKind {
    public static let name = "binding.apply"
    public static func dedupeKey(_ binding: Binding) -> String? { "binding:\(binding.team)/\(binding.identity)/\(binding.name)" }
}

/// Re-applies a ready binding's objects that a health sweep found deleted or changed outside
/// podid. It shares the binding's serial key, so it never runs beside the binding's apply or
/// delete, and it reads the binding when it runs: a binding deleted since the sweep looked is not
/// brought back.
public enum BindingRepair: BindingKind {
    public static let name = "binding.repair"
    public static let maxAttempts = 3
    public static func dedupeKey(_ binding: Binding) -> String? { "binding-repair:\(binding.team)/\(binding.identity)/\(binding.name)" }
}

/// Removes them.
public enum BindingDelete: BindingKind {
    public static let name = "binding.delete"
    public static func dedupeKey(_ binding: Binding) -> String? { "binding-delete:\(binding.team)/\(binding.identity)/\(binding.name)" }
}

// MARK: clusters

/// The payload of the cluster jobs.
public struct ClusterJobPayload: Codable, Sendable, Equatable {
    public var cluster: String

    public init(cluster: String) {
        self.cluster = cluster
    }
}

/// The connection check of a cluster: reachable, CRDs served, podid's permissions.
public enum ClusterCheck: JobKind {
    public static let name = "cluster.check"
    public static let maxAttempts = 3
    public static func payload(_ cluster: String) -> ClusterJobPayload { ClusterJobPayload(cluster: cluster) }
    public static func serialKey(_ cluster: String) -> String { "cluster:\(cluster)" }
    public static func dedupeKey(_ cluster: String) -> String? { "cluster-check:\(cluster)" }
    public static func target(_ cluster: String) -> JobTarget {
        JobTarget(team: nil, resourceType: "cluster", resourceName: cluster, path: "/v1/clusters/\(cluster)")
    }
}

/// An assignment-health sweep of a cluster, now.
public enum HealthCheck: JobKind {
    public static let name = "health.check"
    public static let maxAttempts = 3
    public static func payload(_ cluster: String) -> ClusterJobPayload { ClusterJobPayload(cluster: cluster) }
    public static func serialKey(_ cluster: String) -> String { "health:\(cluster)" }
    public static func dedupeKey(_ cluster: String) -> String? { "health-check:\(cluster)" }
    public static func target(_ cluster: String) -> JobTarget { ClusterCheck.target(cluster) }
}

/// What happens to a resource's jobs when it is deleted.
public enum JobRules {
    /// Work that no longer applies once its resource is being deleted: queued jobs, and failed ones
    /// (a failed apply of a resource that is going away is nothing to retry or alert on). A running
    /// job finishes; the delete job shares its serial key and waits for it.
    public static let supersededByDeletion: Set<JobState> = [.queued, .failed]

    /// Whether a job in `state` may be queued again by `POST /v1/jobs/{id}/retry`.
    public static func isRetryable(_ state: JobState) -> Bool { state == .failed || state == .cancelled }
}
