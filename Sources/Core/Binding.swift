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

/// The names podid gives Kubernetes objects and selectors; docs/bindings.md, "Names and ownership".
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
