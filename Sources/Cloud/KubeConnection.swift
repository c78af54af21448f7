import Core
import Foundation
import Yams

/// Where a connection may read credential files: only under the configured directories
/// (`PODID_CLUSTER_CREDENTIALS_DIR`), checked on the path as given and with its symbolic links
/// resolved, so that a link cannot lead out of them; or anywhere (the in-cluster service account,
/// and tools that read a user's own kubeconfig).
public struct CredentialFiles: Sendable {
    let directories: CredentialDirectories?

    /// Files under `directories` only.
    public static func only(_ directories: CredentialDirectories) -> CredentialFiles { CredentialFiles(directories: directories) }
    /// Any file.
    public static let anywhere = CredentialFiles(directories: nil)

    /// The path to read: `path` with its links resolved, when the directories allow both.
    func checked(_ path: String, what: String) throws -> String {
        guard let directories else { return path }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        // The directories themselves may sit behind links (/tmp on some systems).
        let resolvedDirectories = CredentialDirectories(directories.paths.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path })
        guard directories.allows(path), directories.allows(resolved) || resolvedDirectories.allows(resolved) else {
            let link = resolved != path ? " (a link to \(resolved))" : ""
            let allowed = directories.paths.isEmpty ? "none is set" : directories.paths.joined(separator: ", ")
            throw KubeConfigError("\(what) \(path)\(link) is outside the credential directories (PODID_CLUSTER_CREDENTIALS_DIR: \(allowed)); podid reads cluster credentials only from there")
        }
        return resolved
    }

    /// The file's contents, or nil when it cannot be read.
    func contents(_ path: String, what: String) throws -> Data? {
        FileManager.default.contents(atPath: try checked(path, what: what))
    }
}

/// How podid reaches one cluster's API server: in-cluster service account, a kubeconfig context,
/// or an explicit URL and token file.
public struct KubeConnection: Sendable, Equatable {
    /// How requests authenticate.
    public enum Auth: Sendable, Equatable {
        /// No credentials (a plain-HTTP simulator).
        case none
        /// A fixed bearer token. Secret.
        case token(String)
        /// A bearer token re-read from a file (in-cluster tokens rotate).
        case tokenFile(String)
        /// A client certificate and key, PEM. Secret.
        case clientCertificate(certificate: [UInt8], key: [UInt8])
    }

    /// `https://host:port` (or `http://` for a simulator).
    public var server: String
    /// PEM certificates to trust for the server, instead of the system's.
    public var certificateAuthority: [UInt8]?
    /// Skip server certificate checks (tests only).
    public var insecureSkipTLSVerify: Bool
    /// How requests authenticate.
    public var auth: Auth
    /// The default namespace (from the context or the service account).
    public var namespace: String?

    /// Creates a connection.
    public init(server: String, certificateAuthority: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false, auth: Auth,
                namespace: String? = nil) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.certificateAuthority = certificateAuthority
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.auth = auth
        self.namespace = namespace
    }

    /// The in-cluster service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, and the token, CA and
    /// namespace files podid's pod mounts.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> KubeConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw KubeConfigError("in-cluster mode needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (is podid running in a pod?)")
        }
        let tokenFile = "\(directory)/token"
        guard FileManager.default.fileExists(atPath: tokenFile) else {
            throw KubeConfigError("in-cluster mode needs the service account token at \(tokenFile); is automountServiceAccountToken false?")
        }
        guard let ca = FileManager.default.contents(atPath: "\(directory)/ca.crt") else {
            throw KubeConfigError("in-cluster mode needs the cluster CA at \(directory)/ca.crt")
        }
        let namespace = (try? String(contentsOfFile: "\(directory)/namespace", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubeConnection(server: "https://\(hostPart):\(port)", certificateAuthority: Array(ca), auth: .tokenFile(tokenFile),
                              namespace: namespace)
    }

    /// An explicit server with a token file and an optional CA file.
    public static func tokenFile(server: String, tokenFile: String, caFile: String?, files: CredentialFiles) throws -> KubeConnection {
        guard URL(string: server)?.scheme.map({ ["http", "https"].contains($0) }) == true else {
            throw KubeConfigError("the API server must be an http(s) URL, got '\(server)'")
        }
        let tokenPath = try files.checked(tokenFile, what: "the token file")
        guard FileManager.default.fileExists(atPath: tokenPath) else { throw KubeConfigError("the token file \(tokenFile) does not exist") }
        var ca: [UInt8]?
        if let caFile {
            guard let data = try files.contents(caFile, what: "the CA file") else { throw KubeConfigError("the CA file \(caFile) cannot be read") }
            ca = Array(data)
        }
        return KubeConnection(server: server, certificateAuthority: ca, auth: .tokenFile(tokenPath))
    }

    /// A context of a kubeconfig file (its `current-context` when `context` is nil). Supports
    /// `certificate-authority(-data)`, `insecure-skip-tls-verify`, `token`, `tokenFile` and
    /// client certificates (data or files, relative to the file's directory).
    /// Every file it reads (the kubeconfig, and the files it names) must be allowed by `files`.
    public static func kubeconfig(path: String, context: String? = nil, files: CredentialFiles) throws -> KubeConnection {
        guard let data = try files.contents(path, what: "the kubeconfig"), let text = String(data: data, encoding: .utf8) else {
            throw KubeConfigError("cannot read the kubeconfig \(path)")
        }
        return try kubeconfig(text: text, directory: URL(fileURLWithPath: path).deletingLastPathComponent().path, context: context,
                              source: path, files: files)
    }

    /// Parses kubeconfig text; file paths in it are relative to `directory`. Errors never quote
    /// the text: a kubeconfig holds secrets, and the message ends up in the cluster's status.
    public static func kubeconfig(text: String, directory: String, context: String? = nil, source: String = "kubeconfig",
                                  files: CredentialFiles = .anywhere) throws -> KubeConnection {
        let document: [String: Any]
        do {
            guard let parsed = try Yams.load(yaml: text) as? [String: Any] else { throw KubeConfigError("\(source) is not a YAML mapping") }
            document = parsed
        } catch let error as KubeConfigError {
            throw error
        } catch {
            throw KubeConfigError("\(source) is not valid YAML; check it with `kubectl config view --kubeconfig \(source)`")
        }
        func named(_ list: String, _ name: String) -> [String: Any]? {
            (document[list] as? [[String: Any]])?.first { ($0["name"] as? String) == name }
        }
        guard let contextName = context ?? (document["current-context"] as? String), !contextName.isEmpty else {
            throw KubeConfigError("\(source) has no current-context; name a context")
        }
        guard let contextEntry = named("contexts", contextName)?["context"] as? [String: Any] else {
            let known = ((document["contexts"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
            throw KubeConfigError("\(source) has no context '\(contextName)' (it has: \(known.joined(separator: ", ")))")
        }
        guard let clusterName = contextEntry["cluster"] as? String, let cluster = named("clusters", clusterName)?["cluster"] as? [String: Any] else {
            throw KubeConfigError("context '\(contextName)' in \(source) names a cluster that is not defined")
        }
        guard let server = cluster["server"] as? String, !server.isEmpty else {
            throw KubeConfigError("cluster '\(clusterName)' in \(source) has no server")
        }
        func file(_ value: String) -> String { value.hasPrefix("/") ? value : "\(directory)/\(value)" }
        func bytes(data: String?, file path: String?, what: String) throws -> [UInt8]? {
            if let data {
                guard let decoded = Data(base64Encoded: data.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw KubeConfigError("\(what) in \(source) is not base64")
                }
                return Array(decoded)
            }
            if let path {
                guard let contents = try files.contents(file(path), what: "the \(what) file") else {
                    throw KubeConfigError("\(what) file \(file(path)) in \(source) cannot be read")
                }
                return Array(contents)
            }
            return nil
        }
        let ca = try bytes(data: cluster["certificate-authority-data"] as? String, file: cluster["certificate-authority"] as? String,
                           what: "certificate-authority of cluster '\(clusterName)'")
        let insecure = cluster["insecure-skip-tls-verify"] as? Bool ?? false
        var auth = Auth.none
        if let userName = contextEntry["user"] as? String {
            guard let user = named("users", userName)?["user"] as? [String: Any] else {
                throw KubeConfigError("context '\(contextName)' in \(source) names a user '\(userName)' that is not defined")
            }
            if let token = user["token"] as? String {
                auth = .token(token)
            } else if let tokenFile = user["tokenFile"] as? String {
                auth = .tokenFile(try files.checked(file(tokenFile), what: "the tokenFile of user '\(userName)'"))
            } else if let certificate = try bytes(data: user["client-certificate-data"] as? String, file: user["client-certificate"] as? String,
                                                  what: "client-certificate of user '\(userName)'") {
                guard let key = try bytes(data: user["client-key-data"] as? String, file: user["client-key"] as? String,
                                          what: "client-key of user '\(userName)'")
                else { throw KubeConfigError("user '\(userName)' in \(source) has a client certificate but no client key") }
                auth = .clientCertificate(certificate: certificate, key: key)
            } else if user["exec"] != nil || user["auth-provider"] != nil {
                throw KubeConfigError("user '\(userName)' in \(source) uses an exec or auth-provider plugin, which podid does not run; use a token, token file or client certificate")
            }
        }
        return KubeConnection(server: server, certificateAuthority: ca, insecureSkipTLSVerify: insecure, auth: auth,
                              namespace: contextEntry["namespace"] as? String)
    }
}

/// A connection that cannot be set up, saying what to fix.
public struct KubeConfigError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
