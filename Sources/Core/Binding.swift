import Crypto
import Foundation

/// A binding: identity × cluster × namespace × selector. Applying it writes an AzureIdentity for the
/// identity (shared by the identity's bindings in that cluster and namespace) and an
/// AzureIdentityBinding named after the binding; pods opt in with `aadpodidbinding: <selector>`.
public struct Binding: Sendable, Equatable, Codable {
    public var team: String
    public var identity: String
    public var name: String
    public var cluster: String
    public var namespace: String
    public var selector: String
    public var state: ResourceState
    public var message: String?
    public var lastError: String?
    /// Counts accepted changes; the ETag.
    public var generation: Int64
    public var observedGeneration: Int64
    /// The identity's clientId the objects in the cluster were last applied with.
    public var appliedClientId: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// The latest assignment health (nil until a sweep looked).
    public var health: HealthStatus?

    /// Creates a binding.
    public init(team: String, identity: String, name: String, cluster: String, namespace: String, selector: String,
                state: ResourceState = .pending, message: String? = nil, lastError: String? = nil, generation: Int64 = 1,
                observedGeneration: Int64 = 0, appliedClientId: String? = nil, createdAt: Date = Date(), updatedAt: Date = Date(),
                health: HealthStatus? = nil) {
        self.health = health
        self.team = team
        self.identity = identity
        self.name = name
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self.state = state
        self.message = message
        self.lastError = lastError
        self.generation = generation
        self.observedGeneration = observedGeneration
        self.appliedClientId = appliedClientId
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The API path.
    public var path: String { "/v1/teams/\(team)/identities/\(identity)/bindings/\(name)" }
    /// The label pods carry to receive the identity.
    public var podLabel: [String: String] { ["aadpodidbinding": selector] }
    /// The AzureIdentity object's name.
    public var azureIdentityObjectName: String { KubeNames.azureIdentity(team: team, identity: identity) }
    /// The AzureIdentityBinding object's name.
    public var bindingObjectName: String { KubeNames.azureIdentityBinding(team: team, identity: identity, binding: name) }

    /// The labels of the AzureIdentity podid writes.
    public var azureIdentityLabels: [String: String] {
        [PodidLabels.managedBy: "podid", PodidLabels.team: team, PodidLabels.identity: identity]
    }

    /// The labels of the AzureIdentityBinding podid writes.
    public var bindingLabels: [String: String] {
        azureIdentityLabels.merging([PodidLabels.binding: name]) { a, _ in a }
    }

    /// The AzureIdentity to apply, for an identity with these Azure ids.
    public func azureIdentityObject(resourceID: String, clientID: String) -> AzureIdentityObject {
        AzureIdentityObject(name: azureIdentityObjectName, namespace: namespace, labels: azureIdentityLabels,
                            resourceID: resourceID, clientID: clientID)
    }

    /// The AzureIdentityBinding to apply.
    public var bindingObject: AzureIdentityBindingObject {
        AzureIdentityBindingObject(name: bindingObjectName, namespace: namespace, labels: bindingLabels,
                                   azureIdentity: azureIdentityObjectName, selector: selector)
    }

    /// Whether an object's labels say it is podid's for this binding's identity (and, with
    /// `includingBinding`, for this binding).
    public func owns(_ labels: [String: String], includingBinding: Bool) -> Bool {
        let wanted = includingBinding ? bindingLabels : azureIdentityLabels
        return wanted.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// The names podid gives Kubernetes objects and selectors (API-OUTLINE "Naming and ownership").
public enum KubeNames {
    /// `<team>-<identity>`, made a valid object name.
    public static func azureIdentity(team: String, identity: String) -> String {
        objectName("\(team)-\(identity)")
    }

    /// `<team>-<identity>-<binding>`, made a valid object name.
    public static func azureIdentityBinding(team: String, identity: String, binding: String) -> String {
        objectName("\(team)-\(identity)-\(binding)")
    }

    /// The default selector: `<team>-<binding>`.
    public static func defaultSelector(team: String, binding: String) -> String {
        objectName("\(team)-\(binding)")
    }

    /// Lower-cased, every character outside `[a-z0-9-]` turned into `-`; longer than 63 characters:
    /// cut to 56, `-`, and the first 6 hex characters of the SHA-256 of the full name.
    public static func objectName(_ raw: String) -> String {
        let cleaned = String(raw.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" ? $0 : "-" })
        guard cleaned.count > 63 else { return cleaned }
        let digest = SHA256.hash(data: Data(cleaned.utf8)).map { String(format: "%02x", $0) }.joined()
        return String(cleaned.prefix(56)) + "-" + String(digest.prefix(6))
    }

    /// Whether `text` is a valid, non-empty Kubernetes label value: at most 63 characters, letters,
    /// digits, `-`, `_`, `.`, starting and ending with a letter or digit.
    public static func isLabelValue(_ text: String) -> Bool {
        guard (1...63).contains(text.count), let first = text.first, let last = text.last,
              first.isASCII && (first.isLetter || first.isNumber), last.isASCII && (last.isLetter || last.isNumber)
        else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }
}

/// What a binding job observed and did.
public struct BindingStatusUpdate: Sendable, Equatable {
    public var state: ResourceState?
    public var message: String?
    /// `.some(nil)` clears it.
    public var lastError: String??
    public var appliedClientId: String?
    /// Marks the generation applied; `ready` only if it is still the current one.
    public var observedGeneration: Int64?

    /// Creates an update.
    public init(state: ResourceState? = nil, message: String? = nil, lastError: String?? = nil, appliedClientId: String? = nil,
                observedGeneration: Int64? = nil) {
        self.state = state
        self.message = message
        self.lastError = lastError
        self.appliedClientId = appliedClientId
        self.observedGeneration = observedGeneration
    }
}

/// Bindings in the system of record.
public protocol BindingStore: Sendable {
    /// Inserts a binding and its job, refusing (409) a selector another team uses in the cluster and
    /// an identity that is being deleted.
    func insertBinding(_ binding: Binding, job: NewJob, audit: AuditDraft) async throws -> Binding
    /// One binding.
    func binding(team: String, identity: String, name: String) async throws -> Binding?
    /// An identity's bindings by name, after the page's position.
    func bindings(team: String, identity: String, page: PageRequest) async throws -> [Binding]
    /// Every binding of an identity.
    func bindings(team: String, identity: String) async throws -> [Binding]
    /// Every binding in a cluster that is not being deleted.
    func bindings(cluster: String) async throws -> [Binding]
    /// Bindings in `cluster`/`namespace` that share the identity's AzureIdentity, other than `excluding`.
    func siblings(of binding: Binding) async throws -> [Binding]
    /// Replaces the selector if the generation is still `ifGeneration` (generation + 1, `pending`), with its job.
    func replaceBinding(_ binding: Binding, ifGeneration: Int64, job: NewJob, audit: @escaping @Sendable (Binding) -> AuditDraft) async throws -> Binding?
    /// Marks the binding `deleting` and queues its delete job; nil when the generation moved on.
    func markBindingDeleting(_ binding: Binding, ifGeneration: Int64, job: NewJob, audit: @escaping @Sendable (Binding) -> AuditDraft) async throws -> Binding?
    /// Records what a job observed or did.
    @discardableResult
    func updateBindingStatus(_ binding: Binding, _ update: BindingStatusUpdate, audit: [AuditDraft]) async throws -> Binding?
    /// Deletes the row with its audit events; when its identity is being deleted and this was its
    /// last binding, queues `identityDeletion` in the same transaction.
    func deleteBinding(_ binding: Binding, audit: [AuditDraft], identityDeletion: NewJob) async throws
    /// Queues jobs (each with its dedupe key) outside any other change.
    func enqueue(_ jobs: [NewJob]) async throws
}

/// The binding jobs.
public enum BindingJobs {
    /// Applies the AzureIdentity and the AzureIdentityBinding.
    public static let apply = "binding.apply"
    /// Removes them.
    public static let delete = "binding.delete"
    public static let all = [apply, delete]

    /// Jobs touching one AzureIdentity object (all bindings of an identity in one cluster and
    /// namespace) never run at once: the last binding's delete and a new binding's apply cannot race.
    public static func serialKey(_ binding: Binding) -> String {
        "k8s:\(binding.cluster)/\(binding.namespace)/\(binding.azureIdentityObjectName)"
    }

    static func payload(_ binding: Binding) -> JSONValue {
        .object(["team": .string(binding.team), "identity": .string(binding.identity), "binding": .string(binding.name)])
    }

    /// The apply job of a binding.
    public static func applying(_ binding: Binding, requestId: String?) -> NewJob {
        NewJob(kind: apply, team: binding.team, resourceType: "binding", resourceName: "\(binding.identity)/\(binding.name)",
               serialKey: serialKey(binding), dedupeKey: "binding:\(binding.team)/\(binding.identity)/\(binding.name)",
               payload: payload(binding), requestId: requestId, resource: binding.path)
    }

    /// The delete job of a binding.
    public static func deleting(_ binding: Binding, requestId: String?) -> NewJob {
        NewJob(kind: delete, team: binding.team, resourceType: "binding", resourceName: "\(binding.identity)/\(binding.name)",
               serialKey: serialKey(binding), dedupeKey: "binding-delete:\(binding.team)/\(binding.identity)/\(binding.name)",
               payload: payload(binding), requestId: requestId, resource: binding.path)
    }
}

/// The cluster connection check job.
public enum ClusterJobs {
    public static let check = "cluster.check"

    /// The check of `cluster`.
    public static func checking(_ cluster: Cluster, requestId: String?) -> NewJob {
        NewJob(kind: check, team: nil, resourceType: "cluster", resourceName: cluster.name, serialKey: "cluster:\(cluster.name)",
               dedupeKey: "cluster-check:\(cluster.name)", payload: .object(["cluster": .string(cluster.name)]), maxAttempts: 3,
               requestId: requestId, resource: "/v1/clusters/\(cluster.name)")
    }
}
