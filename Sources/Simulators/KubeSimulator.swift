import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Yams

/// A local Kubernetes API server: discovery (enough for kubectl), namespaces, pods, service accounts,
/// events, config maps, secrets, deployments and replica sets (with the controllers and garbage
/// collector of `KubeSimulator+Controllers.swift`) and the aad-pod-identity custom resources, with
/// resourceVersions, Status errors, label and field selectors, paging, merge / strategic-merge /
/// JSON patches, server-side apply, a SelfSubjectAccessReview, and a simulated MIC (see
/// `KubeSimulator+MIC.swift`).
public final class KubeSimulator: Sendable {
    /// Settings and fault switches, changed at run time through `/_sim/settings`.
    public struct Settings: Sendable, Codable, Equatable {
        /// Whether the simulated MIC runs (its pods exist) — a stopped MIC leaves assignments alone.
        public var micRunning = true
        /// `cluster` (match pods in every namespace) or `namespaced` (MIC's --forceNamespaced).
        public var micMode = "cluster"
        /// Milliseconds before a `Created` assignment becomes `Assigned`.
        public var assignDelayMs = 1000
        /// Identities (AzureIdentity names, client ids or resource ids) whose assignments stay
        /// `Created`, as when the cluster lacks Managed Identity Operator on them.
        public var stuckIdentities: [String] = []
        /// Nodes whose NMI pod is not ready (`*` for all).
        public var nmiNotReadyNodes: [String] = []
        /// Verbs (`verb`, or `resource:verb`) SelfSubjectAccessReview denies.
        public var deniedVerbs: [String] = []
        /// Whether the aad-pod-identity CRDs are served at all.
        public var crdsServed = true
        /// Keep keys the schema does not know (a cluster still on the schema-less v1beta1 CRD).
        public var preserveUnknownFields = false
        /// Seconds a `continue` token stays valid.
        public var continueTTLSeconds = 300
        /// Fault rules by operation (`pods.list`, `azureidentities.create`, `*`…).
        public var faults: [SimFaultRule] = []
        /// Whether a request without a bearer token is refused (401). Off by default because the
        /// simulator listens on plain HTTP, and kubectl (client-go) never sends credentials over
        /// plain HTTP; such requests are served as kube-apiserver's old insecure port served them.
        /// A wrong token is always refused.
        public var requireToken = false

        public init() {}
    }

    let store: SimStore
    let settings: Mutex<Settings>
    /// The resourceVersion and time of the MIC's last pass (nil: pass at once).
    let micDue = Mutex<(resourceVersion: String, at: ContinuousClock.Instant)?>(nil)
    let resources: [KubeResource]
    /// Bearer tokens accepted.
    let tokens: Set<String>
    /// The requests answered.
    public let requestLog = SimRequestLog()
    /// Asks the Azure side whether an identity exists with this resource id and client id.
    let identityExists: @Sendable (_ resourceID: String, _ clientID: String) -> Bool
    /// The simulated nodes.
    public static let nodes = ["aks-nodepool1-12345678-vmss000000", "aks-nodepool1-12345678-vmss000001"]
    /// The namespace of MIC and NMI.
    public let brokerNamespace: String

    /// A simulator with state in `store`.
    public init(store: SimStore, tokens: Set<String> = ["dev"], brokerNamespace: String = "aad-broker",
                settings: Settings = Settings(),
                identityExists: @escaping @Sendable (String, String) -> Bool) throws {
        self.store = store
        self.tokens = tokens
        self.brokerNamespace = brokerNamespace
        self.settings = Mutex(settings)
        self.resources = KubeSchema.core + (try KubeSchema.customResources())
        self.identityExists = identityExists
    }

    /// The current settings.
    public var currentSettings: Settings { settings.withLock { $0 } }

    /// Changes the settings; what they say about the broker's pods (MIC running, NMI readiness)
    /// takes effect at once, as through `PATCH /_sim/settings`.
    public func configure(_ change: (inout Settings) -> Void) {
        settings.withLock { change(&$0) }
        micDue.withLock { $0 = nil }
        reconcileBrokerPods()
    }

    /// The HTTP responder.
    public func responder() -> CallbackResponder<BasicRequestContext> {
        CallbackResponder { request, _ in await self.handle(request) }
    }

    // MARK: store helpers

    static func key(_ plural: String, _ namespace: String?, _ name: String) -> String {
        "\(plural)|\(namespace ?? "")|\(name)"
    }

    /// The object with that name, if any.
    public func object(_ plural: String, namespace: String?, name: String) -> JSON? {
        store.get("objects", Self.key(plural, namespace, name))
    }

    /// Every object of a kind (in one namespace when given), by key order.
    public func objects(_ plural: String, namespace: String? = nil) -> [JSON] {
        let prefix = namespace.map { "\(plural)|\($0)|" } ?? "\(plural)|"
        return store.all("objects").filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map(\.value)
    }

    func nextResourceVersion(_ collections: [String: [String: JSON]]) -> Int64 {
        (collections["meta"]?["rv"]?.int ?? 1000) + 1
    }

    var currentResourceVersion: String {
        String(store.get("meta", "rv")?.int ?? 1000)
    }

    func resource(group: String, plural: String) -> KubeResource? {
        resources.first { $0.group == group && $0.plural == plural }
    }

    // MARK: dispatch

    func handle(_ request: Request) async -> Response {
        // Buffer the body once, so that handlers and the request log can both read it.
        var request = request
        _ = try? await request.collectBody(upTo: 3 << 20)
        let path = request.uri.path
        let (operation, response) = await route(request, path: path)
        requestLog.append(SimRequestRecord(
            time: Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            method: request.method.rawValue, path: path, query: request.uri.query ?? "", operation: operation,
            status: response.status.code, requestId: UUID().uuidString.lowercased(), body: await loggedKubeBody(request)))
        return response
    }

    func route(_ request: Request, path: String) async -> (String, Response) {
        let segments = path.split(separator: "/").map(String.init)
        if segments.first == "_sim" { return ("sim.admin", await admin(request, Array(segments.dropFirst()))) }
        if ["/healthz", "/readyz", "/livez"].contains(path) { return ("health", textResponse(.ok, "ok")) }

        if let auth = request.headers[.authorization] {
            guard auth.hasPrefix("Bearer "), tokens.contains(String(auth.dropFirst(7))) else {
                return ("unauthorized", status(.unauthorized, reason: "Unauthorized", message: "Unauthorized"))
            }
        } else if settings.withLock({ $0.requireToken }) {
            return ("unauthorized", status(.unauthorized, reason: "Unauthorized", message: "Unauthorized"))
        }
        let served = settings.withLock { $0.crdsServed }
        if let discovery = discovery(segments, crdsServed: served, request: request) { return ("discovery", discovery) }
        if let answer = await subresource(request, segments) { return answer }

        // Resource paths.
        var group = ""
        var version = ""
        var rest: [String]
        if segments.first == "api", segments.count >= 2 {
            version = segments[1]
            rest = Array(segments.dropFirst(2))
        } else if segments.first == "apis", segments.count >= 3 {
            group = segments[1]
            version = segments[2]
            rest = Array(segments.dropFirst(3))
        } else {
            return ("unknown", notFoundPage())
        }
        if group == "authorization.k8s.io", rest == ["selfsubjectaccessreviews"], request.method == .post {
            return ("selfsubjectaccessreviews.create", await selfSubjectAccessReview(request))
        }
        if group == KubeSchema.podIdentityGroup && !served { return ("unknown", notFoundPage()) }
        var namespace: String?
        if rest.count >= 3, rest[0] == "namespaces" {
            namespace = rest[1]
            rest = Array(rest.dropFirst(2))
        }
        guard let plural = rest.first, let resource = resource(group: group, plural: plural), resource.version == version,
              rest.count <= 2
        else { return ("unknown", notFoundPage()) }
        let name = rest.count == 2 ? rest[1] : nil
        // Namespaced kinds need a namespace for everything but list and watch.
        if resource.namespaced && namespace == nil && (name != nil || request.method != .get) {
            return ("unknown", notFoundPage())
        }
        if !resource.namespaced && namespace != nil { return ("unknown", notFoundPage()) }

        let verb: String
        switch (request.method, name) {
        case (.get, nil): verb = queryItems(request)["watch"].map { $0 == "true" || $0 == "1" } == true ? "watch" : "list"
        case (.get, _): verb = "get"
        case (.post, nil): verb = "create"
        case (.put, _?): verb = "update"
        case (.patch, _?): verb = "patch"
        case (.delete, _?): verb = "delete"
        case (.delete, nil): verb = "deletecollection"
        default:
            return ("\(plural).unknown", status(.methodNotAllowed, reason: "MethodNotAllowed",
                                                message: "the server does not allow this method on the requested resource"))
        }
        let operation = "\(plural).\(verb)"
        if let fault = await injectFault(operation) { return (operation, fault) }
        // kubectl's typed commands send protobuf: the handlers below read JSON.
        let body: [UInt8]
        switch await requestBody(request, kind: verb.hasPrefix("delete") ? "DeleteOptions" : resource.kind,
                                 customResource: resource.isCustom) {
        case .success(let bytes): body = bytes
        case .failure(let error): return (operation, error.response)
        }
        let query = queryItems(request)
        switch verb {
        case "list": return (operation, list(resource, namespace: namespace, query: query, table: Self.wantsTable(request)))
        case "watch": return (operation, watch(resource, namespace: namespace, query: query, table: Self.wantsTable(request)))
        case "get":
            guard let object = object(plural, namespace: namespace, name: name!) else {
                return (operation, notFound(resource, name!))
            }
            if Self.wantsTable(request) {
                return (operation, table(resource, [object], resourceVersion: currentResourceVersion, continueToken: nil))
            }
            return (operation, jsonResponse(.ok, object))
        case "create": return (operation, create(resource, namespace: namespace, body: body, query: query, request: request))
        case "update": return (operation, replace(resource, namespace: namespace, name: name!, body: body, query: query, request: request))
        case "patch":
            return (operation, patch(resource, namespace: namespace, name: name!, body: body, query: query,
                                     contentType: request.headers[.contentType] ?? "", request: request))
        case "delete": return (operation, delete(resource, namespace: namespace, name: name!, body: body))
        default: return (operation, deleteCollection(resource, namespace: namespace, query: query))
        }
    }

    /// Latency, 429 (plain text, as API Priority and Fairness answers) and 500 from the fault rules.
    func injectFault(_ operation: String) async -> Response? {
        let rules = settings.withLock { $0.faults.filter { $0.applies(to: operation) } }
        guard !rules.isEmpty else { return nil }
        let latency = rules.compactMap(\.latencyMs).max() ?? 0
        if latency > 0 { try? await Task.sleep(for: .milliseconds(latency)) }
        let roll = Double.random(in: 0..<1)
        let throttle = rules.compactMap(\.throttleRate).max() ?? 0
        if roll < throttle {
            let retryAfter = rules.compactMap(\.retryAfterSeconds).max() ?? 1
            return textResponse(.tooManyRequests, "Too many requests, please try again later.\n", headers: [.retryAfter: String(retryAfter)])
        }
        let error = rules.compactMap(\.errorRate).max() ?? 0
        if roll < throttle + error {
            return status(.internalServerError, reason: "InternalError", message: "Internal error occurred: simulated fault")
        }
        if roll < throttle + error + (rules.compactMap(\.forbiddenRate).max() ?? 0) {
            let parts = operation.split(separator: ".")
            return status(.forbidden, reason: "Forbidden",
                          message: "\(parts.first ?? "") is forbidden: User \"system:serviceaccount:podid:podid\" cannot \(parts.last ?? "") resource \"\(parts.first ?? "")\" (simulated fault)",
                          details: ["kind": .string(String(parts.first ?? ""))])
        }
        return nil
    }

    // MARK: responses

    /// A `Status` failure body.
    func status(_ code: HTTPResponse.Status, reason: String, message: String, details: JSON? = nil, headers: HTTPFields = [:]) -> Response {
        var body: JSON = [
            "kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Failure",
            "message": .string(message), "reason": .string(reason), "code": .int(Int64(code.code)),
        ]
        if let details { body["details"] = details }
        return jsonResponse(code, body, headers: headers)
    }

    func notFound(_ resource: KubeResource, _ name: String) -> Response {
        status(.notFound, reason: "NotFound", message: "\(resource.qualifiedName) \"\(name)\" not found",
               details: ["name": .string(name), "group": .string(resource.group), "kind": .string(resource.plural)])
    }

    func notFoundPage() -> Response {
        textResponse(.notFound, "404 page not found\n")
    }

    func badRequest(_ message: String) -> Response {
        status(.badRequest, reason: "BadRequest", message: message)
    }

    func invalid(_ resource: KubeResource, _ name: String, _ causes: [(String, String)]) -> Response {
        let summary = causes.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
        return status(.unprocessableContent, reason: "Invalid",
                      message: "\(resource.kind)\(resource.group.isEmpty ? "" : ".\(resource.group)") \"\(name)\" is invalid: \(summary)",
                      details: [
                        "name": .string(name), "group": .string(resource.group), "kind": .string(resource.kind),
                        "causes": .array(causes.map { ["reason": "FieldValueInvalid", "message": .string($0.1), "field": .string($0.0)] }),
                      ])
    }

    func conflict(_ resource: KubeResource, _ name: String) -> Response {
        status(.conflict, reason: "Conflict",
               message: "Operation cannot be fulfilled on \(resource.qualifiedName) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
               details: ["name": .string(name), "group": .string(resource.group), "kind": .string(resource.plural)])
    }
}
