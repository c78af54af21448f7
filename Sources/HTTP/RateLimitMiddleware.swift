import Core
import Hummingbird
import Logging

/// Refuses an authenticated request over its token's or team's rate limit with 429 problem+json and
/// `Retry-After`, before any handler (or the database) sees it. Refusals are counted in metrics and
/// logged, never audited: a client looping against its limit must not fill the audit log.
public struct RateLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limiter: RateLimiter
    let logger: Logger

    /// Creates the middleware.
    public init(limiter: RateLimiter, logger: Logger) {
        self.limiter = limiter
        self.logger = logger
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let info = RequestInfo.current
        if let principal = info.principal, let refusal = limiter.admit(principal) {
            logger.notice("rate limited", metadata: [
                "request_id": "\(info.requestId)", "actor": "\(principal.actor)", "limit": "\(refusal.scope)",
            ])
            let rate = refusal.scope == "team" ? limiter.perTeam : limiter.perToken
            let what = refusal.scope == "team" ? "team '\(principal.team ?? "")' (all its tokens together)" : "this token"
            throw DomainError(
                .tooManyRequests,
                "Too many requests from \(what): the limit is \(rate.map { "\(Self.format($0.perSecond)) per second with bursts of \($0.burst)" } ?? "set by the operator"). Retry after \(refusal.retryAfterSeconds) s (Retry-After).",
                retryAfterSeconds: refusal.retryAfterSeconds)
        }
        return try await next(request, context)
    }

    static func format(_ rate: Double) -> String {
        rate == rate.rounded() ? String(Int(rate)) : String(rate)
    }
}
