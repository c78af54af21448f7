import Core
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OpenAPIRuntime

/// Turns every error into a problem+json response: domain errors, the OpenAPI runtime's errors
/// (unwrapping `ServerError`, which would otherwise become an empty 500), Hummingbird's errors
/// (unknown routes, wrong methods, bodies over the limit) and unexpected ones (500, logged, with no
/// internals in the body).
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable
    let logger: Logger

    /// Creates the middleware; `routes` tells a wrong method (405) from an unknown path (404).
    public init(routes: RouteTable, logger: Logger) {
        self.routes = routes
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            return response(for: error, request: request, context: context)
        }
    }

    func response(for error: any Error, request: Request, context: Context) -> Response {
        let requestId = RequestInfo.current.requestId
        var error = error
        if let serverError = error as? ServerError {
            error = serverError.underlyingError
            if !(error is DomainError), !(error is DecodingError) {
                let status = HTTPResponse.Status(code: serverError.httpStatus.code)
                if (400..<500).contains(status.code) {
                    return ProblemResponse.make(status: status, detail: serverError.causeDescription, requestId: requestId)
                }
                return internalError(serverError, requestId: requestId)
            }
        }
        switch error {
        case let domain as DomainError:
            var headers: HTTPFields = [:]
            if domain.kind == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
            if domain.kind == .unavailable { headers[.retryAfter] = String(domain.retryAfterSeconds ?? 5) }
            if domain.kind == .tooManyRequests { headers[.retryAfter] = String(max(1, domain.retryAfterSeconds ?? 1)) }
            return ProblemResponse.make(
                status: ProblemResponse.status(domain.kind), detail: domain.detail, requestId: requestId,
                fields: domain.fields, headers: headers)
        case let decoding as DecodingError:
            let field = Self.describe(decoding)
            return ProblemResponse.make(
                status: .badRequest, detail: "The request body could not be read: \(field.field.isEmpty ? "" : field.field + " ")\(field.message).",
                requestId: requestId, fields: field.field.isEmpty ? [] : [field])
        case let http as HTTPError:
            // Hummingbird's not-found responder names the endpoint "NotFound".
            if http.status == .notFound, context.endpointPath == nil || context.endpointPath == "NotFound" {
                let allowed = routes.allowedMethods(path: request.uri.path)
                if !allowed.isEmpty {
                    var headers: HTTPFields = [:]
                    headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
                    return ProblemResponse.make(
                        status: .methodNotAllowed,
                        detail: "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: \(allowed.map(\.rawValue).joined(separator: ", ")).",
                        requestId: requestId, headers: headers)
                }
                return ProblemResponse.make(
                    status: .notFound, detail: "There is no route \(request.method.rawValue) \(request.uri.path); see /openapi.yaml.",
                    requestId: requestId)
            }
            if http.status == .contentTooLarge {
                return ProblemResponse.make(
                    status: .contentTooLarge, detail: "The request body is larger than \(BodyLimitMiddleware<Context>.limit) bytes.",
                    requestId: requestId)
            }
            if http.status.code >= 500 { return internalError(http, requestId: requestId) }
            return ProblemResponse.make(status: http.status, detail: http.body ?? http.status.reasonPhrase, requestId: requestId)
        default:
            return internalError(error, requestId: requestId)
        }
    }

    func internalError(_ error: any Error, requestId: String) -> Response {
        // A ServerError's own description includes the request's headers, bearer token included:
        // log only the operation and the underlying error.
        let logged: String
        if let serverError = error as? ServerError {
            logged = "\(serverError.operationID): \(String(reflecting: serverError.underlyingError))"
        } else {
            logged = String(reflecting: error)
        }
        logger.error("request failed", metadata: ["request_id": "\(requestId)", "error": "\(logged)"])
        return ProblemResponse.make(
            status: .internalServerError,
            detail: "podid could not handle this request; the operator can find it in the logs by its request id.",
            requestId: requestId)
    }

    /// The field and message of a body decoding error.
    static func describe(_ error: DecodingError) -> FieldProblem {
        func path(_ keys: [any CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return FieldProblem(path(context.codingPath + [key]), "is required")
        case .valueNotFound(_, let context):
            return FieldProblem(path(context.codingPath), "must not be null")
        case .typeMismatch(let type, let context):
            return FieldProblem(path(context.codingPath), "must be \(Self.typeName(type))")
        case .dataCorrupted(let context):
            // The date transcoder cannot see where the time was: say what is wrong with it.
            if context.debugDescription.hasPrefix(RFC3339DateTranscoder.expectation) {
                return FieldProblem(path(context.codingPath), "holds a time that is not RFC 3339 (\(context.debugDescription))")
            }
            if context.codingPath.isEmpty { return FieldProblem("", "is not valid JSON") }
            return FieldProblem(path(context.codingPath), "has a value that is not allowed (\(context.debugDescription))")
        @unknown default:
            return FieldProblem("", "is not valid")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}
