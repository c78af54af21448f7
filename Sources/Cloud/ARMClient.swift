import AsyncHTTPClient
import Core
import Foundation
import Metrics
import NIOHTTP1
import Synchronization

/// Azure Resource Manager: the identity, role-assignment, role-definition and resource-group calls
/// podid makes, with one error classification for all of them.
public struct ARMClient: AzureGateway {
    /// The audience of ARM tokens.
    public static let resource = "https://management.azure.com/"

    /// The api-versions podid speaks, in one place.
    public enum APIVersion {
        public static let identities = "2023-01-31"
        public static let authorization = "2022-04-01"
        public static let resourceGroups = "2021-04-01"
    }

    let transport: HTTPTransport
    let endpoint: String
    let credential: CachedCredential
    let identityWrites: SubscriptionRateLimiter
    /// Subscriptions ARM throttled, and until when: every call to them waits out a `Retry-After`,
    /// not only the call that was refused (throttling is per subscription).
    let throttled = SubscriptionPause()
    /// Role definition ids by subscription and role name, for `roleDefinitionCacheTime`: every
    /// grant names a role, and built-in roles have the same id for years.
    let roleDefinitions = RoleDefinitionCache()
    /// How long a looked-up role definition id is reused (a custom role deleted and re-created
    /// under the same name gets a new id; ten minutes bounds how long podid uses the old one).
    static let roleDefinitionCacheTime: Duration = .seconds(600)

    /// podid and the process (host and pid, as job leases name workers): Azure's activity log and
    /// the simulator's request log tell replicas apart by it.
    static let userAgent = "podid/1.0 (\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier))"

    /// A client for the ARM `endpoint` (`PODID_AZURE_ARM_ENDPOINT`), limiting identity writes to
    /// `identityWritesPerSecond` per subscription (`PODID_AZURE_IDENTITY_WRITES_PER_SECOND`).
    public init(client: HTTPClient, endpoint: String, credential: CachedCredential, identityWritesPerSecond: Double = 2) {
        self.transport = HTTPTransport(client: client, service: .azure)
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.credential = credential
        self.identityWrites = SubscriptionRateLimiter(perSecond: identityWritesPerSecond)
    }

    // MARK: identities

    public func createOrUpdateIdentity(_ ref: AzureIdentityRef, location: String, tags: [String: String]) async throws -> AzureIdentityInfo {
        await identityWrites.acquire(ref.subscriptionId)
        let body = JSONValue.object(["location": .string(location), "tags": .object(tags.mapValues { .string($0) })])
        let answer = try await call(.PUT, ref.resourceId, version: APIVersion.identities, body: body, operation: "identity.put")
        return try Self.identity(answer)
    }

    public func identity(_ ref: AzureIdentityRef) async throws -> AzureIdentityInfo? {
        let answer = try await call(.GET, ref.resourceId, version: APIVersion.identities, operation: "identity.get", notFoundIsNil: true)
        return try answer.map(Self.identity)
    }

    public func identities(subscriptionId: String, resourceGroup: String) async throws -> [AzureIdentityInfo] {
        var url: String? = "\(endpoint)/subscriptions/\(subscriptionId)/resourceGroups/\(resourceGroup)/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=\(APIVersion.identities)"
        var result: [AzureIdentityInfo] = []
        while let next = url {
            let answer: HTTPExchange
            do {
                answer = try await send(.GET, next, body: nil, operation: "identity.list")
            } catch let error as UpstreamError where error.status == 404 {
                return []
            }
            guard case .array(let items)? = answer.json?.at("value") else { break }
            for item in items {
                result.append(try Self.identity(HTTPExchange(status: 200, headers: answer.headers,
                                                              body: Array((try? JSONEncoder().encode(item)) ?? Data()))))
            }
            url = answer.json?.at("nextLink")?.stringValue
        }
        return result
    }

    public func updateIdentityTags(_ ref: AzureIdentityRef, tags: [String: String]) async throws -> AzureIdentityInfo {
        await identityWrites.acquire(ref.subscriptionId)
        let body = JSONValue.object(["tags": .object(tags.mapValues { .string($0) })])
        return try Self.identity(try await call(.PATCH, ref.resourceId, version: APIVersion.identities, body: body, operation: "identity.patch"))
    }

    public func deleteIdentity(_ ref: AzureIdentityRef) async throws -> DeleteOutcome {
        await identityWrites.acquire(ref.subscriptionId)
        let answer = try await call(.DELETE, ref.resourceId, version: APIVersion.identities, operation: "identity.delete")
        return DeleteOutcome(existed: answer.status != 204, requestId: answer.header("x-ms-request-id"))
    }

    static func identity(_ answer: HTTPExchange) throws -> AzureIdentityInfo {
        guard let json = answer.json, let id = json.at("id")?.stringValue, let clientId = json.at("properties", "clientId")?.stringValue,
              let principalId = json.at("properties", "principalId")?.stringValue
        else {
            throw UpstreamError(service: .azure, status: answer.status, code: "UnexpectedResponse",
                                message: "ARM answered an identity without id, clientId or principalId", retryable: false,
                                requestId: answer.header("x-ms-request-id"))
        }
        return AzureIdentityInfo(
            resourceId: id, name: json.at("name")?.stringValue ?? "", location: json.at("location")?.stringValue ?? "",
            tags: json.at("tags")?.stringMap ?? [:], clientId: clientId, principalId: principalId,
            tenantId: json.at("properties", "tenantId")?.stringValue ?? "", requestId: answer.header("x-ms-request-id"))
    }

    // MARK: role assignments

    /// The assignment name for (scope, role, principal): a UUIDv5, so that a retried PUT targets the
    /// same assignment.
    public static func roleAssignmentName(scope: String, roleDefinitionId: String, principalId: String) -> String {
        RoleAssignmentNaming.name(scope: scope, roleDefinitionId: roleDefinitionId, principalId: principalId)
    }

    public func assignRole(scope: String, roleDefinitionId: String, principalId: String) async throws -> RoleAssignmentInfo {
        let name = Self.roleAssignmentName(scope: scope, roleDefinitionId: roleDefinitionId, principalId: principalId)
        let path = "\(scope)/providers/Microsoft.Authorization/roleAssignments/\(name)"
        let body = JSONValue.object(["properties": .object([
            "roleDefinitionId": .string(roleDefinitionId), "principalId": .string(principalId), "principalType": "ServicePrincipal",
        ])])
        do {
            return try Self.roleAssignment(try await call(.PUT, path, version: APIVersion.authorization, body: body, operation: "roleAssignment.put"))
        } catch let error as UpstreamError where error.code == "RoleAssignmentExists" {
            // The same access under another name (made by someone else): the grant exists, which is
            // what was asked for.
            let existing = try await roleAssignments(scope: scope, principalId: principalId).first {
                $0.scope.lowercased() == scope.lowercased()
                    && $0.roleDefinitionGuid == String(roleDefinitionId.split(separator: "/").last ?? "").lowercased()
            }
            if let existing { return existing }
            return RoleAssignmentInfo(id: path, name: name, scope: scope, roleDefinitionId: roleDefinitionId,
                                      principalId: principalId, requestId: error.requestId)
        }
    }

    public func roleAssignment(id: String) async throws -> RoleAssignmentInfo? {
        try await call(.GET, id, version: APIVersion.authorization, operation: "roleAssignment.get", notFoundIsNil: true)
            .map(Self.roleAssignment)
    }

    public func roleAssignments(scope: String, principalId: String) async throws -> [RoleAssignmentInfo] {
        try await listRoleAssignments(scope: scope, filter: "principalId eq '\(principalId)'")
    }

    public func roleAssignments(scope: String) async throws -> [RoleAssignmentInfo] {
        try await listRoleAssignments(scope: scope, filter: nil)
    }

    func listRoleAssignments(scope: String, filter: String?) async throws -> [RoleAssignmentInfo] {
        var url: String? = "\(endpoint)\(scope)/providers/Microsoft.Authorization/roleAssignments?api-version=\(APIVersion.authorization)"
            + (filter.map { "&$filter=\(formEncode($0))" } ?? "")
        var result: [RoleAssignmentInfo] = []
        while let next = url {
            let answer = try await send(.GET, next, body: nil, operation: "roleAssignment.list")
            guard case .array(let items)? = answer.json?.at("value") else { break }
            for item in items {
                result.append(try Self.roleAssignment(HTTPExchange(status: 200, headers: answer.headers,
                                                                   body: Array((try? JSONEncoder().encode(item)) ?? Data()))))
            }
            url = answer.json?.at("nextLink")?.stringValue
        }
        return result
    }

    public func deleteRoleAssignment(id: String) async throws -> DeleteOutcome {
        let answer = try await call(.DELETE, id, version: APIVersion.authorization, operation: "roleAssignment.delete")
        return DeleteOutcome(existed: answer.status != 204, requestId: answer.header("x-ms-request-id"))
    }

    static func roleAssignment(_ answer: HTTPExchange) throws -> RoleAssignmentInfo {
        guard let json = answer.json, let id = json.at("id")?.stringValue,
              let role = json.at("properties", "roleDefinitionId")?.stringValue,
              let principal = json.at("properties", "principalId")?.stringValue
        else {
            throw UpstreamError(service: .azure, status: answer.status, code: "UnexpectedResponse",
                                message: "ARM answered a role assignment without id, roleDefinitionId or principalId", retryable: false,
                                requestId: answer.header("x-ms-request-id"))
        }
        return RoleAssignmentInfo(
            id: id, name: json.at("name")?.stringValue ?? "", scope: json.at("properties", "scope")?.stringValue ?? "",
            roleDefinitionId: role, principalId: principal, requestId: answer.header("x-ms-request-id"))
    }

    public func roleDefinitionId(roleName: String, scope: String) async throws -> String {
        let key = RoleDefinitionCache.key(roleName: roleName, scope: scope)
        return try await roleDefinitions.value(key, lifetime: Self.roleDefinitionCacheTime) {
            try await self.lookUpRoleDefinitionId(roleName: roleName, scope: scope)
        }
    }

    func lookUpRoleDefinitionId(roleName: String, scope: String) async throws -> String {
        let filter = formEncode("roleName eq '\(roleName)'")
        let answer = try await send(
            .GET, "\(endpoint)\(scope)/providers/Microsoft.Authorization/roleDefinitions?api-version=\(APIVersion.authorization)&$filter=\(filter)",
            body: nil, operation: "roleDefinition.list")
        guard case .array(let items)? = answer.json?.at("value"), let id = items.first?.at("id")?.stringValue else {
            throw UpstreamError(service: .azure, status: answer.status, code: "RoleDefinitionNotFound",
                                message: "there is no role named '\(roleName)' at \(scope)", retryable: false,
                                requestId: answer.header("x-ms-request-id"))
        }
        return id
    }

    public func resourceGroupExists(subscriptionId: String, name: String) async throws -> Bool {
        let answer = try await call(.GET, "/subscriptions/\(subscriptionId)/resourcegroups/\(name)", version: APIVersion.resourceGroups,
                                    operation: "resourceGroup.get", notFoundIsNil: true)
        return answer != nil
    }

    // MARK: transport

    func call(_ method: HTTPMethod, _ path: String, version: String, body: JSONValue? = nil, operation: String) async throws -> HTTPExchange {
        try await send(method, "\(endpoint)\(path)?api-version=\(version)", body: body, operation: operation)
    }

    func call(_ method: HTTPMethod, _ path: String, version: String, operation: String, notFoundIsNil: Bool) async throws -> HTTPExchange? {
        do {
            return try await call(method, path, version: version, operation: operation)
        } catch let error as UpstreamError where error.status == 404 && notFoundIsNil {
            return nil
        }
    }

    /// One ARM request; a 401 refreshes the token once. Any answer but 2xx becomes an UpstreamError.
    func send(_ method: HTTPMethod, _ url: String, body: JSONValue?, operation: String) async throws -> HTTPExchange {
        let subscription = SubscriptionPause.subscription(in: url)
        await throttled.wait(subscription)
        do {
            return try await sendNow(method, url, body: body, operation: operation)
        } catch let error as UpstreamError where error.status == 429 {
            throttled.pause(subscription, for: error.retryAfter ?? .seconds(1))
            throw error
        }
    }

    func sendNow(_ method: HTTPMethod, _ url: String, body: JSONValue?, operation: String) async throws -> HTTPExchange {
        let encoded = try body.map { Array(try JSONEncoder().encode($0)) }
        // One client request id per call, kept by its second attempt (after a token refresh), so
        // that ARM's logs and the simulator's tie the attempts of one call together.
        let clientRequestId = UUID().uuidString.lowercased()
        var answer = try await counted(operation) { try await attempt(method, url, encoded, clientRequestId: clientRequestId) }
        if answer.status == 401 {
            await credential.invalidate()
            answer = try await counted(operation) { try await attempt(method, url, encoded, clientRequestId: clientRequestId) }
        }
        guard (200..<300).contains(answer.status) else { throw ARMErrors.classify(answer, method: method, url: url) }
        return answer
    }

    /// Counts the request in `podid_azure_requests_total` by operation and status (`error` when no
    /// answer came).
    func counted(_ operation: String, _ body: () async throws -> HTTPExchange) async throws -> HTTPExchange {
        do {
            let answer = try await body()
            Counter(label: "podid_azure_requests_total", dimensions: [("operation", operation), ("status", String(answer.status))]).increment()
            return answer
        } catch {
            Counter(label: "podid_azure_requests_total", dimensions: [("operation", operation), ("status", "error")]).increment()
            throw error
        }
    }

    func attempt(_ method: HTTPMethod, _ url: String, _ body: [UInt8]?, clientRequestId: String) async throws -> HTTPExchange {
        // A job that lost its lease is cancelled: it sends nothing more to Azure.
        try Task.checkCancellation()
        let token = try await credential.token()
        var headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json"),
                       ("x-ms-client-request-id", clientRequestId), ("User-Agent", Self.userAgent)]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return try await transport.send(method, url, headers: headers, body: body)
    }
}

/// ARM's error answers, classified: 429, 5xx, 408 and PrincipalNotFound (replication delay) are
/// retryable; everything else is permanent. A 403 says which permission podid's identity lacks where.
public enum ARMErrors {
    static func classify(_ answer: HTTPExchange, method: HTTPMethod, url: String) -> UpstreamError {
        let code = answer.json?.at("error", "code")?.stringValue ?? "HTTP\(answer.status)"
        var message = answer.json?.at("error", "message")?.stringValue ?? (answer.text.isEmpty ? "no error body" : answer.text)
        let retryable = answer.status == 429 || answer.status == 408 || answer.status >= 500 || code == "PrincipalNotFound"
        if answer.status == 403 {
            let path = HTTPTransport.redacted(url).split(separator: "/", omittingEmptySubsequences: false).dropFirst(3).joined(separator: "/")
            message = "podid's Azure identity is not allowed to \(method.rawValue) /\(path): \(message) Grant it the role that includes this action on that scope (for identities: Managed Identity Contributor; for role assignments: Role Based Access Control Administrator or User Access Administrator)."
        }
        return UpstreamError(
            service: .azure, status: answer.status, code: code, message: message, retryable: retryable,
            retryAfter: HTTPTransport.retryAfter(answer.header("Retry-After")), requestId: answer.header("x-ms-request-id"),
            correlationId: answer.header("x-ms-correlation-request-id"))
    }
}

/// When each subscription may be called again after ARM throttled it.
public final class SubscriptionPause: Sendable {
    let until = Mutex<[String: ContinuousClock.Instant]>([:])

    /// Creates an empty pause table.
    public init() {}

    /// The subscription id in an ARM URL, lower-cased (nil for tenant-level calls).
    static func subscription(in url: String) -> String? {
        let parts = url.split(separator: "/")
        guard let index = parts.firstIndex(where: { $0.lowercased() == "subscriptions" }), index + 1 < parts.count else { return nil }
        return parts[index + 1].split(separator: "?").first.map { $0.lowercased() }
    }

    /// Pauses calls to `subscription` for `duration` (never shortening a longer pause).
    func pause(_ subscription: String?, for duration: Duration) {
        guard let subscription else { return }
        let end = ContinuousClock.now + duration
        until.withLock { table in
            if let current = table[subscription], current > end { return }
            table[subscription] = end
        }
    }

    /// Waits until `subscription` may be called.
    func wait(_ subscription: String?) async {
        guard let subscription else { return }
        while let end = until.withLock({ $0[subscription] }), end > ContinuousClock.now {
            try? await Task.sleep(until: end, clock: .continuous)
            if Task.isCancelled { return }
        }
    }
}

/// A token bucket per subscription: identity writes wait for a token instead of provoking 429s.
public final class SubscriptionRateLimiter: Sendable {
    let perSecond: Double
    let burst: Double
    let state = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])

    /// A limiter allowing `perSecond` writes per second per subscription, `burst` at once.
    public init(perSecond: Double, burst: Double = 1) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
    }

    /// Waits until the subscription has a token, then takes it.
    public func acquire(_ subscription: String) async {
        guard perSecond > 0 else { return }
        while true {
            let wait: Double? = state.withLock { buckets in
                let now = ContinuousClock.now
                let key = subscription.lowercased()
                var (tokens, at) = buckets[key] ?? (burst, now)
                let elapsed = now - at
                tokens = min(burst, tokens + elapsed.inSeconds * perSecond)
                at = now
                if tokens >= 1 {
                    buckets[key] = (tokens - 1, at)
                    return nil
                }
                buckets[key] = (tokens, at)
                return (1 - tokens) / perSecond
            }
            guard let wait else { return }
            try? await Task.sleep(for: .milliseconds(Int64((wait * 1000).rounded(.up))))
        }
    }
}

/// Role definition ids looked up recently. Role definitions are visible throughout a subscription
/// (assignable scopes aside), so a role's id is kept per subscription of the scope, or per scope
/// when the scope is above subscriptions (a management group).
final class RoleDefinitionCache: Sendable {
    let entries = Mutex<[String: (id: String, until: ContinuousClock.Instant)]>([:])
    /// Lookups under way: concurrent jobs that miss the cache at once share one request (a burst of
    /// provisionings would otherwise send one per job, all at once, into a throttled subscription).
    let lookups = Mutex<[String: Task<String, any Error>]>([:])

    static func key(roleName: String, scope: String) -> String {
        let parts = scope.lowercased().split(separator: "/")
        let owner = parts.count >= 2 && parts[0] == "subscriptions" ? "/subscriptions/\(parts[1])" : scope.lowercased()
        return "\(owner)|\(roleName.lowercased())"
    }

    func get(_ key: String) -> String? {
        entries.withLock { entries in
            guard let entry = entries[key], entry.until > .now else { return nil }
            return entry.id
        }
    }

    func set(_ key: String, _ id: String, for lifetime: Duration) {
        entries.withLock { $0[key] = (id, .now + lifetime) }
    }

    /// The cached id, or the answer of the one lookup under way for `key`, or a new lookup that
    /// later callers join. A failed lookup is not cached: the next caller asks again.
    func value(_ key: String, lifetime: Duration, lookUp: @escaping @Sendable () async throws -> String) async throws -> String {
        if let cached = get(key) { return cached }
        let task: Task<String, any Error> = lookups.withLock { lookups in
            if let running = lookups[key] { return running }
            let task = Task<String, any Error> {
                defer { _ = self.lookups.withLock { $0.removeValue(forKey: key) } }
                let id = try await lookUp()
                self.set(key, id, for: lifetime)
                return id
            }
            lookups[key] = task
            return task
        }
        return try await task.value
    }
}
