import Core
import Foundation
import PostgresNIO

/// Identities in PostgreSQL. Each change, its audit event and its job commit together.
public struct PostgresIdentityStore: IdentityStore {
    let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) {
        self.database = database
    }

    static let columns = """
        team, name, subscription_id, resource_group, location, tags::text, grants::text, deletion_policy,
        adopt_resource_id, adopted_by_admin, resource_id, client_id, principal_id, tenant_id, assignments::text, state,
        message, last_error, generation, observed_generation, created_at, updated_at
        """

    static func decode(_ row: PostgresRow) throws -> Identity {
        let cells = row.makeRandomAccess()
        let decoder = JSONDecoder()
        return Identity(
            team: try cells[0].decode(String.self), name: try cells[1].decode(String.self),
            subscriptionId: try cells[2].decode(String.self), resourceGroup: try cells[3].decode(String.self),
            location: try cells[4].decode(String.self),
            tags: try decoder.decode([String: String].self, from: Data(try cells[5].decode(String.self).utf8)),
            grants: try decoder.decode([IdentityGrant].self, from: Data(try cells[6].decode(String.self).utf8)),
            deletionPolicy: DeletionPolicy(rawValue: try cells[7].decode(String.self)) ?? .delete,
            adoptResourceId: try cells[8].decode(String?.self), adoptedByAdmin: try cells[9].decode(Bool.self),
            resourceId: try cells[10].decode(String?.self), clientId: try cells[11].decode(String?.self),
            principalId: try cells[12].decode(String?.self), tenantId: try cells[13].decode(String?.self),
            assignments: try decoder.decode([RecordedAssignment].self, from: Data(try cells[14].decode(String.self).utf8)),
            state: ResourceState(rawValue: try cells[15].decode(String.self)) ?? .pending,
            message: try cells[16].decode(String?.self), lastError: try cells[17].decode(String?.self),
            generation: try cells[18].decode(Int64.self), observedGeneration: try cells[19].decode(Int64.self),
            createdAt: try cells[20].decode(Date.self), updatedAt: try cells[21].decode(Date.self))
    }

    static func json(_ value: some Encodable) -> String {
        JSONValue.encoding(value).canonicalText
    }

    public func insertIdentity(_ identity: Identity, job: NewJob, audit: AuditDraft) async throws -> Identity {
        try await database.transaction { connection in
            // Locking the team row serializes creations within one team, so two concurrent requests
            // cannot both take the last place of the quota.
            let teams = try await connection.query(
                "SELECT (policy->>'maxIdentities')::int FROM teams WHERE name = \(identity.team) FOR UPDATE",
                logger: database.logger
            ).collect()
            guard let team = teams.first else { throw DomainError.notFound("team", identity.team) }
            let limit = try team.decode(Int?.self) ?? 0
            let count = try await connection.query(
                "SELECT count(*)::int FROM identities WHERE team = \(identity.team)", logger: database.logger
            ).collect()[0].decode(Int.self)
            if count >= limit {
                throw DomainError(
                    .conflict,
                    "Team '\(identity.team)' has reached its quota: policy.maxIdentities is \(limit) and it owns \(count) identities. Delete one, or ask an admin to raise maxIdentities.")
            }
            let rows = try await connection.query(
                """
                INSERT INTO identities (team, name, subscription_id, resource_group, location, tags, grants, deletion_policy,
                                        adopt_resource_id, adopted_by_admin, state, message)
                VALUES (\(identity.team), \(identity.name), \(identity.subscriptionId), \(identity.resourceGroup),
                        \(identity.location), \(Self.json(identity.tags))::jsonb, \(Self.json(identity.grants))::jsonb,
                        \(identity.deletionPolicy.rawValue), \(identity.adoptResourceId), \(identity.adoptedByAdmin),
                        \(identity.state.rawValue), \(identity.message))
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

    public func identities(keys: [IdentityKey]) async throws -> [Identity] {
        guard !keys.isEmpty else { return [] }
        let teams = keys.map(\.team)
        let names = keys.map(\.name)
        return try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM identities
            WHERE (team, name) IN (SELECT * FROM unnest(\(teams)::text[], \(names)::text[]))
            """
        ).map(Self.decode)
    }

    public func identity(team: String, name: String) async throws -> Identity? {
        try await database.rows("SELECT \(unescaped: Self.columns) FROM identities WHERE team = \(team) AND name = \(name)")
            .first.map(Self.decode)
    }

    public func identities(team: String, page: PageRequest) async throws -> [Identity] {
        let after = page.after?.first ?? ""
        return try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM identities
            WHERE team = \(team) AND name > \(after)
            ORDER BY name LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    public func replaceIdentity(_ identity: Identity, ifGeneration: Int64, job: NewJob,
                                audit: @escaping @Sendable (Identity) -> AuditDraft) async throws -> Identity? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE identities SET tags = \(Self.json(identity.tags))::jsonb, grants = \(Self.json(identity.grants))::jsonb,
                       deletion_policy = \(identity.deletionPolicy.rawValue), state = 'pending', message = \(identity.message),
                       generation = generation + 1, updated_at = now()
                WHERE team = \(identity.team) AND name = \(identity.name) AND generation = \(ifGeneration) AND state <> 'deleting'
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let stored = try Self.decode(row)
            try await connection.enqueueAndAudit(job, audit(stored), logger: database.logger)
            return stored
        }
    }

    public func markDeleting(team: String, name: String, ifGeneration: Int64, job: NewJob,
                             cascade: (@Sendable (Binding) -> (NewJob, AuditDraft))?,
                             audit: @escaping @Sendable (Identity) -> AuditDraft) async throws -> Identity? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE identities SET state = 'deleting', message = 'waiting for a worker to delete it', updated_at = now()
                WHERE team = \(team) AND name = \(name) AND generation = \(ifGeneration) AND state <> 'deleting'
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let stored = try Self.decode(row)
            // The identity row is locked now, and a new binding checks it: the list is complete.
            let bindings = try await connection.query(
                "SELECT \(unescaped: PostgresBindingStore.columns) FROM bindings WHERE team = \(team) AND identity = \(name) AND state <> 'deleting' ORDER BY name",
                logger: database.logger
            ).collect().map(PostgresBindingStore.decode)
            if !bindings.isEmpty {
                guard let cascade else {
                    let names = bindings.prefix(10).map { "\($0.name) (cluster \($0.cluster))" }.joined(separator: ", ")
                    throw DomainError(.conflict, "Identity '\(name)' still has \(bindings.count) binding(s): \(names). Delete them first, or DELETE with ?cascade=true to delete them too.")
                }
                for binding in bindings {
                    let (bindingJob, event) = cascade(binding)
                    try await connection.query(
                        """
                        UPDATE bindings SET state = 'deleting', message = 'waiting for a worker to delete it (the identity is being deleted)',
                               updated_at = now()
                        WHERE team = \(team) AND identity = \(name) AND name = \(binding.name)
                        """, logger: database.logger)
                    let dedupe = "binding:\(team)/\(name)/\(binding.name)"
                    try await connection.query(
                        """
                        UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now(),
                               last_error = 'cancelled: the binding is being deleted'
                        WHERE dedupe_key = \(dedupe) AND state = 'queued'
                        """, logger: database.logger)
                    try await PostgresJobQueue.enqueue(bindingJob, on: connection, logger: database.logger)
                    try await connection.insertAudit(event, logger: database.logger)
                }
            }
            // Queued work for the identity no longer applies; a running job finishes first (the
            // delete job waits for it: same serial key).
            try await connection.query(
                """
                UPDATE jobs SET state = 'cancelled', finished_at = now(), updated_at = now(),
                       last_error = 'cancelled: the identity is being deleted'
                WHERE serial_key = \(job.serialKey) AND state IN ('queued', 'failed') AND kind <> \(job.kind)
                """, logger: database.logger)
            try await connection.enqueueAndAudit(job, audit(stored), logger: database.logger)
            return stored
        }
    }

    public func updateStatus(team: String, name: String, _ update: IdentityStatusUpdate, audit: [AuditDraft]) async throws -> Identity? {
        try await database.transaction { connection in
            let lastError: String? = update.lastError ?? nil
            let rows = try await connection.query(
                """
                UPDATE identities SET
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
                    resource_id = coalesce(\(update.azure?.resourceId)::text, resource_id),
                    client_id = coalesce(\(update.azure?.clientId)::text, client_id),
                    principal_id = coalesce(\(update.azure?.principalId)::text, principal_id),
                    tenant_id = coalesce(nullif(\(update.azure?.tenantId)::text, ''), tenant_id),
                    assignments = coalesce(\(update.assignments.map { Self.json($0) })::jsonb, assignments),
                    tags = coalesce(\(update.tags.map { Self.json($0) })::jsonb, tags),
                    location = coalesce(\(update.location)::text, location),
                    updated_at = now()
                WHERE team = \(team) AND name = \(name)
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            for event in audit { try await connection.insertAudit(event, logger: database.logger) }
            return try Self.decode(row)
        }
    }

    public func deleteIdentity(team: String, name: String, audit: [AuditDraft]) async throws {
        try await database.transaction { connection in
            try await connection.query("DELETE FROM identities WHERE team = \(team) AND name = \(name)", logger: database.logger)
            for event in audit { try await connection.insertAudit(event, logger: database.logger) }
        }
    }
}
