import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A local Azure: the Entra token endpoint, IMDS, `Microsoft.ManagedIdentity` user-assigned
/// identities, `Microsoft.Authorization` role assignments and definitions, and resource groups —
/// following the ARM contracts (status codes, error bodies, id casing, throttling), not podid's
/// expectations.
public final class AzureSimulator: Sendable {
    /// Settings that tests and drills change at run time through `/_sim/settings`.
    public struct Settings: Sendable, Codable, Equatable {
        /// Identity writes (PUT, PATCH, DELETE) per second per subscription before 429.
        public var identityWritesPerSecond: Double = 2
        /// How many identity writes may come at once before the rate applies.
        public var identityWriteBurst: Double = 10
        /// Seconds after an identity's creation during which role assignments for its principal
        /// fail with PrincipalNotFound (replication delay).
        public var principalNotFoundSeconds: Double = 3
        /// Items per page in lists before a nextLink.
        public var pageSize: Int = 100
        /// Fault rules by operation.
        public var faults: [SimFaultRule] = []
        /// A fault: scope prefixes that a hop in front of ARM rewrites in authorization requests
        /// (lower-cased prefix → replacement), so that a role assignment lands elsewhere than asked.
        public var scopeRewrites: [String: String]?

        public init() {}
    }

    /// The tenant tokens are issued for.
    public let tenantId: String
    /// The client id and secret the token endpoint accepts.
    public let clientId: String, clientSecret: String
    let store: SimStore
    let settings: Mutex<Settings>
    let buckets = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])
    let issuedTokens = Mutex<[String: ContinuousClock.Instant]>([:])
    /// The requests answered.
    public let requestLog = SimRequestLog()

    /// The API versions each kind of resource accepts.
    static let identityVersions: Set<String> = ["2018-11-30", "2023-01-31", "2024-11-30"]
    static let authorizationVersions: Set<String> = ["2022-04-01"]
    static let resourceGroupVersions: Set<String> = ["2021-04-01", "2022-09-01", "2024-03-01"]

    /// Built-in roles by name: the same GUIDs in every tenant.
    public static let builtInRoles: [String: String] = [
        "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
        "Managed Identity Contributor": "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    ]

    /// A simulator with state in `store`.
    public init(store: SimStore, tenantId: String, clientId: String = "dev", clientSecret: String = "dev",
                settings: Settings = Settings()) {
        self.store = store
        self.tenantId = tenantId
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.settings = Mutex(settings)
    }

    /// The current settings.
    public var currentSettings: Settings { settings.withLock { $0 } }

    /// Replaces the settings.
    public func configure(_ change: (inout Settings) -> Void) { settings.withLock { change(&$0) } }

    /// Adds a resource group (the dev seed, or a test's).
    public func seedResourceGroup(subscription: String, name: String, location: String) {
        let key = "\(subscription.lowercased())/\(name.lowercased())"
        if store.get("resourceGroups", key) == nil {
            store.set("resourceGroups", key, .object([
                "subscription": .string(subscription.lowercased()), "name": .string(name), "location": .string(location),
            ]))
        }
    }

    /// Registers a principal (a kubelet identity, say) that role assignments may name.
    public func seedPrincipal(_ principalId: String) {
        store.set("principals", principalId.lowercased(), .object(["principalId": .string(principalId.lowercased())]))
    }

    /// The HTTP responder.
    public func responder() -> CallbackResponder<BasicRequestContext> {
        CallbackResponder { request, _ in
            await self.handle(request)
        }
    }

    // MARK: dispatch

    func handle(_ request: Request) async -> Response {
        // Buffer the body once, so that handlers and the request log can both read it.
        let received = Date()
        var request = request
        _ = try? await request.collectBody(upTo: 3 << 20)
        let requestId = UUID().uuidString.lowercased()
        let correlation = request.headers[HTTPField.Name("x-ms-correlation-request-id")!] ?? requestId
        let path = request.uri.path
        let (operation, response) = await route(request, path: path)
        var result = response
        result.headers[HTTPField.Name("x-ms-request-id")!] = requestId
        result.headers[HTTPField.Name("x-ms-correlation-request-id")!] = correlation
        result.headers[HTTPField.Name("x-ms-routing-request-id")!] = "LOCAL:\(Self.routingTime()):\(requestId)"
        requestLog.append(SimRequestRecord(
            time: Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            method: request.method.rawValue, path: path, query: request.uri.query ?? "", operation: operation,
            status: result.status.code, requestId: requestId, body: await loggedBody(request),
            receivedAt: received.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            clientRequestId: request.headers[HTTPField.Name("x-ms-client-request-id")!], userAgent: request.headers[.userAgent]))
        return result
    }

    /// The path's segments as a front end that normalises URLs sees them (IIS and .NET's `Uri`, in
    /// front of ARM, do): percent escapes decoded, then `.` and `..` segments resolved (RFC 3986
    /// section 5.2.4). A role assignment PUT on `…/storageAccounts/data/../..` therefore lands on
    /// the resource group, which is why podid refuses such scopes and checks the scope it gets back.
    static func normalizedSegments(_ path: String) -> [String] {
        var output: [String] = []
        for raw in path.split(separator: "/") {
            let segment = String(raw).removingPercentEncoding ?? String(raw)
            switch segment {
            case ".": continue
            case "..": if !output.isEmpty { output.removeLast() }
            default: output.append(segment)
            }
        }
        return output
    }

    /// `scope` after the `scopeRewrites` fault, if one applies.
    func rewrittenScope(_ scope: String) -> String {
        let rewrites = settings.withLock { $0.scopeRewrites } ?? [:]
        for (prefix, replacement) in rewrites.sorted(by: { $0.key.count > $1.key.count })
        where scope.lowercased() == prefix || scope.lowercased().hasPrefix(prefix + "/") {
            return replacement + scope.dropFirst(prefix.count)
        }
        return scope
    }

    static func routingTime() -> String {
        let f = Date.ISO8601FormatStyle(dateSeparator: .omitted, dateTimeSeparator: .standard, timeSeparator: .omitted)
        return Date().formatted(f)
    }

    func route(_ request: Request, path: String) async -> (String, Response) {
        let segments = Self.normalizedSegments(path)
        let lower = segments.map { $0.lowercased() }

        if lower.first == "_sim" { return ("sim.admin", await admin(request, Array(lower.dropFirst()))) }
        if lower.count == 4, lower[1] == "oauth2", lower[2] == "v2.0", lower[3] == "token", request.method == .post {
            return await faulted("token.entra", request) { await self.entraToken(request, tenant: segments[0]) }
        }
        if lower == ["metadata", "identity", "oauth2", "token"], request.method == .get {
            return await faulted("token.imds", request) { self.imdsToken(request) }
        }

        // ARM: bearer token and api-version first, as ARM checks them.
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer "), isValidToken(String(auth.dropFirst(7))) else {
            return ("arm.unauthorized", armError(.unauthorized, "InvalidAuthenticationToken",
                                                 "The access token is invalid.",
                                                 headers: [.wwwAuthenticate: #"Bearer authorization_uri="https://login.microsoftonline.com/\#(tenantId)", error="invalid_token""#]))
        }
        guard lower.first == "subscriptions", lower.count >= 2 else {
            return ("arm.unknown", armError(.notFound, "InvalidResourceType", "The resource type could not be found in the namespace for the requested api version."))
        }
        let query = queryItems(request)
        let subscription = segments[1]

        // /subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities
        if lower.count == 5, lower[2] == "providers", lower[3] == "microsoft.managedidentity", lower[4] == "userassignedidentities" {
            return await faulted("identity.list", request) {
                self.versioned(query, Self.identityVersions) { self.listIdentities(subscription: subscription, resourceGroup: nil, query: query, request: request) }
            }
        }
        if lower.count == 4, lower[2] == "resourcegroups", request.method == .get {
            return await faulted("resourceGroup.get", request) {
                self.versioned(query, Self.resourceGroupVersions) { self.getResourceGroup(subscription, segments[3]) }
            }
        }
        if lower.count >= 7, lower[2] == "resourcegroups", lower[4] == "providers", lower[5] == "microsoft.managedidentity",
           lower[6] == "userassignedidentities", lower.count <= 8
        {
            let resourceGroup = segments[3]
            if lower.count == 7 {
                return await faulted("identity.list", request) {
                    self.versioned(query, Self.identityVersions) {
                        self.listIdentities(subscription: subscription, resourceGroup: resourceGroup, query: query, request: request)
                    }
                }
            }
            let name = segments[7]
            let op = ["PUT": "identity.put", "GET": "identity.get", "PATCH": "identity.patch", "DELETE": "identity.delete"][request.method.rawValue] ?? "identity.other"
            return await faulted(op, request) {
                let body = (try? await bodyBytes(request)) ?? []
                return self.versioned(query, Self.identityVersions) {
                    self.identity(request.method, subscription: subscription, resourceGroup: resourceGroup, name: name, body: body)
                }
            }
        }
        // Role assignments and definitions at any scope, a resource's included
        // (`…/userAssignedIdentities/x/providers/Microsoft.Authorization/roleAssignments`).
        if let index = lower.indices.last(where: { $0 + 1 < lower.count && lower[$0] == "providers" && lower[$0 + 1] == "microsoft.authorization" })
        {
            let scope = rewrittenScope("/" + segments[0..<index].joined(separator: "/"))
            let rest = Array(segments[(index + 2)...])
            let restLower = rest.map { $0.lowercased() }
            if restLower.first == "roleassignments" {
                if rest.count == 1 {
                    return await faulted("roleAssignment.list", request) {
                        self.versioned(query, Self.authorizationVersions) { self.listRoleAssignments(scope: scope, query: query, request: request) }
                    }
                }
                if rest.count == 2 {
                    let op = ["PUT": "roleAssignment.put", "GET": "roleAssignment.get", "DELETE": "roleAssignment.delete"][request.method.rawValue] ?? "roleAssignment.other"
                    return await faulted(op, request) {
                        let body = (try? await bodyBytes(request)) ?? []
                        return self.versioned(query, Self.authorizationVersions) {
                            self.roleAssignment(request.method, scope: scope, name: rest[1], body: body)
                        }
                    }
                }
            }
            if restLower.first == "roledefinitions", rest.count <= 2, request.method == .get {
                return await faulted(rest.count == 1 ? "roleDefinition.list" : "roleDefinition.get", request) {
                    self.versioned(query, Self.authorizationVersions) {
                        self.roleDefinitions(scope: scope, id: rest.count == 2 ? rest[1] : nil, query: query)
                    }
                }
            }
        }
        return ("arm.unknown", armError(.notFound, "InvalidResourceType",
                                        "The resource type '\(path)' could not be found."))
    }

    /// Applies the fault rules of `operation` (latency, 429, 500) before running `body`.
    func faulted(_ operation: String, _ request: Request, _ body: () async -> Response) async -> (String, Response) {
        let rules = settings.withLock { $0.faults.filter { $0.applies(to: operation) } }
        let latency = rules.compactMap(\.latencyMs).max() ?? 0
        if latency > 0 { try? await Task.sleep(for: .milliseconds(latency)) }
        let roll = Double.random(in: 0..<1)
        let throttle = rules.compactMap(\.throttleRate).max() ?? 0
        let error = rules.compactMap(\.errorRate).max() ?? 0
        if roll < throttle {
            let retryAfter = rules.compactMap(\.retryAfterSeconds).max() ?? 1
            return (operation, armError(.tooManyRequests, "TooManyRequests",
                                        "The request is being throttled. Please try again after '\(retryAfter)' seconds.",
                                        headers: [.retryAfter: String(retryAfter)]))
        }
        if roll < throttle + error {
            return (operation, armError(.internalServerError, "InternalServerError", "Encountered internal server error. Diagnostic information: simulated fault."))
        }
        if roll < throttle + error + (rules.compactMap(\.forbiddenRate).max() ?? 0) {
            let action = Self.action(operation)
            return (operation, armError(.forbidden, "AuthorizationFailed",
                                        "The client '\(clientId)' with object id '\(clientId)' does not have authorization to perform action '\(action)' over scope '\(request.uri.path)' or the scope is invalid. If access was recently granted, please refresh your credentials."))
        }
        return (operation, await body())
    }

    /// The RBAC action an operation needs, for simulated 403s.
    static func action(_ operation: String) -> String {
        switch operation {
        case "identity.put", "identity.patch": "Microsoft.ManagedIdentity/userAssignedIdentities/write"
        case "identity.delete": "Microsoft.ManagedIdentity/userAssignedIdentities/delete"
        case "identity.get", "identity.list": "Microsoft.ManagedIdentity/userAssignedIdentities/read"
        case "roleAssignment.put": "Microsoft.Authorization/roleAssignments/write"
        case "roleAssignment.delete": "Microsoft.Authorization/roleAssignments/delete"
        default: "Microsoft.Authorization/roleAssignments/read"
        }
    }

    func versioned(_ query: [String: String], _ versions: Set<String>, _ body: () -> Response) -> Response {
        guard let version = query["api-version"] else {
            return armError(.badRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
        }
        guard versions.contains(version) else {
            return armError(.badRequest, "InvalidApiVersionParameter",
                            "The api-version '\(version)' is invalid. The supported versions are '\(versions.sorted().joined(separator: ","))'.")
        }
        return body()
    }

    /// An ARM error response.
    func armError(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) -> Response {
        jsonResponse(status, ["error": .object(["code": .string(code), "message": .string(message)])], headers: headers)
    }
}

extension JSON: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements) { $1 })
    }
}

extension JSON: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self = .string(value)
    }
}
