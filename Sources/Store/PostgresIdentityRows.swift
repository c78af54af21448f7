import Core
import Foundation
import PostgresNIO

/// Identities in PostgreSQL.
struct PostgresIdentityRows: IdentityRows {
    let executor: Executor

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

    func get(team: String, name: String, lock: RowLock) async throws -> Identity? {
        try await executor.rows(
            "SELECT \(unescaped: Self.columns) FROM identities WHERE team = \(team) AND name = \(name)\(unescaped: Executor.clause(lock))"
        ).first.map(Self.decode)
    }

    func list(team: String, page: PageRequest) async throws -> [Identity] {
        let after = page.after?.first ?? ""
        return try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM identities
            WHERE team = \(team) AND name > \(after)
            ORDER BY name LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    func list(keys: [IdentityKey]) async throws -> [Identity] {
        guard !keys.isEmpty else { return [] }
        let teams = keys.map(\.team)
        let names = keys.map(\.name)
        return try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM identities
            WHERE (team, name) IN (SELECT * FROM unnest(\(teams)::text[], \(names)::text[]))
            """
        ).map(Self.decode)
    }

    func count(team: String) async throws -> Int {
        try await executor.rows("SELECT count(*)::int FROM identities WHERE team = \(team)")[0].decode(Int.self)
    }

    func insert(_ identity: Identity) async throws -> Identity {
        let rows = try await executor.rows(
            """
            INSERT INTO identities (team, name, subscription_id, resource_group, location, tags, grants, deletion_policy,
                                    adopt_resource_id, adopted_by_admin, state, message)
            VALUES (\(identity.team), \(identity.name), \(identity.subscriptionId), \(identity.resourceGroup),
                    \(identity.location), \(Self.json(identity.tags))::jsonb, \(Self.json(identity.grants))::jsonb,
                    \(identity.deletionPolicy.rawValue), \(identity.adoptResourceId), \(identity.adoptedByAdmin),
                    \(identity.state.rawValue), \(identity.message))
            RETURNING \(unescaped: Self.columns)
            """)
        return try Self.decode(rows[0])
    }

    func update(_ identity: Identity) async throws -> Identity {
        let rows = try await executor.rows(
            """
            UPDATE identities SET
                location = \(identity.location), tags = \(Self.json(identity.tags))::jsonb, grants = \(Self.json(identity.grants))::jsonb,
                deletion_policy = \(identity.deletionPolicy.rawValue), resource_id = \(identity.resourceId), client_id = \(identity.clientId),
                principal_id = \(identity.principalId), tenant_id = \(identity.tenantId), assignments = \(Self.json(identity.assignments))::jsonb,
                state = \(identity.state.rawValue), message = \(identity.message), last_error = \(identity.lastError),
                generation = \(identity.generation), observed_generation = \(identity.observedGeneration), updated_at = now()
            WHERE team = \(identity.team) AND name = \(identity.name)
            RETURNING \(unescaped: Self.columns)
            """)
        guard let row = rows.first else { throw DomainError.notFound("identity", identity.name) }
        return try Self.decode(row)
    }

    func delete(team: String, name: String) async throws {
        try await executor.rows("DELETE FROM identities WHERE team = \(team) AND name = \(name)")
    }
}
