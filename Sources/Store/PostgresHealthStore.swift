import Core
import Foundation
import PostgresNIO

/// Binding health in PostgreSQL.
public struct PostgresHealthStore: HealthStore {
    let database: PostgresPool

    /// Creates the store.
    public init(database: PostgresPool) {
        self.database = database
    }

    static let columns = "team, identity, binding, cluster, status, findings::text, observed_at, changed_at"

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            return Timestamp.parse(text) ?? Date(timeIntervalSince1970: 0)
        }
        return decoder
    }

    static func decode(_ row: PostgresRow) throws -> BindingHealth {
        let (team, identity, binding, cluster, status, findings, observedAt, changedAt) =
            try row.decode((String, String, String, String, String, String, Date, Date).self)
        return BindingHealth(team: team, identity: identity, binding: binding, cluster: cluster, status: HealthStatus(rawValue: status) ?? .unknown,
                             findings: (try? decoder().decode([Finding].self, from: Data(findings.utf8))) ?? [],
                             observedAt: observedAt, changedAt: changedAt)
    }

    public func recordAll(_ results: [BindingHealth]) async throws {
        guard !results.isEmpty else { return }
        // Statements over arrays, so that a sweep of thousands of bindings is a few round trips.
        let teams = results.map(\.team)
        let identities = results.map(\.identity)
        let bindings = results.map(\.binding)
        let clusters = results.map(\.cluster)
        let statuses = results.map(\.status.rawValue)
        let findings = results.map { JSONValue.encoding($0.findings).canonicalText }
        let observed = results.map { $0.observedAt ?? Date() }
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                SELECT r.i, h.status
                FROM unnest(\(teams)::text[], \(identities)::text[], \(bindings)::text[]) WITH ORDINALITY AS r(team, identity, binding, i)
                JOIN bindings b ON b.team = r.team AND b.identity = r.identity AND b.name = r.binding
                LEFT JOIN binding_health h ON h.team = r.team AND h.identity = r.identity AND h.binding = r.binding
                ORDER BY r.i
                FOR UPDATE OF b
                """, logger: self.database.logger
            ).collect()
            // Present bindings (1-based positions in `results`) and their previous status.
            var previous: [Int: HealthStatus?] = [:]
            for row in rows {
                let (position, status) = try row.decode((Int64, String?).self)
                // updateValue: assigning a nil status through the subscript would drop the key.
                previous.updateValue(status.map { HealthStatus(rawValue: $0) ?? .unknown }, forKey: Int(position) - 1)
            }
            let present = previous.keys.sorted()
            guard !present.isEmpty else { return }
            func pick<T>(_ values: [T], _ positions: [Int]) -> [T] { positions.map { values[$0] } }
            try await connection.query(
                """
                INSERT INTO binding_health (team, identity, binding, cluster, status, findings, observed_at, changed_at)
                SELECT team, identity, binding, cluster, status, findings::jsonb, observed_at, observed_at
                FROM unnest(\(pick(teams, present))::text[], \(pick(identities, present))::text[], \(pick(bindings, present))::text[],
                            \(pick(clusters, present))::text[], \(pick(statuses, present))::text[], \(pick(findings, present))::text[],
                            \(pick(observed, present))::timestamptz[])
                     AS r(team, identity, binding, cluster, status, findings, observed_at)
                ON CONFLICT (team, identity, binding) DO UPDATE SET
                    cluster = EXCLUDED.cluster, findings = EXCLUDED.findings, observed_at = EXCLUDED.observed_at,
                    changed_at = CASE WHEN binding_health.status = EXCLUDED.status THEN binding_health.changed_at ELSE EXCLUDED.observed_at END,
                    status = EXCLUDED.status
                """, logger: self.database.logger)
            let changed = present.filter { previous[$0] != .some(results[$0].status) }
            guard !changed.isEmpty else { return }
            try await connection.query(
                """
                INSERT INTO binding_health_history (team, identity, binding, cluster, status, previous, findings, observed_at)
                SELECT team, identity, binding, cluster, status, NULLIF(previous, ''), findings::jsonb, observed_at
                FROM unnest(\(pick(teams, changed))::text[], \(pick(identities, changed))::text[], \(pick(bindings, changed))::text[],
                            \(pick(clusters, changed))::text[], \(pick(statuses, changed))::text[],
                            \(changed.map { previous[$0].flatMap { $0?.rawValue } ?? "" })::text[], \(pick(findings, changed))::text[],
                            \(pick(observed, changed))::timestamptz[])
                     AS r(team, identity, binding, cluster, status, previous, findings, observed_at)
                """, logger: self.database.logger)
            for index in changed {
                try await PostgresAuditRows(executor: Executor(connection: connection, logger: self.database.logger)).append(HealthChange.event(results[index], previous: previous[index] ?? nil))
            }
        }
    }

    public func health(team: String, identity: String, binding: String) async throws -> BindingHealth? {
        try await database.rows(
            "SELECT \(unescaped: Self.columns) FROM binding_health WHERE team = \(team) AND identity = \(identity) AND binding = \(binding)"
        ).first.map(Self.decode)
    }

    public func allHealth(team: String?) async throws -> [BindingHealth] {
        // Every binding, also those no sweep has looked at yet (unknown).
        try await database.rows(
            """
            SELECT b.team, b.identity, b.name, b.cluster, coalesce(h.status, 'unknown'), coalesce(h.findings, '[]')::text,
                   h.observed_at, h.changed_at
            FROM bindings b LEFT JOIN binding_health h ON h.team = b.team AND h.identity = b.identity AND h.binding = b.name
            WHERE b.state <> 'deleting' AND (\(team)::text IS NULL OR b.team = \(team))
            ORDER BY b.team, b.identity, b.name
            """
        ).map { row in
            let (team, identity, binding, cluster, status, findings, observedAt, changedAt) =
                try row.decode((String, String, String, String, String, String, Date?, Date?).self)
            return BindingHealth(team: team, identity: identity, binding: binding, cluster: cluster, status: HealthStatus(rawValue: status) ?? .unknown,
                                 findings: (try? Self.decoder().decode([Finding].self, from: Data(findings.utf8))) ?? [],
                                 observedAt: observedAt, changedAt: changedAt)
        }
    }

    public func pruneHistory(before: Date) async throws -> Int {
        try await database.rows("DELETE FROM binding_health_history WHERE observed_at < \(before) RETURNING id").count
    }

    public func withSweepLock(cluster: String, _ body: @Sendable () async throws -> Void) async throws -> Bool {
        // A session lock on one pooled connection, held while the sweep runs: no transaction stays
        // open across the cluster's and Azure's answers.
        let key = "podid-health:\(cluster)"
        do {
            return try await database.client.withConnection { connection in
                let locked = try await connection.query("SELECT pg_try_advisory_lock(hashtext(\(key)))", logger: database.logger)
                    .collect()[0].decode(Bool.self)
                guard locked else { return false }
                do {
                    try await body()
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext(\(key)))", logger: database.logger).collect()
                    throw error
                }
                _ = try await connection.query("SELECT pg_advisory_unlock(hashtext(\(key)))", logger: database.logger).collect()
                return true
            }
        } catch {
            throw PostgresErrors.map(error)
        }
    }
}
