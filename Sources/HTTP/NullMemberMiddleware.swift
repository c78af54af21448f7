import Core
import Hummingbird

/// Refuses `null` as the value of a member openapi.yaml declares in a request body (400 naming it).
/// The generated decoders read `null` as absent, so `{"apiServer": null}` in a PATCH would keep the
/// value the client meant to clear; openapi.yaml declares none of these members nullable. Members
/// the contract does not declare are ignored, as before. Runs after `BodyLimitMiddleware` (which
/// has collected the body) and after authentication (a caller without a token gets its 401 first).
public struct NullMemberMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard [.post, .put, .patch].contains(request.method), request.uri.path.hasPrefix("/v1/"),
              request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true
        else { return try await next(request, context) }
        var request = request
        let body = try await request.collectBody(upTo: BodyLimitMiddleware<Context>.limit)
        if let value = JSONValue.parse(bytes: Array(body.readableBytesView)), let field = RequestMembers.firstNull(in: value) {
            throw DomainError(.badRequest, "\(field) is null; leave it out (or, where openapi.yaml says so, send an empty value to clear it).",
                              fields: [FieldProblem(field, "must not be null")])
        }
        return try await next(request, context)
    }
}

/// The members openapi.yaml declares in request bodies.
enum RequestMembers {
    /// The members of each request body object, by the shape of its path (`""` is the body itself,
    /// `grants[]` an object of the `grants` array).
    static let declared: [String: Set<String>] = [
        "": ["name", "displayName", "contacts", "policy", "role", "expiresAt", "subscriptionId", "resourceGroup", "location", "tags",
             "grants", "deletionPolicy", "resourceId", "apiServer", "connection", "brokerNamespace", "micMode", "nodeResourceGroup",
             "kubeletIdentity", "cluster", "namespace", "selector"],
        "policy": ["subscriptions", "resourceGroups", "grants", "clusters", "namespaces", "maxIdentities"],
        "policy.grants[]": ["role", "scopePrefix"],
        "grants[]": ["role", "scope"],
        "connection": ["mode", "path", "context", "tokenFile", "caFile"],
        "kubeletIdentity": ["resourceId", "clientId", "objectId"],
    ]

    /// The path (`policy.grants[1].role`) of the first declared member whose value is `null`.
    static func firstNull(in value: JSONValue, at path: String = "", shape: String = "") -> String? {
        switch value {
        case .object(let members):
            guard let names = declared[shape] else { return nil }
            for name in names.sorted() {
                guard let member = members[name] else { continue }
                let memberPath = path.isEmpty ? name : "\(path).\(name)"
                if member == .null { return memberPath }
                if let found = firstNull(in: member, at: memberPath, shape: shape.isEmpty ? name : "\(shape).\(name)") { return found }
            }
            return nil
        case .array(let items):
            for (index, item) in items.enumerated() {
                if let found = firstNull(in: item, at: "\(path)[\(index)]", shape: "\(shape)[]") { return found }
            }
            return nil
        default:
            return nil
        }
    }
}
