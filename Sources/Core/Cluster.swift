import Foundation

/// How podid reaches a cluster's API server.
public enum ClusterConnection: Sendable, Equatable, Codable {
    /// The service account of the pod podid runs in (podid runs inside this cluster).
    case inCluster
    /// A kubeconfig file on podid's machine, and optionally one of its contexts.
    case kubeconfig(path: String, context: String?)
    /// The cluster's `apiServer` with a bearer token read from a file (re-read when it rotates), and
    /// optionally a CA file.
    case token(tokenFile: String, caFile: String?)

    /// The mode's name on the wire.
    public var mode: String {
        switch self {
        case .inCluster: "inCluster"
        case .kubeconfig: "kubeconfig"
        case .token: "token"
        }
    }
}

/// AKS's kubelet identity (`az aks show --query identityProfile.kubeletidentity`), for health checks.
public struct KubeletIdentity: Sendable, Equatable, Codable {
    public var resourceId: String?
    public var clientId: String?
    public var objectId: String?

    /// Creates a kubelet identity.
    public init(resourceId: String? = nil, clientId: String? = nil, objectId: String? = nil) {
        self.resourceId = resourceId
        self.clientId = clientId
        self.objectId = objectId
    }
}

/// One permission podid needs in a cluster, as a SelfSubjectAccessReview answered it.
public struct ClusterPermission: Sendable, Equatable, Codable {
    public var verb: String
    public var resource: String
    /// Nil for cluster-wide.
    public var namespace: String?
    public var allowed: Bool

    /// Creates a permission result.
    public init(verb: String, resource: String, namespace: String?, allowed: Bool) {
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.allowed = allowed
    }
}

/// The result of the last connection check.
public struct ClusterStatus: Sendable, Equatable, Codable {
    public var reachable: Bool
    /// Whether all three aad-pod-identity kinds are served.
    public var crdsServed: Bool
    /// The aad-pod-identity kinds the server serves.
    public var servedKinds: [String]
    public var permissions: [ClusterPermission]
    /// The API server's version, when reachable.
    public var serverVersion: String?
    public var checkedAt: Date
    /// What is wrong and what to do, or that all is well.
    public var message: String

    /// Creates a status.
    public init(reachable: Bool, crdsServed: Bool, servedKinds: [String], permissions: [ClusterPermission],
                serverVersion: String?, checkedAt: Date, message: String) {
        self.reachable = reachable
        self.crdsServed = crdsServed
        self.servedKinds = servedKinds
        self.permissions = permissions
        self.serverVersion = serverVersion
        self.checkedAt = checkedAt
        self.message = message
    }
}

/// A managed cluster.
public struct Cluster: Sendable, Equatable, Codable {
    public var name: String
    /// The API server URL (required for `token` connections).
    public var apiServer: String?
    public var connection: ClusterConnection
    /// Where AzureIdentities and AzureIdentityBindings go by default (`aad-broker`).
    public var brokerNamespace: String
    /// `cluster` (MIC's default: bindings match pods in every namespace) or `namespaced`
    /// (`--forceNamespaced`: only pods in the binding's namespace).
    public var micMode: MICMode
    /// Whether the teams whose policies list this cluster are one tenant, who may see each other's
    /// pods' identities: only then may a `cluster`-mode cluster be in more than one team's policy.
    public var singleTeam: Bool
    public var nodeResourceGroup: String?
    public var kubeletIdentity: KubeletIdentity?
    public var status: ClusterStatus?
    /// The ETag; increases with every change.
    public var version: Int64
    public var createdAt: Date
    public var updatedAt: Date

    /// Creates a cluster.
    public init(name: String, apiServer: String?, connection: ClusterConnection, brokerNamespace: String = "aad-broker",
                micMode: MICMode = .cluster, singleTeam: Bool = false, nodeResourceGroup: String? = nil, kubeletIdentity: KubeletIdentity? = nil,
                status: ClusterStatus? = nil, version: Int64 = 1, createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.name = name
        self.apiServer = apiServer
        self.connection = connection
        self.brokerNamespace = brokerNamespace
        self.micMode = micMode
        self.singleTeam = singleTeam
        self.nodeResourceGroup = nodeResourceGroup
        self.kubeletIdentity = kubeletIdentity
        self.status = status
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// How MIC matches pods to bindings.
public enum MICMode: String, Sendable, Codable, CaseIterable {
    case cluster
    case namespaced
}

/// A partial change of a cluster (PATCH): present fields replace stored ones; `.some(nil)` clears an
/// optional one.
public struct ClusterPatch: Sendable, Equatable {
    public var apiServer: String??
    public var connection: ClusterConnection?
    public var brokerNamespace: String?
    public var micMode: MICMode?
    public var singleTeam: Bool?
    public var nodeResourceGroup: String??
    public var kubeletIdentity: KubeletIdentity??

    /// Creates a patch.
    public init(apiServer: String?? = nil, connection: ClusterConnection? = nil, brokerNamespace: String? = nil, micMode: MICMode? = nil,
                singleTeam: Bool? = nil, nodeResourceGroup: String?? = nil, kubeletIdentity: KubeletIdentity?? = nil) {
        self.apiServer = apiServer
        self.connection = connection
        self.brokerNamespace = brokerNamespace
        self.micMode = micMode
        self.singleTeam = singleTeam
        self.nodeResourceGroup = nodeResourceGroup
        self.kubeletIdentity = kubeletIdentity
    }
}

/// Connections to clusters' API servers.
public protocol KubernetesConnector: Sendable {
    /// The gateway for `cluster`; a connection that cannot be set up (a missing kubeconfig, say) is
    /// an `UpstreamError` naming what to fix.
    func gateway(for cluster: Cluster) async throws -> any KubernetesGateway
}

/// The directories podid reads cluster credential files from (`PODID_CLUSTER_CREDENTIALS_DIR`):
/// a kubeconfig, a token file, a CA file, and the files a kubeconfig names. Anything else is
/// refused, so that a cluster cannot be made to send one of podid's own secrets (its federated
/// token, say) to an API server as a bearer token.
public struct CredentialDirectories: Sendable, Equatable {
    /// Absolute directories without a trailing `/`.
    public let paths: [String]

    /// The directories; empty and relative entries are dropped, trailing slashes removed.
    public init(_ paths: [String]) {
        self.paths = paths.compactMap { raw in
            var path = raw.trimmingCharacters(in: .whitespaces)
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            return path.hasPrefix("/") && Self.isClean(path) ? path : nil
        }
    }

    /// Whether `path` is an absolute path without empty, `.` or `..` segments under one of the
    /// directories. Callers that read the file check the path with its symbolic links resolved too.
    public func allows(_ path: String) -> Bool {
        guard path.hasPrefix("/"), path.utf8.count <= 4096, Self.isClean(path) else { return false }
        return paths.contains { directory in directory == "/" || path.hasPrefix(directory + "/") }
    }

    /// What the 422 says.
    public func problem(_ path: String) -> String {
        paths.isEmpty
            ? "podid reads credential files only from the directories in PODID_CLUSTER_CREDENTIALS_DIR, and none is set; set it to where the credentials are mounted (such as /etc/podid/clusters)"
            : "must be a file under \(paths.joined(separator: " or ")) (PODID_CLUSTER_CREDENTIALS_DIR), without '.' or '..' segments; \(path) is not"
    }

    static func isClean(_ path: String) -> Bool {
        !path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
            || path == "/"
    }
}

/// The rules for clusters.
public enum ClusterRules {
    /// Checks a cluster's fields; a 422 names each field. Credential files must lie under
    /// `credentials`.
    public static func validate(_ cluster: Cluster, credentials: CredentialDirectories) throws {
        var validator = Validator()
        validator.check(Rules.isDNS1123Label(cluster.name, maxLength: 40), "name",
                        "must be a DNS-1123 label: 1 to 40 lower-case letters, digits or '-', starting and ending with a letter or digit")
        if let apiServer = cluster.apiServer {
            let url = URL(string: apiServer)
            validator.check(url?.scheme == "https" || url?.scheme == "http", "apiServer", "must be an http(s) URL such as https://my-aks-dns.hcp.westeurope.azmk8s.io:443")
            validator.check(url?.host?.isEmpty == false, "apiServer", "must name a host")
        }
        switch cluster.connection {
        case .inCluster:
            break
        case .kubeconfig(let path, let context):
            validator.check(path.hasPrefix("/") && path.count <= 4096, "connection.path", "must be an absolute path to a kubeconfig file on podid's machine")
            if path.hasPrefix("/") { validator.check(credentials.allows(path), "connection.path", credentials.problem(path)) }
            if let context { validator.check(Rules.isPlainText(context, maxLength: 253) && !context.isEmpty, "connection.context", "must be a context name from the kubeconfig") }
        case .token(let tokenFile, let caFile):
            validator.check(cluster.apiServer != nil, "apiServer", "is required for a token connection")
            validator.check(tokenFile.hasPrefix("/") && tokenFile.count <= 4096, "connection.tokenFile", "must be an absolute path to a file holding a bearer token")
            if tokenFile.hasPrefix("/") { validator.check(credentials.allows(tokenFile), "connection.tokenFile", credentials.problem(tokenFile)) }
            if let caFile {
                validator.check(caFile.hasPrefix("/") && caFile.count <= 4096, "connection.caFile", "must be an absolute path to a PEM file")
                if caFile.hasPrefix("/") { validator.check(credentials.allows(caFile), "connection.caFile", credentials.problem(caFile)) }
            }
        }
        validator.check(Rules.isDNS1123Label(cluster.brokerNamespace), "brokerNamespace", "must be a namespace name (a DNS-1123 label)")
        if let group = cluster.nodeResourceGroup {
            validator.check(Rules.isResourceGroupName(group), "nodeResourceGroup", "must be a resource group name such as MC_rg_cluster_westeurope")
        }
        if let kubelet = cluster.kubeletIdentity {
            validator.check(kubelet.resourceId != nil || kubelet.clientId != nil || kubelet.objectId != nil, "kubeletIdentity",
                            "needs at least one of resourceId, clientId, objectId (az aks show --query identityProfile.kubeletidentity)")
            if let id = kubelet.resourceId { validator.check(AzureIdentityRef(resourceId: id) != nil, "kubeletIdentity.resourceId", "must be a user-assigned identity id") }
            if let id = kubelet.clientId { validator.check(Rules.isGUID(id), "kubeletIdentity.clientId", "must be a GUID") }
            if let id = kubelet.objectId { validator.check(Rules.isGUID(id), "kubeletIdentity.objectId", "must be a GUID") }
        }
        try validator.throwIfInvalid()
    }

    /// The permissions podid needs in a cluster: writing the two kinds it manages in the broker
    /// namespace, and reading what health checks list.
    public static func requiredPermissions(brokerNamespace: String) -> [(String, KubeKind, String?)] {
        [
            ("get", .azureIdentity, brokerNamespace), ("patch", .azureIdentity, brokerNamespace), ("delete", .azureIdentity, brokerNamespace),
            ("get", .azureIdentityBinding, brokerNamespace), ("patch", .azureIdentityBinding, brokerNamespace),
            ("delete", .azureIdentityBinding, brokerNamespace),
            ("list", .azureIdentity, nil), ("list", .azureIdentityBinding, nil), ("list", .azureAssignedIdentity, nil), ("list", .pod, nil),
        ]
    }
}
