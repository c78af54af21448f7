import Core
import Foundation

/// Resolves bearer tokens to principals: the bootstrap admin token from configuration, or a stored
/// token by the SHA-256 of its secret. Hits are cached for at most `cacheTTL` (5 s by default), so a
/// revoked token stops working within that time; misses are never cached, so a new token works at once.
public actor TokenAuthenticator {
    let tokens: any TokenRows
    let bootstrapHash: [UInt8]?
    let cacheTTL: Duration
    let maxEntries = 10_000
    var cache: [[UInt8]: (principal: Principal, until: ContinuousClock.Instant)] = [:]

    /// Creates an authenticator.
    public init(tokens: any TokenRows, bootstrapAdminToken: String?, cacheTTL: Duration = .seconds(5)) {
        self.tokens = tokens
        self.bootstrapHash = bootstrapAdminToken.map(TokenSecret.hash)
        self.cacheTTL = min(cacheTTL, .seconds(5))
    }

    /// The principal of a bearer token, or nil when it is unknown, expired or revoked.
    public func principal(for token: String) async throws -> Principal? {
        let hash = TokenSecret.hash(token)
        if let bootstrapHash, hash == bootstrapHash {
            return Principal(tokenId: nil, tokenName: "bootstrap-admin", role: .admin, team: nil)
        }
        let now = ContinuousClock.now
        if let entry = cache[hash] {
            if entry.until > now, entry.principal.expiresAt.map({ $0 > Date() }) ?? true { return entry.principal }
            cache[hash] = nil
        }
        guard let record = try await tokens.get(secretHash: hash, now: Date()) else { return nil }
        if cache.count >= maxEntries {
            cache = cache.filter { $0.value.until > now }
            if cache.count >= maxEntries { cache.removeAll(keepingCapacity: true) }
        }
        cache[hash] = (record.principal, now + cacheTTL)
        return record.principal
    }
}
