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
    /// The naming scheme (`KubeNames.Scheme`) of the objects in the cluster: where they are.
    /// Bindings from before the current scheme move to it with their next apply.
    public var objectNaming: KubeNames.Scheme
    public var createdAt: Date
    public var updatedAt: Date
    /// The latest assignment health (nil until a sweep looked).
    public var health: HealthStatus?

    /// Creates a binding.
    public init(team: String, identity: String, name: String, cluster: String, namespace: String, selector: String,
                state: ResourceState = .pending, message: String? = nil, lastError: String? = nil, generation: Int64 = 1,
                observedGeneration: Int64 = 0, appliedClientId: String? = nil, objectNaming: KubeNames.Scheme = .current,
                createdAt: Date = Date(), updatedAt: Date = Date(), health: HealthStatus? = nil) {
        self.objectNaming = objectNaming
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
    /// The AzureIdentity object's name (under `objectNaming`, where the objects are).
    public var azureIdentityObjectName: String { KubeNames.azureIdentity(team: team, identity: identity, scheme: objectNaming) }
    /// The AzureIdentityBinding object's name (under `objectNaming`).
    public var bindingObjectName: String {
        KubeNames.azureIdentityBinding(team: team, identity: identity, binding: name, scheme: objectNaming)
    }
    /// The binding as its next apply writes it: under the current naming scheme.
    public var underCurrentNaming: Binding {
        var binding = self
        binding.objectNaming = .current
        return binding
    }

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
    /// How object names are made. Stored with each binding, so podid knows where its objects are.
    public enum Scheme: Int, Sendable, Codable, Comparable, CaseIterable {
        /// `<team>-<identity>` and `<team>-<identity>-<binding>`: names of different teams collide
        /// (`data` + `platform-etl` = `data-platform` + `etl`). Only read, to move objects off it.
        case joined = 1
        /// The readable join, cut to 49 characters, then `-` and 13 base32 characters of the SHA-256
        /// of the exact names separated by `/` (which no name contains): distinct teams, identities
        /// or bindings never share an object name.
        case hashed = 2

        /// The scheme new objects get.
        public static let current = Scheme.hashed

        public static func < (lhs: Scheme, rhs: Scheme) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The AzureIdentity of `identity` of `team`.
    public static func azureIdentity(team: String, identity: String, scheme: Scheme = .current) -> String {
        switch scheme {
        case .joined: objectName("\(team)-\(identity)")
        case .hashed: hashedName(readable: "\(team)-\(identity)", parts: [team, identity])
        }
    }

    /// The AzureIdentityBinding of `binding`.
    public static func azureIdentityBinding(team: String, identity: String, binding: String, scheme: Scheme = .current) -> String {
        switch scheme {
        case .joined: objectName("\(team)-\(identity)-\(binding)")
        case .hashed: hashedName(readable: "\(team)-\(identity)-\(binding)", parts: [team, identity, binding])
        }
    }

    /// A readable prefix and a digest of the exact parts: at most 63 characters of `[a-z0-9-]`.
    static func hashedName(readable: String, parts: [String]) -> String {
        var prefix = String(objectName(readable).prefix(49))
        while prefix.hasSuffix("-") { prefix.removeLast() }
        let digest = Array(SHA256.hash(data: Data(parts.joined(separator: "/").utf8)))
        return (prefix.isEmpty ? "" : prefix + "-") + base32(digest).prefix(13)
    }

    /// RFC 4648 base32 in lower case, without padding.
    static func base32(_ bytes: [UInt8]) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var output = ""
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return output
    }

    /// A default selector nobody can guess: the binding's name (cut to 49 characters), `-` and 13
    /// random base32 characters. A selector is what a pod sets to receive the identity, so in
    /// `cluster` MIC mode a guessable one would be an invitation.
    public static func defaultSelector(binding: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<10).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var prefix = String(objectName(binding).prefix(49))
        while prefix.hasSuffix("-") { prefix.removeLast() }
        return (prefix.isEmpty ? "" : prefix + "-") + base32(random).prefix(13)
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
