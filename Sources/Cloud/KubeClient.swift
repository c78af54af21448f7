import AsyncHTTPClient
import Core
import Foundation
import NIOHTTP1
import NIOSSL

/// The reasons of Kubernetes `Status` errors podid acts on.
public enum KubeReason: String, Sendable {
    case notFound = "NotFound"
    case alreadyExists = "AlreadyExists"
    case conflict = "Conflict"
    case invalid = "Invalid"
    case forbidden = "Forbidden"
    case unauthorized = "Unauthorized"
    case tooManyRequests = "TooManyRequests"
    case expired = "Expired"
    case gone = "Gone"
    case badRequest = "BadRequest"
    /// A plain-text 404: the API server does not serve the kind at all (CRD not installed).
    case resourceNotServed = "ResourceNotServed"
}

extension UpstreamError {
    /// The Kubernetes reason, for errors from an API server.
    public var kubeReason: KubeReason? {
        service == .kubernetes ? KubeReason(rawValue: code) : nil
    }
}

/// A Kubernetes API client for one cluster: server-side apply, get, delete with preconditions,
/// paged lists, discovery of the aad-pod-identity CRDs and SelfSubjectAccessReview.
public final class KubeClient: KubernetesGateway {
    let connection: KubeConnection
    let http: HTTPClient
    let transport: HTTPTransport
    let tokens: FileTokenSource?
    /// podid's field manager for server-side apply.
    public static let fieldManager = "podid"
    /// Items per list page.
    let pageSize: Int

    /// A client for `connection`; call `shutdown()` when done.
    public init(connection: KubeConnection, pageSize: Int = 500) throws {
        self.connection = connection
        self.pageSize = pageSize
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = connection.certificateAuthority {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            } catch {
                throw KubeConfigError("the cluster CA is not valid PEM: \(error)")
            }
        }
        if connection.insecureSkipTLSVerify { tls.certificateVerification = .none }
        if case .clientCertificate(let certificate, let key) = connection.auth {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            } catch {
                throw KubeConfigError("the client certificate or key is not valid PEM: \(error)")
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        // Every worker may be applying objects to this cluster at once (the default is 8 per host).
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        transport = HTTPTransport(client: http, service: .kubernetes)
        if case .tokenFile(let path) = connection.auth { tokens = FileTokenSource(path: path) } else { tokens = nil }
    }

    /// Closes the HTTP client.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: KubernetesGateway

    public func apply(_ kind: KubeKind, _ object: JSONValue, force: Bool) async throws -> KubeObject {
        let name = object.at("metadata", "name")?.stringValue ?? ""
        let namespace = object.at("metadata", "namespace")?.stringValue
        let url = path(kind, namespace: namespace, name: name) + "?fieldManager=\(Self.fieldManager)" + (force ? "&force=true" : "")
        let answer = try await send(.PATCH, url, body: Self.body(object), contentType: "application/apply-patch+yaml")
        return try Self.object(answer)
    }

    public func get(_ kind: KubeKind, namespace: String?, name: String) async throws -> KubeObject? {
        do {
            return try Self.object(try await send(.GET, path(kind, namespace: namespace, name: name)))
        } catch let error as UpstreamError where error.kubeReason == .notFound {
            return nil
        }
    }

    public func delete(_ kind: KubeKind, namespace: String?, name: String, uid: String?) async throws -> DeleteOutcome {
        var options: [String: JSONValue] = ["kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"]
        if let uid { options["preconditions"] = .object(["uid": .string(uid)]) }
        do {
            let answer = try await send(.DELETE, path(kind, namespace: namespace, name: name),
                                        body: Self.body(.object(options)), contentType: "application/json")
            return DeleteOutcome(existed: true, requestId: answer.header("Audit-Id"))
        } catch let error as UpstreamError where error.kubeReason == .notFound {
            return DeleteOutcome(existed: false, requestId: error.requestId)
        }
    }

    public func list(_ kind: KubeKind, namespace: String?, labelSelector: String?) async throws -> [KubeObject] {
        try await list(kind, namespace: namespace, labelSelector: labelSelector, as: { $0 })
    }

    public func list<T: Sendable>(_ kind: KubeKind, namespace: String?, labelSelector: String?,
                                  as transform: @Sendable (KubeObject) -> T) async throws -> [T] {
        // A continue token that expired mid-list (410) means starting over; a few times at most.
        for _ in 0..<3 {
            do {
                return try await listOnce(kind, namespace: namespace, labelSelector: labelSelector, transform)
            } catch let error as UpstreamError where error.status == 410 {
                continue
            }
        }
        return try await listOnce(kind, namespace: namespace, labelSelector: labelSelector, transform)
    }

    func listOnce<T>(_ kind: KubeKind, namespace: String?, labelSelector: String?,
                     _ transform: (KubeObject) -> T) async throws -> [T] {
        var items: [T] = []
        var token: String?
        repeat {
            var query = ["limit=\(pageSize)"]
            if let labelSelector { query.append("labelSelector=\(formEncode(labelSelector))") }
            if let token { query.append("continue=\(formEncode(token))") }
            let answer = try await send(.GET, path(kind, namespace: namespace, name: nil) + "?" + query.joined(separator: "&"))
            guard let json = answer.json else { throw Self.unexpected(answer, "a list that is not JSON") }
            if case .array(let list)? = json.at("items") { items += list.map { transform(KubeObject($0)) } }
            token = json.at("metadata", "continue")?.stringValue
            if token?.isEmpty == true { token = nil }
        } while token != nil
        return items
    }

    public func servedPodIdentityKinds() async throws -> Set<String> {
        do {
            let answer = try await send(.GET, "/apis/aadpodidentity.k8s.io/v1")
            guard case .array(let resources)? = answer.json?.at("resources") else { return [] }
            return Set(resources.compactMap { $0.at("name")?.stringValue })
        } catch let error as UpstreamError where error.status == 404 {
            return []
        }
    }

    public func canI(_ verb: String, _ kind: KubeKind, namespace: String?) async throws -> Bool {
        var attributes: [String: JSONValue] = ["verb": .string(verb), "group": .string(kind.group), "resource": .string(kind.plural)]
        if let namespace { attributes["namespace"] = .string(namespace) }
        let review = JSONValue.object([
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": .object(["resourceAttributes": .object(attributes)]),
        ])
        let answer = try await send(.POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                    body: Self.body(review), contentType: "application/json")
        return answer.json?.at("status", "allowed") == .bool(true)
    }

    public func serverVersion() async throws -> String {
        let answer = try await send(.GET, "/version")
        return answer.json?.at("gitVersion")?.stringValue ?? "unknown"
    }

    // MARK: transport

    /// A request body. Apply bodies are sent as `application/apply-patch+yaml`, which kube-apiserver
    /// reads with a YAML 1.1 parser: JSON is YAML there only without the `\/` escape, which YAML 1.1
    /// lacks and `JSONEncoder` writes by default (every resource id has slashes). One encoding for
    /// every body keeps that rule in one place.
    static func body(_ value: JSONValue) -> [UInt8] {
        Array(value.canonicalText.utf8)
    }

    /// The path of a kind, namespace and name.
    func path(_ kind: KubeKind, namespace: String?, name: String?) -> String {
        let base = kind.group.isEmpty ? "/api/\(kind.version)" : "/apis/\(kind.group)/\(kind.version)"
        var scoped = base
        if kind.namespaced, let namespace { scoped += "/namespaces/\(Self.segment(namespace))" }
        return "\(scoped)/\(kind.plural)" + (name.map { "/\(Self.segment($0))" } ?? "")
    }

    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// One request; a 401 with a token file re-reads the token and tries once more.
    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, contentType: String? = nil) async throws -> HTTPExchange {
        var answer = try await attempt(method, path, body: body, contentType: contentType)
        if answer.status == 401, let tokens {
            await tokens.invalidate()
            answer = try await attempt(method, path, body: body, contentType: contentType)
        }
        guard (200..<300).contains(answer.status) else { throw Self.classify(answer) }
        return answer
    }

    func attempt(_ method: HTTPMethod, _ path: String, body: [UInt8]?, contentType: String?) async throws -> HTTPExchange {
        var headers = [("Accept", "application/json"), ("User-Agent", "podid/1.0")]
        if let contentType { headers.append(("Content-Type", contentType)) }
        switch connection.auth {
        case .token(let token): headers.append(("Authorization", "Bearer \(token)"))
        case .tokenFile:
            if let token = try await tokens?.token() { headers.append(("Authorization", "Bearer \(token)")) }
        case .none, .clientCertificate: break
        }
        return try await transport.send(method, connection.server + path, headers: headers, body: body)
    }

    /// A `Status` body (or a plain-text answer) as an UpstreamError: retryable for 429, 5xx and
    /// server timeouts, with `Retry-After` from the header or `details.retryAfterSeconds`.
    static func classify(_ answer: HTTPExchange) -> UpstreamError {
        let json = answer.json
        let isStatus = json?.at("kind")?.stringValue == "Status"
        var reason = isStatus ? (json?.at("reason")?.stringValue ?? "Unknown") : "HTTP\(answer.status)"
        if answer.status == 404 && !isStatus { reason = KubeReason.resourceNotServed.rawValue }
        if answer.status == 429 && !isStatus { reason = KubeReason.tooManyRequests.rawValue }
        let message = isStatus ? (json?.at("message")?.stringValue ?? "") : answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let retryAfter = HTTPTransport.retryAfter(answer.header("Retry-After"))
            ?? json?.at("details", "retryAfterSeconds")?.intValue.map { Duration.seconds($0) }
        let retryable = answer.status == 429 || answer.status >= 500 || reason == "ServerTimeout" || reason == "Timeout"
        return UpstreamError(service: .kubernetes, status: answer.status, code: reason,
                             message: message.isEmpty ? "HTTP \(answer.status)" : message, retryable: retryable,
                             retryAfter: retryAfter, requestId: answer.header("Audit-Id"))
    }

    static func object(_ answer: HTTPExchange) throws -> KubeObject {
        guard let json = answer.json else { throw unexpected(answer, "an object that is not JSON") }
        return KubeObject(json)
    }

    static func unexpected(_ answer: HTTPExchange, _ what: String) -> UpstreamError {
        UpstreamError(service: .kubernetes, status: answer.status, code: "UnexpectedResponse",
                      message: "the API server answered \(what)", retryable: false)
    }
}

/// A bearer token read from a file, re-read at most once a minute and at once after a 401, as
/// client-go does for rotating service-account tokens.
actor FileTokenSource {
    let path: String
    var cached: (token: String, readAt: ContinuousClock.Instant)?

    init(path: String) {
        self.path = path
    }

    func token() throws -> String {
        if let cached, ContinuousClock.now - cached.readAt < .seconds(60) { return cached.token }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UpstreamError(service: .kubernetes, status: nil, code: "TokenFileUnreadable",
                                message: "cannot read the token file \(path)", retryable: true)
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        cached = (token, .now)
        return token
    }

    func invalidate() {
        cached = nil
    }
}
