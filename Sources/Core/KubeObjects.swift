import Foundation

/// A kind of Kubernetes object podid works with.
public struct KubeKind: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    /// Creates a kind.
    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool = true) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    /// `aadpodidentity.k8s.io/v1` or `v1`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    public static let azureIdentity = KubeKind(group: "aadpodidentity.k8s.io", version: "v1", plural: "azureidentities", kind: "AzureIdentity")
    public static let azureIdentityBinding = KubeKind(group: "aadpodidentity.k8s.io", version: "v1", plural: "azureidentitybindings", kind: "AzureIdentityBinding")
    public static let azureAssignedIdentity = KubeKind(group: "aadpodidentity.k8s.io", version: "v1", plural: "azureassignedidentities", kind: "AzureAssignedIdentity")
    public static let pod = KubeKind(group: "", version: "v1", plural: "pods", kind: "Pod")
    public static let namespace = KubeKind(group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false)
    /// An object of this kind with podid's metadata and `spec`, as podid applies it.
    public func manifest(name: String, namespace: String, labels: [String: String], spec: [String: JSONValue]) -> JSONValue {
        .object([
            "apiVersion": .string(apiVersion), "kind": .string(kind),
            "metadata": .object(["name": .string(name), "namespace": .string(namespace), "labels": .object(labels.mapValues { .string($0) })]),
            "spec": .object(spec),
        ])
    }

    /// The aad-pod-identity kinds podid needs served.
    public static let podIdentityKinds: [KubeKind] = [.azureIdentity, .azureIdentityBinding, .azureAssignedIdentity]
}

/// A Kubernetes object as the API server returned it.
public struct KubeObject: Sendable, Equatable {
    /// The whole object.
    public var json: JSONValue

    /// Wraps an object.
    public init(_ json: JSONValue) {
        self.json = json
    }

    public var name: String { json.at("metadata", "name")?.stringValue ?? "" }
    public var namespace: String? { json.at("metadata", "namespace")?.stringValue }
    public var uid: String? { json.at("metadata", "uid")?.stringValue }
    public var resourceVersion: String? { json.at("metadata", "resourceVersion")?.stringValue }
    public var labels: [String: String] { json.at("metadata", "labels")?.stringMap ?? [:] }
    public var deletionTimestamp: String? { json.at("metadata", "deletionTimestamp")?.stringValue }
}

extension JSONValue {
    /// The member at a path of object keys.
    public func at(_ path: String...) -> JSONValue? {
        var current: JSONValue? = self
        for key in path {
            guard case .object(let members)? = current else { return nil }
            current = members[key]
        }
        return current
    }

    /// The string, if this is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The whole number, if this is one.
    public var intValue: Int? {
        if case .number(let value) = self, value == value.rounded() { return Int(value) }
        return nil
    }

    /// A string map (labels, tags); other values are skipped.
    public var stringMap: [String: String] {
        guard case .object(let members) = self else { return [:] }
        return members.compactMapValues(\.stringValue)
    }

    /// The object's members.
    public var members: [String: JSONValue] {
        if case .object(let members) = self { return members }
        return [:]
    }
}

/// Keys of an object that differ only in case from the keys aad-pod-identity ≥ 1.6 reads (or are
/// capitalised): on a cluster with the schema-less CRD they survive, and MIC silently ignores them.
func legacyKeys(in object: JSONValue?, known: Set<String>, path: String) -> [String] {
    guard let members = object?.members else { return [] }
    let lowered = Dictionary(known.map { ($0.lowercased(), $0) }) { a, _ in a }
    return members.keys.sorted().compactMap { key in
        if known.contains(key) { return nil }
        if lowered[key.lowercased()] != nil || key.first?.isUppercase == true { return "\(path).\(key)" }
        return nil
    }
}

/// The podid-owned labels on every object it writes.
public enum PodidLabels {
    public static let managedBy = "app.kubernetes.io/managed-by"
    public static let team = "podid.io/team"
    public static let identity = "podid.io/identity"
    public static let binding = "podid.io/binding"
}

/// An AzureIdentity (the fields podid uses).
public struct AzureIdentityObject: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    /// 0 user-assigned managed identity, 1 service principal, 2 service principal certificate.
    public var type: Int
    public var resourceID: String
    public var clientID: String
    /// Capitalised or mis-cased keys found when decoding (`spec.ResourceID`…).
    public var legacyKeys: [String]

    /// Creates an AzureIdentity for a user-assigned identity.
    public init(name: String, namespace: String, labels: [String: String], resourceID: String, clientID: String) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.type = 0
        self.resourceID = resourceID
        self.clientID = clientID
        self.legacyKeys = []
    }

    /// Reads an object, noticing legacy keys instead of ignoring them.
    public init(_ object: KubeObject) {
        name = object.name
        namespace = object.namespace ?? ""
        labels = object.labels
        let spec = object.json.at("spec")
        type = spec?.at("type")?.intValue ?? 0
        resourceID = spec?.at("resourceID")?.stringValue ?? ""
        clientID = spec?.at("clientID")?.stringValue ?? ""
        legacyKeys = Core.legacyKeys(
            in: spec, known: ["type", "resourceID", "clientID", "clientPassword", "tenantID", "auxiliaryTenantIDs", "adResourceID", "adEndpoint", "replicas", "metadata"],
            path: "spec")
    }

    /// The object to apply: only the lower-camel keys aad-pod-identity ≥ 1.6 reads.
    public var json: JSONValue {
        KubeKind.azureIdentity.manifest(
            name: name, namespace: namespace, labels: labels,
            spec: ["type": .number(Double(type)), "resourceID": .string(resourceID), "clientID": .string(clientID)])
    }
}

/// An AzureIdentityBinding (the fields podid uses).
public struct AzureIdentityBindingObject: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    /// The AzureIdentity's name, in the binding's namespace.
    public var azureIdentity: String
    /// The value of the pods' `aadpodidbinding` label.
    public var selector: String
    /// Capitalised or mis-cased keys found when decoding (`spec.Selector`…).
    public var legacyKeys: [String]

    /// Creates a binding.
    public init(name: String, namespace: String, labels: [String: String], azureIdentity: String, selector: String) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.azureIdentity = azureIdentity
        self.selector = selector
        self.legacyKeys = []
    }

    /// Reads an object, noticing legacy keys.
    public init(_ object: KubeObject) {
        name = object.name
        namespace = object.namespace ?? ""
        labels = object.labels
        let spec = object.json.at("spec")
        azureIdentity = spec?.at("azureIdentity")?.stringValue ?? ""
        selector = spec?.at("selector")?.stringValue ?? ""
        legacyKeys = Core.legacyKeys(in: spec, known: ["azureIdentity", "selector", "weight", "metadata"], path: "spec")
    }

    /// The object to apply: only lower-camel keys.
    public var json: JSONValue {
        KubeKind.azureIdentityBinding.manifest(
            name: name, namespace: namespace, labels: labels,
            spec: ["azureIdentity": .string(azureIdentity), "selector": .string(selector)])
    }
}

/// An AzureAssignedIdentity, which MIC writes (read only for podid).
public struct AzureAssignedIdentityObject: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var pod: String
    public var podNamespace: String
    public var nodeName: String
    public var identityName: String
    public var identityNamespace: String
    public var identityClientID: String
    public var bindingName: String
    /// `Created`, `Assigned` or `Unassigned` (empty from old MIC versions).
    public var status: String
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    /// Pre-1.6 keys found (`Status`, `spec.azureidentityref`…).
    public var legacyKeys: [String]

    /// Reads an object.
    public init(_ object: KubeObject) {
        name = object.name
        namespace = object.namespace ?? ""
        let spec = object.json.at("spec")
        pod = spec?.at("pod")?.stringValue ?? ""
        podNamespace = spec?.at("podNamespace")?.stringValue ?? ""
        nodeName = spec?.at("nodename")?.stringValue ?? ""
        identityName = spec?.at("azureIdentityRef", "metadata", "name")?.stringValue ?? ""
        identityNamespace = spec?.at("azureIdentityRef", "metadata", "namespace")?.stringValue ?? ""
        identityClientID = spec?.at("azureIdentityRef", "spec", "clientID")?.stringValue ?? ""
        bindingName = spec?.at("azureBindingRef", "metadata", "name")?.stringValue ?? ""
        status = object.json.at("status", "status")?.stringValue ?? ""
        creationTimestamp = object.json.at("metadata", "creationTimestamp")?.stringValue
        deletionTimestamp = object.deletionTimestamp
        legacyKeys = Core.legacyKeys(in: object.json, known: ["apiVersion", "kind", "metadata", "spec", "status"], path: "")
            .map { String($0.dropFirst()) }
            + Core.legacyKeys(in: spec, known: ["azureIdentityRef", "azureBindingRef", "pod", "podNamespace", "nodename", "replicas", "metadata"], path: "spec")
    }
}

/// A pod (the fields podid uses).
public struct PodObject: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    public var nodeName: String?
    public var phase: String
    /// Whether the Ready condition is True.
    public var ready: Bool
    public var creationTimestamp: String?

    /// Reads a pod.
    public init(_ object: KubeObject) {
        name = object.name
        namespace = object.namespace ?? ""
        labels = object.labels
        nodeName = object.json.at("spec", "nodeName")?.stringValue
        phase = object.json.at("status", "phase")?.stringValue ?? ""
        let conditions: [JSONValue]
        if case .array(let list)? = object.json.at("status", "conditions") { conditions = list } else { conditions = [] }
        ready = conditions.contains { $0.at("type")?.stringValue == "Ready" && $0.at("status")?.stringValue == "True" }
        creationTimestamp = object.json.at("metadata", "creationTimestamp")?.stringValue
    }

    /// The `aadpodidbinding` label.
    public var selector: String? { labels["aadpodidbinding"] }
}

/// The Kubernetes calls podid makes on one cluster; implemented by `KubeClient` in the Cloud target.
public protocol KubernetesGateway: Sendable {
    /// Server-side apply with field manager `podid`; `force` only for objects podid owns.
    func apply(_ kind: KubeKind, _ object: JSONValue, force: Bool) async throws -> KubeObject
    /// The object, or nil when it does not exist.
    func get(_ kind: KubeKind, namespace: String?, name: String) async throws -> KubeObject?
    /// Deletes an object, only if its uid is still `uid` when given.
    func delete(_ kind: KubeKind, namespace: String?, name: String, uid: String?) async throws -> DeleteOutcome
    /// Every object of a kind (in one namespace, or all), paging through `continue` tokens.
    func list(_ kind: KubeKind, namespace: String?, labelSelector: String?) async throws -> [KubeObject]
    /// The same list, each page turned into `T` as it arrives, so that a large list (the pods of
    /// a cluster) is never held as JSON all at once.
    func list<T: Sendable>(_ kind: KubeKind, namespace: String?, labelSelector: String?,
                           as transform: @Sendable (KubeObject) -> T) async throws -> [T]
    /// The plurals of `aadpodidentity.k8s.io/v1` the server serves (empty when the CRDs are not installed).
    func servedPodIdentityKinds() async throws -> Set<String>
    /// Whether podid may do `verb` on a kind (SelfSubjectAccessReview).
    func canI(_ verb: String, _ kind: KubeKind, namespace: String?) async throws -> Bool
    /// The API server's version (`/version`'s `gitVersion`): proves it is reachable.
    func serverVersion() async throws -> String
}

extension KubernetesGateway {
    public func list<T: Sendable>(_ kind: KubeKind, namespace: String?, labelSelector: String?,
                                  as transform: @Sendable (KubeObject) -> T) async throws -> [T] {
        try await list(kind, namespace: namespace, labelSelector: labelSelector).map(transform)
    }
}
