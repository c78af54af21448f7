import Core
import Foundation
import PostgresNIO

/// Idempotency keys in PostgreSQL. A key is kept for 24 hours; a claim whose request never finished
/// (the process died) is released after 5 minutes.
public struct PostgresIdempotencyStore: IdempotencyStore {
    let database: PostgresPool

    /// Creates the store.
    public init(database: PostgresPool) {
        self.database = database
    }

    public func start(scope: String, key: String, fingerprint: String) async throws -> IdempotencyStart {
        try await database.transaction { connection in
            try await connection.query(
                """
                DELETE FROM idempotency_keys
                WHERE scope = \(scope) AND key = \(key)
                  AND (created_at < now() - interval '24 hours'
                       OR (completed_at IS NULL AND created_at < now() - interval '5 minutes'))
                """, logger: database.logger)
            let inserted = try await connection.query(
                """
                INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES (\(scope), \(key), \(fingerprint))
                ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO NOTHING RETURNING key
                """, logger: database.logger
            ).collect()
            if !inserted.isEmpty { return .started }
            let rows = try await connection.query(
                """
                SELECT fingerprint, status, headers::text, body FROM idempotency_keys
                WHERE scope = \(scope) AND key = \(key)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return .inProgress }
            let (storedFingerprint, status, headers, body) = try row.decode((String, Int?, String?, ByteBuffer?).self)
            if storedFingerprint != fingerprint { return .mismatch }
            guard let status, let headers else { return .inProgress }
            let headerMap = try JSONDecoder().decode([String: String].self, from: Data(headers.utf8))
            return .replay(StoredResponse(status: status, headers: headerMap, body: body.map { Array($0.readableBytesView) } ?? []))
        }
    }

    public func complete(scope: String, key: String, response: StoredResponse) async throws {
        let headers = JSONValue.object(response.headers.mapValues { .string($0) }).canonicalText
        _ = try await database.rows(
            """
            UPDATE idempotency_keys SET status = \(response.status), headers = \(headers)::jsonb,
                   body = \(ByteBuffer(bytes: response.body)), completed_at = now()
            WHERE scope = \(scope) AND key = \(key)
            """)
    }

    public func abandon(scope: String, key: String) async throws {
        _ = try await database.rows(
            "DELETE FROM idempotency_keys WHERE scope = \(scope) AND key = \(key) AND completed_at IS NULL")
    }

    /// Deletes keys older than 24 hours; returns how many.
    public func prune() async throws -> Int {
        try await database.rows(
            "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours' RETURNING 1").count
    }
}

/// Ready when the database answers and every shipped migration is applied unchanged.
public struct PostgresReadinessProbe: ReadinessProbe {
    let runner: MigrationRunner

    /// Creates the probe.
    public init(runner: MigrationRunner) {
        self.runner = runner
    }

    public func notReadyReason() async -> String? {
        do {
            try await runner.verify()
            return nil
        } catch let error as MigrationError {
            return error.description
        } catch {
            return "database unreachable: \(PostgresErrors.serverMessage(error))"
        }
    }
}
