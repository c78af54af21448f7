import Core
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A PostgreSQL connection pool and the helpers every repository uses.
public struct PostgresDatabase: Sendable {
    /// The pool; run by the service group that owns it.
    public let client: PostgresClient
    /// The logger passed to every query.
    public let logger: Logger

    /// Wraps a client.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// How long a caller waits for a connection before podid answers 503: while PostgreSQL is
    /// down the pool keeps retrying and would hold every request until it is back.
    public static let connectionWait: Duration = .seconds(5)

    /// Runs `body` in one transaction, mapping PostgreSQL errors to domain errors.
    public func transaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withConnectionDeadline { acquired in
                try await client.withTransaction(logger: logger) { connection in
                    acquired.mark()
                    return try await body(connection)
                }
            }
        } catch {
            throw PostgresErrors.map(error)
        }
    }

    /// Runs one query and collects its rows, mapping PostgreSQL errors to domain errors.
    public func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await withConnectionDeadline { acquired in
                try await client.withConnection { connection in
                    acquired.mark()
                    return try await connection.query(query, logger: logger).collect()
                }
            }
        } catch {
            throw PostgresErrors.map(error)
        }
    }

    /// Runs `operation`, failing with 503 when it has not got a connection (`mark()`) within
    /// `connectionWait`; once it has one, it runs to its end.
    func withConnectionDeadline<Result: Sendable>(
        _ operation: @escaping @Sendable (ConnectionAcquired) async throws -> Result
    ) async throws -> Result {
        let acquired = ConnectionAcquired()
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await operation(acquired) }
            group.addTask {
                try await Task.sleep(for: Self.connectionWait)
                if acquired.isMarked { return nil }
                throw DomainError(.unavailable, "The database did not answer within \(Self.connectionWait.components.seconds) seconds; retry shortly.")
            }
            while let next = try await group.next() {
                if let result = next {
                    group.cancelAll()
                    return result
                }
            }
            throw CancellationError()
        }
    }
}

/// Set once an operation holds a connection.
final class ConnectionAcquired: Sendable {
    let flag = Atomic<Bool>(false)

    func mark() { flag.store(true, ordering: .relaxed) }

    var isMarked: Bool { flag.load(ordering: .relaxed) }
}

extension PostgresConnection {
    /// Enqueues the job a change causes and writes the change's audit event, naming the job, in
    /// the caller's transaction.
    func enqueueAndAudit(_ job: NewJob, _ event: AuditDraft, logger: Logger) async throws {
        let jobId = try await PostgresJobQueue.enqueue(job, on: self, logger: logger)
        var event = event
        event.details["jobId"] = .string(jobId.uuidString.lowercased())
        try await insertAudit(event, logger: logger)
    }

    /// Appends an audit event inside the caller's transaction.
    func insertAudit(_ event: AuditDraft, logger: Logger) async throws {
        try await query(
            """
            INSERT INTO audit_events (actor, actor_team, action, outcome, team, resource_type, resource_name,
                                      request_id, job_id, details, before, after)
            VALUES (\(event.actor), \(event.actorTeam), \(event.action), \(event.outcome.rawValue), \(event.team),
                    \(event.resourceType), \(event.resourceName), \(event.requestId), \(event.jobId),
                    \(JSONValue.object(event.details).canonicalText)::jsonb, \(event.before?.canonicalText)::jsonb,
                    \(event.after?.canonicalText)::jsonb)
            """, logger: logger)
    }
}

/// Audit events that record no change of their own, such as denials.
public struct PostgresAuditStore: AuditStore {
    let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) {
        self.database = database
    }

    public func record(_ event: AuditDraft) async throws {
        try await database.transaction { try await $0.insertAudit(event, logger: database.logger) }
    }
}
