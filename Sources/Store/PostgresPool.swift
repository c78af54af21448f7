import Core
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A PostgreSQL connection pool and the helpers every repository uses.
public struct PostgresPool: Sendable {
    /// The pool; run by the service group that owns it.
    public let client: PostgresClient
    /// The logger passed to every query.
    public let logger: Logger

    /// How long a caller waits for a connection before podid answers 503: while PostgreSQL is
    /// down the pool keeps retrying and would hold every request until it is back.
    public let connectionWait: Duration

    /// The denial folder of everything that shares this pool.
    public let denials: DenialFolder

    /// The default `connectionWait` (`PODID_DATABASE_CONNECT_WAIT`).
    public static let defaultConnectionWait: Duration = .seconds(5)

    /// Wraps a client.
    public init(client: PostgresClient, logger: Logger, connectionWait: Duration = Self.defaultConnectionWait,
                denialWindow: TimeInterval = 60) {
        self.client = client
        self.denials = DenialFolder(window: denialWindow)
        self.logger = logger
        self.connectionWait = connectionWait
    }

    /// Runs `body` in one transaction, mapping PostgreSQL errors to domain errors.
    ///
    /// Under a job's lease (`JobLease.current`, set by the job runner around a handler) the
    /// transaction first takes a share lock on the job's row as that claim: when the claim has lost
    /// the lease it throws `JobLeaseLost` and writes nothing, and while it runs the lease cannot be
    /// reclaimed, so a job's writes never interleave with those of the lease's next holder.
    public func transaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let lease = JobLease.current
        let logger = logger
        do {
            return try await withConnectionDeadline { acquired in
                try await client.withTransaction(logger: logger) { connection in
                    acquired.mark()
                    if let lease {
                        let held = try await connection.query(
                            """
                            SELECT 1 FROM jobs WHERE id = \(lease.jobId) AND lease_token = \(lease.token) AND state = 'running'
                            FOR SHARE
                            """, logger: logger
                        ).collect()
                        if held.isEmpty { throw JobLeaseLost(jobId: lease.jobId) }
                    }
                    return try await body(connection)
                }
            }
        } catch let lost as JobLeaseLost {
            throw lost
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
        let wait = connectionWait
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await operation(acquired) }
            group.addTask {
                try await Task.sleep(for: wait)
                if acquired.isMarked { return nil }
                throw DomainError(.unavailable, "The database did not answer within \(wait.components.seconds) seconds; retry shortly.")
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

/// Where a row store's queries run: each on a pooled connection of its own (reads outside a
/// transaction), or on the connection of the transaction they belong to.
public struct Executor: Sendable {
    enum Target: Sendable {
        case pool(PostgresPool)
        case transaction(PostgresConnection)
    }

    let target: Target
    /// The logger passed to every query.
    public let logger: Logger

    /// Queries on pooled connections.
    public init(pool: PostgresPool) {
        self.target = .pool(pool)
        self.logger = pool.logger
    }

    /// Queries inside the transaction on `connection`.
    public init(connection: PostgresConnection, logger: Logger) {
        self.target = .transaction(connection)
        self.logger = logger
    }

    /// Runs one query and collects its rows.
    @discardableResult
    public func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        switch target {
        case .pool(let pool): return try await pool.rows(query)
        case .transaction(let connection): return try await connection.query(query, logger: logger).collect()
        }
    }

    /// `FOR SHARE` / `FOR UPDATE` for a lock.
    static func clause(_ lock: RowLock) -> String {
        switch lock {
        case .none: return ""
        case .share: return " FOR SHARE"
        case .update: return " FOR UPDATE"
        }
    }
}

/// The system of record in PostgreSQL: Core's row stores over the pool, and transactions.
public struct PostgresStore: AutocommitDatabase {
    /// The pool.
    public let pool: PostgresPool

    /// Creates the store.
    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public var autocommit: any Records { PostgresRecords(executor: Executor(pool: pool)) }

    public var denials: DenialFolder? { pool.denials }

    public func transaction<Result: Sendable>(_ body: @escaping @Sendable (any Records) async throws -> Result) async throws -> Result {
        let logger = pool.logger
        return try await pool.transaction { connection in
            try await body(PostgresRecords(executor: Executor(connection: connection, logger: logger)))
        }
    }
}

/// The row stores on one executor.
public struct PostgresRecords: Records {
    let executor: Executor

    public var teams: any TeamRows { PostgresTeamRows(executor: executor) }
    public var tokens: any TokenRows { PostgresTokenRows(executor: executor) }
    public var identities: any IdentityRows { PostgresIdentityRows(executor: executor) }
    public var bindings: any BindingRows { PostgresBindingRows(executor: executor) }
    public var clusters: any ClusterRows { PostgresClusterRows(executor: executor) }
    public var jobs: any JobRows { PostgresJobRows(executor: executor) }
    public var audit: any AuditRows { PostgresAuditRows(executor: executor) }
}

/// Audit events appended in the executor's transaction (or alone).
struct PostgresAuditRows: AuditRows {
    let executor: Executor

    func append(_ event: AuditDraft) async throws {
        // Through the function the runtime role may execute (it may not insert itself): the id and
        // the time are the server's.
        try await executor.rows(
            """
            SELECT podid_audit_append(\(event.actor), \(event.actorTeam), \(event.action), \(event.outcome.rawValue), \(event.team),
                    \(event.resourceType), \(event.resourceName), \(event.requestId), \(event.jobId),
                    \(JSONValue.object(event.details).canonicalText)::jsonb, \(event.before?.canonicalText)::jsonb,
                    \(event.after?.canonicalText)::jsonb)
            """)
    }

    func contains(resourceType: String, resourceName: String, actions: [String], details: [String: String]) async throws -> Bool {
        let wanted = JSONValue.object(details.mapValues(JSONValue.string)).canonicalText
        return try await !executor.rows(
            """
            SELECT 1 FROM audit_events
            WHERE resource_type = \(resourceType) AND resource_name = \(resourceName) AND action = ANY(\(actions)::text[])
              AND details @> \(wanted)::jsonb
            LIMIT 1
            """
        ).isEmpty
    }
}
