import Core
import Foundation
import PostgresNIO

/// Bindings in PostgreSQL.
public struct PostgresBindingStore: BindingStore {
    let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) {
        self.database = database
    }

    static let columns = """
        bindings.team, bindings.identity, bindings.name, bindings.cluster, bindings.namespace, bindings.selector, bindings.state,
        bindings.message, bindings.last_error, bindings.generation, bindings.observed_generation, bindings.applied_client_id,
        bindings.created_at, bindings.updated_at,
        (SELECT h.status FROM binding_health h WHERE h.team = bindings.team AND h.identity = bindings.identity AND h.binding = bindings.name)
        """

    static func decode(_ row: PostgresRow) throws -> Binding {
        let cells = row.makeRandomAccess()
        return Binding(
            team: try cells[0].decode(String.self), identity: try cells[1].decode(String.self), name: try cells[2].decode(String.self),
            cluster: try cells[3].decode(String.self), namespace: try cells[4].decode(String.self), selector: try cells[5].decode(String.self),
            state: ResourceState(rawValue: try cells[6].decode(String.self)) ?? .pending, message: try cells[7].decode(String?.self),
            lastError: try cells[8].decode(String?.self), generation: try cells[9].decode(Int64.self),
            observedGeneration: try cells[10].decode(Int64.self), appliedClientId: try cells[11].decode(String?.self),
            createdAt: try cells[12].decode(Date.self), updatedAt: try cells[13].decode(Date.self),
            health: try cells[14].decode(String?.self).flatMap(HealthStatus.init(rawValue:)))
    }

    /// Refuses a selector another team uses in the cluster. The caller holds the cluster's row lock,
    /// so two teams cannot take one selector at the same moment.
    static func checkSelector(_ binding: Binding, on connection: PostgresConnection, database: PostgresDatabase) async throws {
        let others = try await connection.query(
            """
            SELECT DISTINCT team FROM bindings
            WHERE cluster = \(binding.cluster) AND selector = \(binding.selector) AND team <> \(binding.team)
            """, logger: database.logger
        ).collect()
        if !others.isEmpty {
            throw DomainError(
                .conflict,
                "Selector '\(binding.selector)' is used by another team in cluster \(binding.cluster); pods are matched by selector alone, so choose another one.",
                fields: [FieldProblem("selector", "is used by another team in cluster \(binding.cluster)")])
        }
    }

    public func insertBinding(_ binding: Binding, job: NewJob, audit: AuditDraft) async throws -> Binding {
        try await database.transaction { connection in
            let clusters = try await connection.query(
                "SELECT name FROM clusters WHERE name = \(binding.cluster) FOR UPDATE", logger: database.logger
            ).collect()
            guard !clusters.isEmpty else {
                throw DomainError(.validation, "There is no cluster named '\(binding.cluster)'.",
                                  fields: [FieldProblem("cluster", "there is no cluster named '\(binding.cluster)'; GET /v1/clusters lists them")])
            }
            let identities = try await connection.query(
                "SELECT state FROM identities WHERE team = \(binding.team) AND name = \(binding.identity) FOR SHARE",
                logger: database.logger
            ).collect()
            guard let identity = identities.first else { throw DomainError.notFound("identity", binding.identity) }
            if try identity.decode(String.self) == ResourceState.deleting.rawValue {
                throw DomainError(.conflict, "Identity '\(binding.identity)' is being deleted; it cannot be bound.")
            }
            try await Self.checkSelector(binding, on: connection, database: database)
            let rows = try await connection.query(
                """
                INSERT INTO bindings (team, identity, name, cluster, namespace, selector, state, message)
                VALUES (\(binding.team), \(binding.identity), \(binding.name), \(binding.cluster), \(binding.namespace),
                        \(binding.selector), \(binding.state.rawValue), \(binding.message))
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            let stored = try Self.decode(rows[0])
            var event = audit
            event.after = .encoding(stored)
            try await connection.enqueueAndAudit(job, event, logger: database.logger)
            return stored
        }
    }

    public func binding(team: String, identity: String, name: String) async throws -> Binding? {
        try await database.rows(
            "SELECT \(unescaped: Self.columns) FROM bindings WHERE team = \(team) AND identity = \(identity) AND name = \(name)"
        ).first.map(Self.decode)
    }

    public func bindings(team: String, identity: String, page: PageRequest) async throws -> [Binding] {
        let after = page.after?.first ?? ""
        return try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM bindings
            WHERE team = \(team) AND identity = \(identity) AND name > \(after) ORDER BY name LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    public func bindings(team: String, identity: String) async throws -> [Binding] {
        try await database.rows(
            "SELECT \(unescaped: Self.columns) FROM bindings WHERE team = \(team) AND identity = \(identity) ORDER BY name"
        ).map(Self.decode)
    }

    public func bindings(cluster: String) async throws -> [Binding] {
        try await database.rows(
            "SELECT \(unescaped: Self.columns) FROM bindings WHERE cluster = \(cluster) AND state <> 'deleting' ORDER BY team, identity, name"
        ).map(Self.decode)
    }

    public func siblings(of binding: Binding) async throws -> [Binding] {
        try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM bindings
            WHERE cluster = \(binding.cluster) AND namespace = \(binding.namespace) AND team = \(binding.team)
              AND identity = \(binding.identity) AND name <> \(binding.name)
            """
        ).map(Self.decode)
    }

    public func replaceBinding(_ binding: Binding, ifGeneration: Int64, job: NewJob,
                               audit: @escaping @Sendable (Binding) -> AuditDraft) async throws -> Binding? {
        try await database.transaction { connection in
            _ = try await connection.query("SELECT name FROM clusters WHERE name = \(binding.cluster) FOR UPDATE", logger: database.logger).collect()
            try await Self.checkSelector(binding, on: connection, database: database)
            let rows = try await connection.query(
                """
                UPDATE bindings SET selector = \(binding.selector), state = 'pending', message = \(binding.message),
                       generation = generation + 1, updated_at = now()
                WHERE team = \(binding.team) AND identity = \(binding.identity) AND name = \(binding.name)
                  AND generation = \(ifGeneration) AND state <> 'deleting'
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let stored = try Self.decode(row)
            try await connection.enqueueAndAudit(job, audit(stored), logger: database.logger)
            return stored
        }
    }

    public func markBindingDeleting(_ binding: Binding, ifGeneration: Int64, job: NewJob,
                                    audit: @escaping @Sendable (Binding) -> AuditDraft) async throws -> Binding? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE bindings SET state = 'deleting', message = 'waiting for a worker to delete it', updated_at = now()
                WHERE team = \(binding.team) AND identity = \(binding.identity) AND name = \(binding.name)
                  AND generation = \(ifGeneration) AND state <> 'deleting'
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let stored = try Self.decode(row)
            try await connection.query(
                """
                UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now(), last_error = 'cancelled: the binding is being deleted'
                WHERE dedupe_key = \("binding:\(binding.team)/\(binding.identity)/\(binding.name)") AND state IN ('queued', 'failed')
                """, logger: database.logger)
            try await connection.enqueueAndAudit(job, audit(stored), logger: database.logger)
            return stored
        }
    }

    public func updateBindingStatus(_ binding: Binding, _ update: BindingStatusUpdate, audit: [AuditDraft]) async throws -> Binding? {
        try await database.transaction { connection in
            let lastError: String? = update.lastError ?? nil
            let rows = try await connection.query(
                """
                UPDATE bindings SET
                    state = CASE
                        WHEN state = 'deleting' THEN state
                        WHEN \(update.observedGeneration)::bigint IS NOT NULL
                            THEN CASE WHEN generation = \(update.observedGeneration)::bigint THEN 'ready' ELSE 'pending' END
                        ELSE coalesce(\(update.state?.rawValue)::text, state) END,
                    observed_generation = greatest(observed_generation, coalesce(\(update.observedGeneration)::bigint, 0)),
                    message = CASE
                        WHEN \(update.observedGeneration)::bigint IS NOT NULL AND generation <> \(update.observedGeneration)::bigint AND state <> 'deleting'
                            THEN 'waiting for a worker to apply generation ' || generation
                        ELSE coalesce(\(update.message)::text, message) END,
                    last_error = CASE WHEN \(update.lastError != nil) THEN \(lastError)::text ELSE last_error END,
                    applied_client_id = coalesce(\(update.appliedClientId)::text, applied_client_id),
                    updated_at = now()
                WHERE team = \(binding.team) AND identity = \(binding.identity) AND name = \(binding.name)
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            for event in audit { try await connection.insertAudit(event, logger: database.logger) }
            return try Self.decode(row)
        }
    }

    public func deleteBinding(_ binding: Binding, audit: [AuditDraft], identityDeletion: NewJob) async throws {
        try await database.transaction { connection in
            try await connection.query(
                "DELETE FROM bindings WHERE team = \(binding.team) AND identity = \(binding.identity) AND name = \(binding.name)",
                logger: database.logger)
            for event in audit { try await connection.insertAudit(event, logger: database.logger) }
            let waiting = try await connection.query(
                """
                SELECT 1 FROM identities
                WHERE team = \(binding.team) AND name = \(binding.identity) AND state = 'deleting'
                  AND NOT EXISTS (SELECT 1 FROM bindings WHERE team = \(binding.team) AND identity = \(binding.identity))
                """, logger: database.logger
            ).collect()
            if !waiting.isEmpty {
                // The identity's delete waited for its bindings; this was the last one.
                try await PostgresJobQueue.enqueue(identityDeletion, on: connection, logger: database.logger)
            }
        }
    }

    public func enqueue(_ jobs: [NewJob]) async throws {
        guard !jobs.isEmpty else { return }
        try await database.transaction { connection in
            for job in jobs { try await PostgresJobQueue.enqueue(job, on: connection, logger: database.logger) }
        }
    }
}
