import Foundation
import HTTPTypes
import Hummingbird

extension AzureSimulator {
    static let regions: Set<String> = [
        "westeurope", "northeurope", "eastus", "eastus2", "westus", "westus2", "westus3", "centralus",
        "northcentralus", "southcentralus", "uksouth", "ukwest", "germanywestcentral", "francecentral",
        "swedencentral", "switzerlandnorth", "norwayeast", "southeastasia", "eastasia", "australiaeast",
        "japaneast", "koreacentral", "canadacentral", "brazilsouth", "centralindia", "southafricanorth",
    ]

    // MARK: tokens

    func entraToken(_ request: Request, tenant: String) async -> Response {
        let form = formFields(String(decoding: (try? await bodyBytes(request)) ?? [], as: UTF8.self))
        func entraError(_ status: HTTPResponse.Status, _ error: String, _ code: Int, _ description: String) -> Response {
            jsonResponse(status, [
                "error": .string(error),
                "error_description": .string("AADSTS\(code): \(description)\r\nTrace ID: \(UUID().uuidString.lowercased())\r\nCorrelation ID: \(UUID().uuidString.lowercased())\r\nTimestamp: \(kubeTimestamp())"),
                "error_codes": .array([.int(Int64(code))]), "timestamp": .string(kubeTimestamp()),
                "trace_id": .string(UUID().uuidString.lowercased()), "correlation_id": .string(UUID().uuidString.lowercased()),
            ])
        }
        guard tenant.lowercased() == tenantId.lowercased() else {
            return entraError(.badRequest, "invalid_request", 90002, "Tenant '\(tenant)' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        }
        guard form["grant_type"] == "client_credentials" else {
            return entraError(.badRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '\(form["grant_type"] ?? "")'.")
        }
        guard let scope = form["scope"], scope.hasSuffix("/.default") else {
            return entraError(.badRequest, "invalid_scope", 1002012, "The provided value for scope \(form["scope"] ?? "") is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        }
        guard let client = form["client_id"], client == clientId || knownClientId(client) else {
            return entraError(.badRequest, "unauthorized_client", 700016, "Application with identifier '\(form["client_id"] ?? "")' was not found in the directory '\(tenantId)'.")
        }
        if let assertion = form["client_assertion"] {
            guard form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" else {
                return entraError(.badRequest, "invalid_request", 7000216, "'client_assertion_type' is missing or invalid.")
            }
            guard assertion.split(separator: ".").count == 3 else {
                return entraError(.badRequest, "invalid_client", 700027, "Client assertion failed signature validation.")
            }
        } else if let secret = form["client_secret"] {
            guard secret == clientSecret else {
                return entraError(.unauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '\(client)'.")
            }
        } else {
            return entraError(.badRequest, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
        }
        let token = issueToken()
        return jsonResponse(.ok, [
            "token_type": "Bearer", "expires_in": .int(3599), "ext_expires_in": .int(3599), "access_token": .string(token),
        ])
    }

    func imdsToken(_ request: Request) -> Response {
        guard request.headers[HTTPField.Name("Metadata")!]?.lowercased() == "true" else {
            return jsonResponse(.badRequest, ["error": "bad_request_102", "error_description": "Required metadata header not specified"])
        }
        let query = queryItems(request)
        guard query["api-version"] != nil, let resource = query["resource"], !resource.isEmpty else {
            return jsonResponse(.badRequest, ["error": "invalid_request", "error_description": "Required query variable 'resource' or 'api-version' is missing"])
        }
        if let client = query["client_id"], client != clientId, !knownClientId(client) {
            return jsonResponse(.badRequest, ["error": "invalid_request", "error_description": "Identity not found"])
        }
        let token = issueToken()
        let now = Int(Date().timeIntervalSince1970)
        return jsonResponse(.ok, [
            "access_token": .string(token), "refresh_token": "", "expires_in": "3599", "expires_on": .string(String(now + 3599)),
            "not_before": .string(String(now)), "resource": .string(resource), "token_type": "Bearer",
        ])
    }

    func issueToken() -> String {
        let token = "sim." + UUID().uuidString.lowercased() + "." + UUID().uuidString.lowercased()
        issuedTokens.withLock { tokens in
            let now = ContinuousClock.now
            tokens = tokens.filter { $0.value > now }
            tokens[token] = now + .seconds(3599)
        }
        return token
    }

    func isValidToken(_ token: String) -> Bool {
        token == "dev" || issuedTokens.withLock { ($0[token] ?? .now - .seconds(1)) > .now }
    }

    func knownClientId(_ clientId: String) -> Bool {
        store.all("identities").values.contains { $0[["properties", "clientId"]]?.string?.lowercased() == clientId.lowercased() }
    }

    // MARK: resource groups

    func subscriptionExists(_ subscription: String) -> Bool {
        store.all("resourceGroups").values.contains { $0["subscription"]?.string == subscription.lowercased() }
    }

    func resourceGroup(_ subscription: String, _ name: String) -> JSON? {
        store.get("resourceGroups", "\(subscription.lowercased())/\(name.lowercased())")
    }

    func getResourceGroup(_ subscription: String, _ name: String) -> Response {
        guard subscriptionExists(subscription) else { return subscriptionNotFound(subscription) }
        guard let group = resourceGroup(subscription, name) else { return resourceGroupNotFound(name) }
        let groupName = group["name"]?.string ?? name
        return jsonResponse(.ok, [
            "id": .string("/subscriptions/\(subscription.lowercased())/resourceGroups/\(groupName)"), "name": .string(groupName),
            "type": "Microsoft.Resources/resourceGroups", "location": group["location"] ?? "westeurope",
            "properties": ["provisioningState": "Succeeded"],
        ], headers: readHeaders())
    }

    func subscriptionNotFound(_ subscription: String) -> Response {
        armError(.notFound, "SubscriptionNotFound", "The subscription '\(subscription)' could not be found.")
    }

    func resourceGroupNotFound(_ name: String) -> Response {
        armError(.notFound, "ResourceGroupNotFound", "Resource group '\(name)' could not be found.")
    }

    func readHeaders() -> HTTPFields {
        [HTTPField.Name("x-ms-ratelimit-remaining-subscription-reads")!: "249"]
    }

    // MARK: identities

    static func identityKey(_ subscription: String, _ resourceGroup: String, _ name: String) -> String {
        "/subscriptions/\(subscription)/resourcegroups/\(resourceGroup)/providers/microsoft.managedidentity/userassignedidentities/\(name)".lowercased()
    }

    /// An identity as ARM returns it (without the simulator's bookkeeping).
    static func identityBody(_ stored: JSON) -> JSON {
        var body = stored
        body["createdAt"] = nil
        return body
    }

    func identity(_ method: HTTPRequest.Method, subscription: String, resourceGroup: String, name: String, body: [UInt8]) -> Response {
        guard subscriptionExists(subscription) else { return subscriptionNotFound(subscription) }
        guard let group = self.resourceGroup(subscription, resourceGroup) else { return resourceGroupNotFound(resourceGroup) }
        let key = Self.identityKey(subscription, resourceGroup, name)
        let groupName = group["name"]?.string ?? resourceGroup
        switch method {
        case .get:
            guard let stored = store.get("identities", key) else { return identityNotFound(name, resourceGroup) }
            return jsonResponse(.ok, Self.identityBody(stored), headers: readHeaders())
        case .put:
            guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$", options: .regularExpression) != nil else {
                return armError(.badRequest, "InvalidResourceName",
                                "Resource name \(name) is invalid. The name can be 3-128 characters long and can contain only letters, digits, '-' and '_', starting with a letter or digit.")
            }
            guard let request = JSON.parse(body), request.object != nil else {
                return armError(.badRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
            }
            guard let location = request["location"]?.string?.lowercased().replacingOccurrences(of: " ", with: ""), !location.isEmpty else {
                return armError(.badRequest, "LocationRequired", "The location property is required for this definition.")
            }
            guard Self.regions.contains(location) else {
                return armError(.badRequest, "LocationNotAvailableForResourceType",
                                "The provided location '\(location)' is not available for resource type 'Microsoft.ManagedIdentity/userAssignedIdentities'. List of available regions for the resource type is '\(Self.regions.sorted().joined(separator: ","))'.")
            }
            if let problem = tagProblem(request["tags"]) { return problem }
            if let throttled = takeWrite(subscription) { return throttled }
            return store.update { collections in
                let existing = collections["identities"]?[key]
                if let existing, existing["location"]?.string != location {
                    return (armError(.conflict, "InvalidResourceLocation",
                                     "The resource '\(name)' already exists in location '\(existing["location"]?.string ?? "")' in resource group '\(groupName)'. A resource with the same name cannot be created in location '\(location)'. Please select a new resource name."), [])
                }
                var identity: JSON = existing ?? [
                    "id": .string("/subscriptions/\(subscription.lowercased())/resourcegroups/\(groupName)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)"),
                    "name": .string(name), "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                    "location": .string(location),
                    "properties": [
                        "tenantId": .string(tenantId), "principalId": .string(UUID().uuidString.lowercased()),
                        "clientId": .string(UUID().uuidString.lowercased()),
                    ],
                    "createdAt": .double(Date().timeIntervalSince1970),
                ]
                identity["tags"] = request["tags"] ?? .object([:])
                var headers = writeHeaders(subscription, "writes")
                if existing == nil { headers[.location] = identity["id"]?.string }
                return (jsonResponse(existing == nil ? .created : .ok, Self.identityBody(identity), headers: headers),
                        [("identities", key, identity)])
            }
        case .patch:
            guard let request = JSON.parse(body), request.object != nil else {
                return armError(.badRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
            }
            if let problem = tagProblem(request["tags"]) { return problem }
            if let throttled = takeWrite(subscription) { return throttled }
            return store.update { collections in
                guard var identity = collections["identities"]?[key] else { return (identityNotFound(name, resourceGroup), []) }
                if let tags = request["tags"] { identity["tags"] = tags }
                return (jsonResponse(.ok, Self.identityBody(identity), headers: writeHeaders(subscription, "writes")),
                        [("identities", key, identity)])
            }
        case .delete:
            if let throttled = takeWrite(subscription) { return throttled }
            return store.update { collections in
                guard collections["identities"]?[key] != nil else {
                    return (Response(status: .noContent, headers: writeHeaders(subscription, "deletes")), [])
                }
                var headers = writeHeaders(subscription, "deletes")
                headers[.contentLength] = "0"
                return (Response(status: .ok, headers: headers), [("identities", key, nil)])
            }
        default:
            return armError(.methodNotAllowed, "MethodNotAllowed", "The requested method \(method.rawValue) is not allowed.")
        }
    }

    func identityNotFound(_ name: String, _ resourceGroup: String) -> Response {
        armError(.notFound, "ResourceNotFound",
                 "The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/\(name)' under resource group '\(resourceGroup)' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")
    }

    func tagProblem(_ tags: JSON?) -> Response? {
        guard let tags else { return nil }
        guard let map = tags.object, map.values.allSatisfy({ $0.string != nil }) else {
            return armError(.badRequest, "InvalidRequestContent", "The tags must be an object of string values.")
        }
        if map.count > 50 { return armError(.badRequest, "InvalidTagCount", "The number of tags (\(map.count)) exceeds the limit of 50.") }
        for (key, value) in map where key.count > 512 || (value.string ?? "").count > 256 || key.isEmpty {
            return armError(.badRequest, "InvalidTagNameCharacters", "The tag '\(key)' is invalid: names are 1 to 512 characters, values at most 256.")
        }
        return nil
    }

    func listIdentities(subscription: String, resourceGroup: String?, query: [String: String], request: Request) -> Response {
        guard subscriptionExists(subscription) else { return subscriptionNotFound(subscription) }
        if let resourceGroup, self.resourceGroup(subscription, resourceGroup) == nil { return resourceGroupNotFound(resourceGroup) }
        let prefix = resourceGroup.map { "/subscriptions/\(subscription)/resourcegroups/\($0)/".lowercased() }
            ?? "/subscriptions/\(subscription.lowercased())/"
        let items = store.all("identities").filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { Self.identityBody($0.value) }
        return page(items, query: query, request: request)
    }

    /// One page of `items` with a nextLink carrying `$skiptoken`.
    func page(_ items: [JSON], query: [String: String], request: Request) -> Response {
        let size = max(1, settings.withLock { $0.pageSize })
        let start = query["$skiptoken"].flatMap(Int.init) ?? 0
        let slice = Array(items.dropFirst(start).prefix(size))
        var body: JSON = ["value": .array(slice)]
        if start + size < items.count {
            var components = URLComponents()
            components.scheme = "http"
            components.host = request.head.authority.map { String($0.split(separator: ":").first ?? "127.0.0.1") } ?? "127.0.0.1"
            if let port = request.head.authority?.split(separator: ":").last.flatMap({ Int($0) }) { components.port = port }
            components.path = request.uri.path
            var items = query.filter { $0.key != "$skiptoken" }.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
            items.append(URLQueryItem(name: "$skiptoken", value: String(start + size)))
            components.queryItems = items
            body["nextLink"] = .string(components.string ?? "")
        }
        return jsonResponse(.ok, body, headers: readHeaders())
    }

    /// Takes one identity write from the subscription's token bucket; a 429 when it is empty.
    func takeWrite(_ subscription: String) -> Response? {
        let (rate, burst) = settings.withLock { ($0.identityWritesPerSecond, $0.identityWriteBurst) }
        guard rate > 0 else { return nil }
        let waitSeconds: Double? = buckets.withLock { buckets in
            let now = ContinuousClock.now
            var (tokens, at) = buckets[subscription.lowercased()] ?? (burst, now)
            let elapsed = Double((now - at).components.seconds) + Double((now - at).components.attoseconds) / 1e18
            tokens = min(burst, tokens + elapsed * rate)
            at = now
            if tokens >= 1 {
                buckets[subscription.lowercased()] = (tokens - 1, at)
                return nil
            }
            buckets[subscription.lowercased()] = (tokens, at)
            return (1 - tokens) / rate
        }
        guard let waitSeconds else { return nil }
        let retryAfter = max(1, Int(waitSeconds.rounded(.up)))
        return armError(.tooManyRequests, "TooManyRequests",
                        "The request is being throttled as the limit has been reached for operation type - Write_ObjectLimited. Please try again after '\(retryAfter)' seconds.",
                        headers: [.retryAfter: String(retryAfter), HTTPField.Name("x-ms-ratelimit-remaining-subscription-writes")!: "0"])
    }

    func writeHeaders(_ subscription: String, _ kind: String) -> HTTPFields {
        let remaining = buckets.withLock { Int(($0[subscription.lowercased()]?.tokens ?? 0).rounded(.down)) }
        return [HTTPField.Name("x-ms-ratelimit-remaining-subscription-\(kind)")!: String(max(0, remaining))]
    }
}
