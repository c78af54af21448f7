import Foundation

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
    /// Deletes keys older than 24 hours; how many.
    func prune() async throws -> Int
}

/// Sealing the audit history into its hash chain.
public protocol AuditSealing: Sendable {
    /// Seals up to a batch of committed, unsealed events; how many.
    func sealPending() async throws -> Int
    /// Writes a checkpoint of the head now if it moved since the last one (at shutdown).
    func writeCheckpoint() async throws
}

extension AuditSealing {
    public func writeCheckpoint() async throws {}
}

/// Whether the service can serve: database reachable, migrations current.
public protocol ReadinessProbe: Sendable {
    /// Nil when ready, otherwise what is not.
    func notReadyReason() async -> String?
}
