/// One problem with one field of a request, for `errors[]` in a problem+json answer.
public struct FieldProblem: Sendable, Equatable, Codable {
    /// The JSON path of the field, such as `policy.grants[0].role`.
    public var field: String
    /// What is wrong and, where it helps, what is allowed.
    public var message: String

    /// Creates a field problem.
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// The errors that podid's domain code throws; the HTTP layer maps each kind to one status code.
public struct DomainError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, which decides the HTTP status.
    public enum Kind: String, Sendable, Equatable {
        /// 400: the request cannot be read (bad JSON, bad query parameter).
        case badRequest
        /// 401: no token, or an unknown, expired or revoked one.
        case unauthorized
        /// 403: the caller's role does not allow this.
        case forbidden
        /// 404: no such resource, or one the caller may not see.
        case notFound
        /// 409: the change conflicts with the current state.
        case conflict
        /// 412: the `If-Match` precondition is stale.
        case preconditionFailed
        /// 413: the body is too large.
        case payloadTooLarge
        /// 415: the body has the wrong content type.
        case unsupportedMediaType
        /// 422: the body fails validation or policy.
        case validation
        /// 429: the caller's token or team sent more requests than its rate limit allows.
        case tooManyRequests
        /// 503: a dependency is unavailable; retrying later may work.
        case unavailable
    }

    /// The kind of failure.
    public var kind: Kind
    /// A sentence for the user: what went wrong and what to do.
    public var detail: String
    /// Field-level problems (validation and bad requests).
    public var fields: [FieldProblem]
    /// Whole seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    public var retryAfterSeconds: Int?

    /// Creates a domain error.
    public init(_ kind: Kind, _ detail: String, fields: [FieldProblem] = [], retryAfterSeconds: Int? = nil) {
        self.kind = kind
        self.detail = detail
        self.fields = fields
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(kind.rawValue): \(detail)" }

    /// 404 for a resource the caller cannot see, worded the same whether it exists or not.
    public static func notFound(_ type: String, _ name: String) -> DomainError {
        DomainError(.notFound, "\(type) '\(name)' was not found.")
    }

    /// 422 with the given field problems.
    public static func invalid(_ fields: [FieldProblem]) -> DomainError {
        let summary = fields.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        return DomainError(.validation, "The request is not valid: \(summary)", fields: fields)
    }
}
