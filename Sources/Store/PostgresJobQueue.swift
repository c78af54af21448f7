import Core
import Foundation
import Logging
import PostgresNIO

/// The job queue in PostgreSQL.
///
/// Enqueueing happens inside the caller's transaction (`enqueue(_:on:)`), so a change and the work
/// it causes commit together, and sends `NOTIFY podid_jobs` (delivered at commit). Workers claim
/// with `FOR UPDATE SKIP LOCKED`; the partial unique index on running serial keys makes two jobs of
/// one resource never run at once, even when two workers race for them.
public final class PostgresJobQueue: JobQueue {
    /// The notification channel.
    public static let channel = "podid_jobs"

    public let database: PostgresPool
    let notifications: NotificationBox

    /// Creates the queue.
    public init(database: PostgresPool) {
        self.database = database
        self.notifications = NotificationBox()
    }

    static let columns = """
        id, kind, team, resource_type, resource_name, serial_key, dedupe_key, payload::text, state, attempts,
        max_attempts, run_at, last_error, steps::text, request_id, created_at, updated_at, resource, finished_at,
        lease_token, lease_expiries
        """

    static func decode(_ row: PostgresRow) throws -> Job {
        let cells = row.makeRandomAccess()
        let id = try cells[0].decode(UUID.self)
        let kind = try cells[1].decode(String.self)
        let team = try cells[2].decode(String?.self)
        let resourceType = try cells[3].decode(String.self)
        let resourceName = try cells[4].decode(String.self)
        let serialKey = try cells[5].decode(String.self)
        let dedupeKey = try cells[6].decode(String?.self)
        let payload = try cells[7].decode(String.self)
        let state = try cells[8].decode(String.self)
        let attempts = try cells[9].decode(Int.self)
        let maxAttempts = try cells[10].decode(Int.self)
        let runAt = try cells[11].decode(Date.self)
        let lastError = try cells[12].decode(String?.self)
        let steps = try cells[13].decode(String.self)
        let requestId = try cells[14].decode(String?.self)
        let createdAt = try cells[15].decode(Date.self)
        let updatedAt = try cells[16].decode(Date.self)
        let resource = try cells[17].decode(String.self)
        let finishedAt = try cells[18].decode(Date?.self)
        let leaseToken = try cells[19].decode(UUID?.self)
        let leaseExpiries = try cells[20].decode(Int.self)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            return Timestamp.parse(text) ?? Date(timeIntervalSince1970: 0)
        }
        return Job(
            id: id, kind: kind, team: team, resourceType: resourceType, resourceName: resourceName, serialKey: serialKey,
            dedupeKey: dedupeKey, payload: JSONValue.parse(payload) ?? .object([:]),
            state: JobState(rawValue: state) ?? .queued, attempts: attempts, maxAttempts: maxAttempts, runAt: runAt,
            lastError: lastError, steps: (try? decoder.decode([JobStep].self, from: Data(steps.utf8))) ?? [],
            requestId: requestId, createdAt: createdAt, updatedAt: updatedAt, resource: resource, finishedAt: finishedAt,
            leaseToken: leaseToken, leaseExpiries: leaseExpiries)
    }

    static func stepsText(_ steps: [JobStep]) -> String {
        JSONValue.encoding(steps).canonicalText
    }

    /// Enqueues a job inside the caller's transaction (see `PostgresJobRows.enqueue`).
    @discardableResult
    public static func enqueue(_ job: NewJob, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        try await PostgresJobRows(executor: Executor(connection: connection, logger: logger)).enqueue(job)
    }

    public func claim(worker: String, lease: Duration) async throws -> Job? {
        // A race for two jobs of one serial key ends in a unique violation for the loser, which
        // then looks again (skipping what is now running).
        for _ in 0..<5 {
            do {
                let rows = try await database.rows(
                    """
                    UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = \(worker), lease_token = gen_random_uuid(),
                           lease_expires_at = now() + \(lease.inSeconds) * interval '1 second', updated_at = now()
                    WHERE id = (
                        SELECT id FROM jobs AS candidate
                        WHERE candidate.state = 'queued' AND candidate.run_at <= now()
                          AND NOT EXISTS (SELECT 1 FROM jobs AS busy
                                          WHERE busy.state = 'running' AND busy.serial_key = candidate.serial_key)
                        ORDER BY candidate.run_at, candidate.created_at
                        LIMIT 1
                        FOR UPDATE SKIP LOCKED)
                    RETURNING \(unescaped: Self.columns)
                    """)
                return try rows.first.map(Self.decode)
            } catch let error as DomainError where error.kind == .conflict {
                continue
            }
        }
        return nil
    }

    public func heartbeat(_ lease: JobLease, duration: Duration, steps: [JobStep]) async throws -> Bool {
        try await !database.rows(
            """
            UPDATE jobs SET lease_expires_at = now() + \(duration.inSeconds) * interval '1 second', updated_at = now(),
                   steps = \(Self.stepsText(steps))::jsonb
            WHERE id = \(lease.jobId) AND state = 'running' AND lease_token = \(lease.token)
            RETURNING id
            """
        ).isEmpty
    }

    public func complete(_ lease: JobLease, steps: [JobStep]) async throws -> Bool {
        try await !database.rows(
            """
            UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, last_error = NULL,
                   steps = \(Self.stepsText(steps))::jsonb, updated_at = now(), finished_at = now()
            WHERE id = \(lease.jobId) AND state = 'running' AND lease_token = \(lease.token)
            RETURNING id
            """
        ).isEmpty
    }

    public func fail(_ lease: JobLease, error: String, steps: [JobStep], retryAt: Date?) async throws -> JobState? {
        let rows = try await database.rows(
            """
            UPDATE jobs SET
                state = CASE WHEN \(retryAt)::timestamptz IS NOT NULL AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                run_at = coalesce(\(retryAt)::timestamptz, run_at),
                finished_at = CASE WHEN \(retryAt)::timestamptz IS NOT NULL AND attempts < max_attempts THEN NULL ELSE now() END,
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, last_error = \(error),
                steps = \(Self.stepsText(steps))::jsonb, updated_at = now()
            WHERE id = \(lease.jobId) AND state = 'running' AND lease_token = \(lease.token)
            RETURNING state
            """)
        guard let row = rows.first else { return nil }
        if retryAt != nil {
            // Wake a sleeping worker at the retry time is the poller's job; a notification now only
            // helps when the retry is due at once.
            _ = try? await database.rows("SELECT pg_notify(\(Self.channel), '')")
        }
        return JobState(rawValue: try row.decode(String.self)) ?? .failed
    }

    public func reclaimExpiredLeases() async throws -> ReclaimedJobs {
        let rows = try await database.rows(
            """
            UPDATE jobs SET
                state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                finished_at = CASE WHEN attempts >= max_attempts THEN now() ELSE NULL END,
                lease_expiries = lease_expiries + 1,
                last_error = CASE WHEN attempts >= max_attempts
                    THEN 'the worker running this job died ' || (lease_expiries + 1) || ' time(s) (its lease expired) and its '
                         || max_attempts || ' attempt(s) are used: failed so that it cannot take down one worker after another; '
                         || 'POST /v1/jobs/' || id || '/retry runs it again'
                         || CASE WHEN last_error IS NULL THEN '' ELSE '. Last error: ' || last_error END
                    ELSE coalesce(last_error, 'the worker running this job stopped; its lease expired') END,
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE state = 'running' AND lease_expires_at < now()
            RETURNING \(unescaped: Self.columns)
            """)
        let jobs = try rows.map(Self.decode)
        return ReclaimedJobs(requeued: jobs.filter { $0.state == .queued }.count, failed: jobs.filter { $0.state == .failed })
    }

    public func pruneFinished(before: Date) async throws -> Int {
        // In batches, so that no delete holds many rows' locks for long.
        var total = 0
        while true {
            let deleted = try await database.rows(
                """
                DELETE FROM jobs WHERE id IN (
                    SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < \(before)
                    LIMIT 5000)
                RETURNING 1
                """
            ).count
            total += deleted
            if deleted < 5000 { return total }
        }
    }

    public func stats() async throws -> JobQueueStats {
        let rows = try await database.rows(
            """
            SELECT kind, count(*)::int, coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)::float8
            FROM jobs WHERE state = 'queued' GROUP BY kind
            """)
        var byKind: [String: Int] = [:]
        var oldest = 0.0
        for row in rows {
            let (kind, count, age) = try row.decode((String, Int, Double).self)
            byKind[kind] = count
            oldest = max(oldest, age)
        }
        return JobQueueStats(queuedByKind: byKind, oldestDueAgeSeconds: oldest)
    }

    public func notificationCount() async -> Int {
        await notifications.count
    }

    public func waitForWork(after count: Int, timeout: Duration) async {
        // Polling a counter every 25 ms rather than parking continuations: nothing can be left
        // waiting for a wake-up that already happened, and cancellation needs no bookkeeping.
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if await notifications.count > count { return }
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Listens for `NOTIFY podid_jobs` on one pooled connection until cancelled, waking waiters;
    /// reconnects after a failure. Polling (`waitForWork`'s timeout) covers the gaps.
    public func listen(logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        for try await _ in notifications { await self.notifications.signal() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("listening for job notifications failed; polling until it works again",
                               metadata: ["error": "\(PostgresErrors.serverMessage(error))"])
                try? await Task.sleep(for: .seconds(2))
            }
        }
    }
}

/// Counts the notifications received.
actor NotificationBox {
    var count = 0

    func signal() {
        count += 1
    }
}

/// Jobs as changes enqueue, cancel and retry them, in the caller's transaction.
///
/// Enqueueing sends `NOTIFY podid_jobs`, which PostgreSQL delivers at commit: a worker wakes when
/// the change that caused the job is visible.
struct PostgresJobRows: JobRows {
    let executor: Executor

    func enqueue(_ job: NewJob) async throws -> UUID {
        let rows = try await executor.rows(
            """
            INSERT INTO jobs (id, kind, team, resource_type, resource_name, serial_key, dedupe_key, payload, max_attempts, request_id,
                              resource, run_at)
            VALUES (\(UUID()), \(job.kind), \(job.team), \(job.resourceType), \(job.resourceName), \(job.serialKey),
                    \(job.dedupeKey), \(job.payload.canonicalText)::jsonb, \(job.maxAttempts), \(job.requestId), \(job.resource),
                    greatest(now(), coalesce(\(job.runAt)::timestamptz, now())))
            ON CONFLICT (dedupe_key) WHERE state = 'queued' AND dedupe_key IS NOT NULL
            DO UPDATE SET payload = EXCLUDED.payload, run_at = least(jobs.run_at, EXCLUDED.run_at), updated_at = now(),
                          request_id = EXCLUDED.request_id
            RETURNING id
            """)
        try await executor.rows("SELECT pg_notify(\(PostgresJobQueue.channel), '')")
        return try rows[0].decode(UUID.self)
    }

    func cancel(dedupeKey: String, states: Set<JobState>, reason: String) async throws {
        try await executor.rows(
            """
            UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now(), last_error = \(reason),
                   lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE dedupe_key = \(dedupeKey) AND state = ANY(\(states.map(\.rawValue).sorted())::text[])
            """)
    }

    func get(_ id: UUID, lock: RowLock) async throws -> Job? {
        try await executor.rows(
            "SELECT \(unescaped: PostgresJobQueue.columns) FROM jobs WHERE id = \(id)\(unescaped: Executor.clause(lock))"
        ).first.map(PostgresJobQueue.decode)
    }

    func requeue(_ id: UUID) async throws -> Job {
        let rows = try await executor.rows(
            """
            UPDATE jobs SET state = 'queued', attempts = 0, lease_expiries = 0, run_at = now(), finished_at = NULL, updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: PostgresJobQueue.columns)
            """)
        guard let row = rows.first else { throw DomainError.notFound("job", id.uuidString.lowercased()) }
        try await executor.rows("SELECT pg_notify(\(PostgresJobQueue.channel), '')")
        return try PostgresJobQueue.decode(row)
    }

    func isOfCurrentTeam(_ id: UUID) async throws -> Bool {
        let rows = try await executor.rows(
            """
            SELECT j.team IS NULL OR j.team_id IS NOT DISTINCT FROM (SELECT t.id FROM teams AS t WHERE t.name = j.team)
            FROM jobs AS j WHERE j.id = \(id)
            """)
        return try rows.first?.decode(Bool.self) ?? false
    }

    func list(_ filter: JobFilter, page: PageRequest) async throws -> [Job] {
        let afterMicros = page.after.flatMap { Int64($0[0]) }
        let afterId = page.after.flatMap { UUID(uuidString: $0[1]) }
        return try await executor.rows(
            """
            SELECT \(unescaped: PostgresJobQueue.columns) FROM jobs
            WHERE (\(filter.team)::text IS NULL OR team_id = (SELECT t.id FROM teams AS t WHERE t.name = \(filter.team)))
              AND (\(filter.state?.rawValue)::text IS NULL OR state = \(filter.state?.rawValue))
              AND (\(filter.kind)::text IS NULL OR kind = \(filter.kind))
              AND (\(filter.resource)::text IS NULL OR resource = \(filter.resource))
              AND (\(afterMicros)::bigint IS NULL
                   OR (created_at, id) < (timestamptz 'epoch' + \(afterMicros)::bigint * interval '1 microsecond', \(afterId)::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT \(page.limit)
            """
        ).map(PostgresJobQueue.decode)
    }
}
