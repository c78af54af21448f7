import Core
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Authenticates `Authorization: Bearer` tokens on every route but the public ones; 401 without a
/// valid token (counted in metrics and logged, never audited, so that a flood cannot fill the audit log).
public struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: TokenAuthenticator
    let publicPaths: Set<String>
    let metricsTokenHash: [UInt8]?
    let logger: Logger

    /// Creates the middleware; `publicPaths` need no token, except `/metrics` when a metrics token is
    /// configured: then it needs exactly that token.
    public init(authenticator: TokenAuthenticator, publicPaths: Set<String>, metricsToken: String? = nil, logger: Logger) {
        self.authenticator = authenticator
        self.publicPaths = publicPaths
        self.metricsTokenHash = metricsToken.map(TokenSecret.hash)
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var info = RequestInfo.current
        info.operation = "\(request.method.rawValue) \(context.endpointPath ?? request.uri.path)"
        // Public paths, and paths that match no route (they answer 404 or 405 whoever asks).
        if let metricsTokenHash, request.uri.path == "/metrics", context.endpointPath != nil {
            guard let token = bearerToken(request), TokenSecret.hash(token) == metricsTokenHash else {
                throw unauthorized("/metrics needs the metrics token: send 'Authorization: Bearer <PODID_METRICS_TOKEN>'.", info)
            }
            return try await RequestInfo.$current.withValue(info) { try await next(request, context) }
        }
        if publicPaths.contains(request.uri.path) || context.endpointPath == nil {
            return try await RequestInfo.$current.withValue(info) { try await next(request, context) }
        }
        guard let header = request.headers[.authorization] else {
            throw unauthorized("A bearer token is required: send 'Authorization: Bearer <token>'.", info)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, parts[1].utf8.count <= 512 else {
            throw unauthorized("The Authorization header must be 'Bearer <token>'.", info)
        }
        guard let principal = try await authenticator.principal(for: String(parts[1])) else {
            throw unauthorized("The token is unknown, expired or revoked.", info)
        }
        info.principal = principal
        return try await RequestInfo.$current.withValue(info) { try await next(request, context) }
    }

    /// The token of a well-formed `Authorization: Bearer` header.
    func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty, parts[1].utf8.count <= 512 else { return nil }
        return String(parts[1])
    }

    func unauthorized(_ detail: String, _ info: RequestInfo) -> DomainError {
        logger.notice("unauthenticated request", metadata: ["request_id": "\(info.requestId)", "operation": "\(info.operation)"])
        return DomainError(.unauthorized, detail)
    }
}
