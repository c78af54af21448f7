import Core
import Foundation

/// Resolves bearer tokens to principals: the bootstrap admin tokens from configuration, or a stored
/// token by the SHA-256 of its secret. Hits are cached for at most `cacheTTL` (5 s by default), so a
/// revoked token stops working within that time. Misses are cached too (for `missTTL`, 30 s by
/// default), so that a client repeating an unknown token costs no query each time; a new token works
/// at once all the same, because its secret is random and nobody can have presented it before it existed.
public actor TokenAuthenticator {
    let tokens: any TokenRows
    let bootstrapHash: [UInt8]?
    let bootstrapFile: String?
    let cacheTTL: Duration
    let missTTL: Duration
    let maxEntries = 10_000
    var cache: [[UInt8]: (principal: Principal, until: ContinuousClock.Instant)] = [:]
    var misses: [[UInt8]: ContinuousClock.Instant] = [:]
    var fileHashes: [[UInt8]] = []
    var fileReadAt: ContinuousClock.Instant?
    /// How many lookups reached the database, for tests and metrics.
    public private(set) var databaseLookups = 0

    /// Creates an authenticator.
    public init(tokens: any TokenRows, bootstrapAdminToken: String?, bootstrapTokenFile: String? = nil,
                cacheTTL: Duration = .seconds(5), missTTL: Duration = .seconds(30))
    {
        self.tokens = tokens
        self.bootstrapHash = bootstrapAdminToken.map(TokenSecret.hash)
        self.bootstrapFile = bootstrapTokenFile
        self.cacheTTL = min(cacheTTL, .seconds(5))
        self.missTTL = missTTL
    }

    /// The principal of a bearer token, or nil when it is unknown, expired or revoked.
    public func principal(for token: String) async throws -> Principal? {
        let hash = TokenSecret.hash(token)
        if let bootstrapHash, hash == bootstrapHash {
            return Principal(tokenId: nil, tokenName: "bootstrap-admin", role: .admin, team: nil)
        }
        let now = ContinuousClock.now
        if bootstrapFile != nil, fileTokenHashes(now: now).contains(hash) {
            return Principal(tokenId: nil, tokenName: "bootstrap-admin", role: .admin, team: nil)
        }
        if let entry = cache[hash] {
            if entry.until > now, entry.principal.expiresAt.map({ $0 > Date() }) ?? true { return entry.principal }
            cache[hash] = nil
        }
        if let until = misses[hash] {
            if until > now { return nil }
            misses[hash] = nil
        }
        databaseLookups += 1
        guard let record = try await tokens.get(secretHash: hash, now: Date()) else {
            Self.bound(&misses, max: maxEntries) { $0 > now }
            misses[hash] = now + missTTL
            return nil
        }
        Self.bound(&cache, max: maxEntries) { $0.until > now }
        cache[hash] = (record.principal, now + cacheTTL)
        return record.principal
    }

    /// The hashes of the token file's lines, read again when the last read is a second old. An
    /// unreadable or invalid file admits no token: rotation never falls back to an old token.
    func fileTokenHashes(now: ContinuousClock.Instant) -> [[UInt8]] {
        guard let bootstrapFile else { return [] }
        if let fileReadAt, now - fileReadAt < .seconds(1) { return fileHashes }
        fileReadAt = now
        fileHashes = ((try? BootstrapTokens.read(file: bootstrapFile)) ?? []).map(TokenSecret.hash)
        return fileHashes
    }

    /// Keeps a cache under `max` entries: first drops the stale ones, then everything.
    static func bound<Value>(_ entries: inout [[UInt8]: Value], max: Int, live: (Value) -> Bool) {
        guard entries.count >= max else { return }
        entries = entries.filter { live($0.value) }
        if entries.count >= max { entries.removeAll(keepingCapacity: true) }
    }
}
