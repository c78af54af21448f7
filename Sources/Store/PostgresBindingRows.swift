import Core
import Foundation
import PostgresNIO

/// Bindings in PostgreSQL; `health` is the latest assignment check's status.
struct PostgresBindingRows: BindingRows {
    let executor: Executor

    static let columns = """
        bindings.team, bindings.identity, bindings.name, bindings.cluster, bindings.namespace, bindings.selector, bindings.state,
        bindings.message, bindings.last_error, bindings.generation, bindings.observed_generation, bindings.applied_client_id,
        bindings.created_at, bindings.updated_at,
        (SELECT h.status FROM binding_health h WHERE h.team = bindings.team AND h.identity = bindings.identity AND h.binding = bindings.name),
        bindings.object_naming
        """

    static func decode(_ row: PostgresRow) throws -> Binding {
        let cells = row.makeRandomAccess()
        return Binding(
            team: try cells[0].decode(String.self), identity: try cells[1].decode(String.self), name: try cells[2].decode(String.self),
            cluster: try cells[3].decode(String.self), namespace: try cells[4].decode(String.self), selector: try cells[5].decode(String.self),
            state: ResourceState(rawValue: try cells[6].decode(String.self)) ?? .pending, message: try cells[7].decode(String?.self),
            lastError: try cells[8].decode(String?.self), generation: try cells[9].decode(Int64.self),
            observedGeneration: try cells[10].decode(Int64.self), appliedClientId: try cells[11].decode(String?.self),
            objectNaming: KubeNames.Scheme(rawValue: Int(try cells[15].decode(Int16.self))) ?? .joined,
            createdAt: try cells[12].decode(Date.self), updatedAt: try cells[13].decode(Date.self),
            health: try cells[14].decode(String?.self).flatMap(HealthStatus.init(rawValue:)))
    }

    func get(team: String, identity: String, name: String, lock: RowLock) async throws -> Binding? {
        // FOR UPDATE OF: the health subquery's table is not locked.
        let clause = lock == .none ? "" : Executor.clause(lock) + " OF bindings"
        return try await executor.rows(
            "SELECT \(unescaped: Self.columns) FROM bindings WHERE team = \(team) AND identity = \(identity) AND name = \(name)\(unescaped: clause)"
        ).first.map(Self.decode)
    }

    func list(team: String, identity: String, page: PageRequest) async throws -> [Binding] {
        let after = page.after?.first ?? ""
        return try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM bindings
            WHERE team = \(team) AND identity = \(identity) AND name > \(after) ORDER BY name LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    func list(team: String, identity: String) async throws -> [Binding] {
        try await executor.rows(
            "SELECT \(unescaped: Self.columns) FROM bindings WHERE team = \(team) AND identity = \(identity) ORDER BY name"
        ).map(Self.decode)
    }

    func list(cluster: String) async throws -> [Binding] {
        try await executor.rows(
            "SELECT \(unescaped: Self.columns) FROM bindings WHERE cluster = \(cluster) AND state <> 'deleting' ORDER BY team, identity, name"
        ).map(Self.decode)
    }

    func siblings(of binding: Binding) async throws -> [Binding] {
        try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM bindings
            WHERE cluster = \(binding.cluster) AND namespace = \(binding.namespace) AND team = \(binding.team)
              AND identity = \(binding.identity) AND name <> \(binding.name)
            """
        ).map(Self.decode)
    }

    func underOldNaming(limit: Int) async throws -> [Binding] {
        try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM bindings
            WHERE object_naming < \(Int16(KubeNames.Scheme.current.rawValue)) AND state <> 'deleting'
            ORDER BY team, identity, name LIMIT \(limit)
            """
        ).map(Self.decode)
    }

    func teams(usingSelector selector: String, cluster: String, namespace: String?, excludingTeam: String) async throws -> [String] {
        try await executor.rows(
            """
            SELECT DISTINCT team FROM bindings
            WHERE cluster = \(cluster) AND selector = \(selector) AND team <> \(excludingTeam)
              AND (\(namespace)::text IS NULL OR namespace = \(namespace))
            ORDER BY team
            """
        ).map { try $0.decode(String.self) }
    }

    func insert(_ binding: Binding) async throws -> Binding {
        let rows = try await executor.rows(
            """
            INSERT INTO bindings (team, identity, name, cluster, namespace, selector, state, message, object_naming)
            VALUES (\(binding.team), \(binding.identity), \(binding.name), \(binding.cluster), \(binding.namespace),
                    \(binding.selector), \(binding.state.rawValue), \(binding.message), \(Int16(binding.objectNaming.rawValue)))
            RETURNING \(unescaped: Self.columns)
            """)
        return try Self.decode(rows[0])
    }

    func update(_ binding: Binding) async throws -> Binding {
        let rows = try await executor.rows(
            """
            UPDATE bindings SET selector = \(binding.selector), state = \(binding.state.rawValue), message = \(binding.message),
                   last_error = \(binding.lastError), generation = \(binding.generation),
                   observed_generation = \(binding.observedGeneration), applied_client_id = \(binding.appliedClientId),
                   object_naming = \(Int16(binding.objectNaming.rawValue)), updated_at = now()
            WHERE team = \(binding.team) AND identity = \(binding.identity) AND name = \(binding.name)
            RETURNING \(unescaped: Self.columns)
            """)
        guard let row = rows.first else { throw DomainError.notFound("binding", binding.name) }
        return try Self.decode(row)
    }

    func delete(team: String, identity: String, name: String) async throws {
        try await executor.rows("DELETE FROM bindings WHERE team = \(team) AND identity = \(identity) AND name = \(name)")
    }
}
