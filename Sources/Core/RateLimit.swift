import Foundation
import Synchronization

/// A sustained rate with a burst: a token bucket that holds `burst` requests and refills at
/// `perSecond`.
public struct RateLimit: Sendable, Equatable {
    /// Requests per second, sustained.
    public var perSecond: Double
    /// Requests that may arrive at once after a quiet spell.
    public var burst: Int

    /// Creates a limit.
    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
    }
}

/// The request limits of authenticated callers: one bucket per token and one per team (all of a
/// team's tokens together), so that neither a leaked or looping token nor a team minting tokens can
/// take the API from everyone else. A request passes only when every bucket it draws on has room;
/// a refused request draws on none, so a client that backs off as told gets through.
public final class RateLimiter: Sendable {
    /// What a caller exceeded, and when to retry.
    public struct Refusal: Sendable, Equatable {
        /// `token` or `team`.
        public var scope: String
        /// Whole seconds until the bucket has room again (at least 1).
        public var retryAfterSeconds: Int
    }

    struct Bucket {
        var level: Double
        var updated: ContinuousClock.Instant
    }

    /// The limit of each token (nil: none).
    public let perToken: RateLimit?
    /// The limit of each team's tokens together (nil: none).
    public let perTeam: RateLimit?
    let buckets = Mutex<[String: Bucket]>([:])
    let maxBuckets = 100_000

    /// Creates a limiter; nil limits are off.
    public init(perToken: RateLimit?, perTeam: RateLimit?) {
        self.perToken = perToken
        self.perTeam = perTeam
    }

    /// Takes one request from `principal`'s buckets, or says which limit refuses it. The bootstrap
    /// admin token (from configuration, no token id) is the operator's way in during an incident
    /// and is never limited.
    public func admit(_ principal: Principal, now: ContinuousClock.Instant = .now) -> Refusal? {
        guard let tokenId = principal.tokenId else { return nil }
        var draws: [(key: String, limit: RateLimit, scope: String)] = []
        if let perToken {
            draws.append(("token:\(tokenId.uuidString)", perToken, "token"))
        }
        if let perTeam, let team = principal.team {
            draws.append(("team:\(team)", perTeam, "team"))
        }
        guard !draws.isEmpty else { return nil }
        return buckets.withLock { buckets in
            if buckets.count >= maxBuckets {
                // Forget buckets that have refilled: they hold no state a new bucket would not.
                buckets = buckets.filter { entry in
                    let limit = entry.key.hasPrefix("team:") ? perTeam : perToken
                    return Self.refilled(entry.value, limit: limit ?? RateLimit(perSecond: 1, burst: 1), now: now) < Double(limit?.burst ?? 1)
                }
            }
            // Retry-After is when every bucket has room again, not only the first empty one.
            var levels: [Double] = []
            var refusal: Refusal?
            for draw in draws {
                let level = buckets[draw.key].map { Self.refilled($0, limit: draw.limit, now: now) } ?? Double(draw.limit.burst)
                if level < 1 {
                    let wait = max(1, Int(((1 - level) / draw.limit.perSecond).rounded(.up)))
                    if wait > refusal?.retryAfterSeconds ?? 0 { refusal = Refusal(scope: draw.scope, retryAfterSeconds: wait) }
                }
                levels.append(level)
            }
            if let refusal { return refusal }
            for (draw, level) in zip(draws, levels) {
                buckets[draw.key] = Bucket(level: level - 1, updated: now)
            }
            return nil
        }
    }

    static func refilled(_ bucket: Bucket, limit: RateLimit, now: ContinuousClock.Instant) -> Double {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return min(Double(limit.burst), bucket.level + max(0, seconds) * limit.perSecond)
    }
}
