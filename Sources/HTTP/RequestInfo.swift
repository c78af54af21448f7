import Core

/// What the middleware learned about the request being handled, for the OpenAPI handlers (which see
/// only the OpenAPI request).
public struct RequestInfo: Sendable {
    /// The request's id (echoed or generated).
    public var requestId: String
    /// The authenticated caller, once the auth middleware has run.
    public var principal: Principal?
    /// `METHOD /route/{template}` for audit details.
    public var operation: String

    /// The request being handled by the current task.
    @TaskLocal public static var current = RequestInfo(requestId: "-", principal: nil, operation: "-")

    /// The request context for domain services; 401 when nobody authenticated.
    public static func context() throws -> CallContext {
        let info = current
        guard let principal = info.principal else {
            throw DomainError(.unauthorized, "A bearer token is required.")
        }
        return CallContext(principal: principal, requestId: info.requestId, operation: info.operation)
    }
}
