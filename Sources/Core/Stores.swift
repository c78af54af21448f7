import Foundation

/// Writes audit events that record no change of their own (denials); changes write their event
/// through the store method that makes the change, in the same transaction.
public protocol AuditStore: Sendable {
    /// Appends one event.
    func record(_ event: AuditDraft) async throws
}

/// Teams in the system of record.
public protocol TeamStore: Sendable {
    /// Inserts a team; 409 when the name is taken.
    func insertTeam(_ team: Team, audit: AuditDraft) async throws -> Team
    /// The team with that name, if any.
    func team(named name: String) async throws -> Team?
    /// Teams ordered by name, after the page's position; only `only` when it is set.
    func teams(page: PageRequest, only: String?) async throws -> [Team]
    /// Replaces a team if its version is still `ifVersion`; nil when it is not (or the team is gone).
    func replaceTeam(_ team: Team, ifVersion: Int64, audit: @escaping @Sendable (Team) -> AuditDraft) async throws -> Team?
    /// Deletes a team (and its tokens) if its version is still `ifVersion`; false when it is not.
    /// 409 while it owns identities.
    func deleteTeam(named name: String, ifVersion: Int64, audit: AuditDraft) async throws -> Bool
}

/// Bearer tokens in the system of record.
public protocol TokenStore: Sendable {
    /// Inserts a token with the SHA-256 of its secret.
    func insertToken(_ token: TokenRecord, secretHash: [UInt8], audit: AuditDraft) async throws
    /// Tokens of `team` (or platform tokens when nil), oldest first, after the page's position.
    func tokens(team: String?, page: PageRequest) async throws -> [TokenRecord]
    /// Deletes a token of `team` (or a platform token when nil); nil when there is none.
    func deleteToken(id: UUID, team: String?, audit: @escaping @Sendable (TokenRecord) -> AuditDraft) async throws
        -> TokenRecord?
    /// The unexpired token with that secret hash, if any.
    func token(secretHash: [UInt8], now: Date) async throws -> TokenRecord?
}

/// What an idempotent POST found when it started.
public enum IdempotencyStart: Sendable, Equatable {
    /// The key is new: run the request, then `complete` or `abandon` it.
    case started
    /// The same request ran before: answer with its response.
    case replay(StoredResponse)
    /// The key was used with another request body.
    case mismatch
    /// A request with the key is still running.
    case inProgress
}

/// A response kept for idempotent replays.
public struct StoredResponse: Sendable, Equatable, Codable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    /// Creates a stored response.
    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Idempotency keys of POST requests, kept for 24 hours.
public protocol IdempotencyStore: Sendable {
    /// Claims `key` for the caller `scope` and the request `fingerprint`.
    func start(scope: String, key: String, fingerprint: String) async throws -> IdempotencyStart
    /// Stores the response of a claimed key.
    func complete(scope: String, key: String, response: StoredResponse) async throws
    /// Releases a claimed key whose request did not produce a response worth replaying.
    func abandon(scope: String, key: String) async throws
}

/// Whether the service can serve: database reachable, migrations current.
public protocol ReadinessProbe: Sendable {
    /// Nil when ready, otherwise what is not.
    func notReadyReason() async -> String?
}
