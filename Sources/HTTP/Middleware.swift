import Core
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus

extension HTTPField.Name {
    /// `X-Request-Id`.
    static let requestID = HTTPField.Name("X-Request-Id")!
    /// `Idempotency-Key`.
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// `Idempotent-Replayed`, set on replayed responses.
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

/// Gives every request an id: the client's `X-Request-Id` when it is sane, otherwise a new UUID;
/// echoed on the response and available to handlers through `RequestInfo`.
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let requestId: String
        if let sent = request.headers[.requestID], Self.isAcceptable(sent) {
            requestId = sent
        } else {
            requestId = UUID().uuidString.lowercased()
        }
        var info = RequestInfo.current
        info.requestId = requestId
        var response = try await RequestInfo.$current.withValue(info) {
            try await next(request, context)
        }
        response.headers[.requestID] = requestId
        return response
    }

    static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

/// Prometheus request metrics by route template (never raw paths), method and status.
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let registry: PrometheusCollectorRegistry

    /// Creates the middleware writing to `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath.map { $0 == "NotFound" ? "unmatched" : $0 } ?? "unmatched"
        let method = knownMethods.contains(request.method) ? request.method.rawValue : "OTHER"
        registry.makeCounter(
            name: "podid_http_requests_total",
            labels: [("route", route), ("method", method), ("status", String(response.status.code))]
        ).increment()
        let elapsed = ContinuousClock.now - start
        registry.makeDurationHistogram(
            name: "podid_http_request_duration_seconds", labels: [("route", route), ("method", method)],
            buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                      .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5)]
        ).recordNanoseconds(elapsed.inNanoseconds)
        if response.status == .unauthorized {
            registry.makeCounter(name: "podid_http_unauthorized_total", labels: [("route", route)]).increment()
        }
        return response
    }
}

/// Methods counted by name; anything else is counted as OTHER, keeping label values bounded.
private let knownMethods: Set<HTTPRequest.Method> = [.get, .post, .put, .patch, .delete, .head, .options]

/// Reads the whole request body up to 1 MiB (413 beyond), because the OpenAPI routes set no limit.
public struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The largest body podid accepts.
    public static var limit: Int { 1 << 20 }

    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.limit {
            throw HTTPError(.contentTooLarge)
        }
        var request = request
        _ = try await request.collectBody(upTo: Self.limit)
        return try await next(request, context)
    }
}
