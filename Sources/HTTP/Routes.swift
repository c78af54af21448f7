import API
import Core
import Hummingbird
import Logging
import OpenAPIHummingbird
import OpenAPIRuntime
import Prometheus

/// Builds podid's router: middleware in order, then the handlers generated from openapi.yaml.
public enum Routes {
    /// Paths that need no token.
    public static let publicPaths: Set<String> = ["/healthz", "/readyz", "/metrics", "/openapi.yaml"]

    /// The router for `handler`.
    public static func router(
        handler: APIHandler, authenticator: TokenAuthenticator, idempotency: any IdempotencyStore,
        registry: PrometheusCollectorRegistry, metricsToken: String? = nil,
        rateLimiter: RateLimiter = RateLimiter(perToken: nil, perTeam: nil), logger: Logger
    ) throws -> Router<BasicRequestContext> {
        let configuration = Configuration(dateTranscoder: RFC3339DateTranscoder(), jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes])
        let box = RouteTableBox()
        try handler.registerHandlers(on: RouteRecorder(box: box), configuration: configuration)
        let router = Router(context: BasicRequestContext.self)
        // Outermost first. Metrics see the final status; problems are rendered before metrics count
        // them; the body is bounded before anything reads it; auth runs before the rate limits (per
        // token and team) and before idempotency, whose keys are per caller.
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: HTTPMetricsMiddleware(registry: registry))
        router.add(middleware: ProblemMiddleware(routes: box.table, logger: logger))
        // Authentication and rate limits before the body is read: a request without a valid token,
        // or over its limit, is refused without podid reading (or buffering) what it sends.
        router.add(middleware: AuthMiddleware(authenticator: authenticator, publicPaths: publicPaths, metricsToken: metricsToken, logger: logger))
        router.add(middleware: RateLimitMiddleware(limiter: rateLimiter, logger: logger))
        router.add(middleware: BodyLimitMiddleware())
        router.add(middleware: NullMemberMiddleware())
        router.add(middleware: IdempotencyMiddleware(store: idempotency))
        router.add(middleware: ResponseAdjustmentsMiddleware())
        try handler.registerHandlers(on: router, configuration: configuration)
        return router
    }
}
