import Core
import Foundation
import PostgresNIO

/// Clusters in PostgreSQL.
struct PostgresClusterRows: ClusterRows {
    let executor: Executor

    static let columns = """
        name, api_server, connection::text, broker_namespace, mic_mode, node_resource_group, kubelet_identity::text,
        status::text, version, created_at, updated_at, single_team
        """

    static func decode(_ row: PostgresRow) throws -> Cluster {
        let cells = row.makeRandomAccess()
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            return Timestamp.parse(text) ?? Date(timeIntervalSince1970: 0)
        }
        func json<T: Decodable>(_ index: Int, _ type: T.Type) throws -> T? {
            guard let text = try cells[index].decode(String?.self) else { return nil }
            return try decoder.decode(T.self, from: Data(text.utf8))
        }
        return Cluster(
            name: try cells[0].decode(String.self), apiServer: try cells[1].decode(String?.self),
            connection: try json(2, ClusterConnection.self) ?? .inCluster, brokerNamespace: try cells[3].decode(String.self),
            micMode: MICMode(rawValue: try cells[4].decode(String.self)) ?? .cluster, singleTeam: try cells[11].decode(Bool.self),
            nodeResourceGroup: try cells[5].decode(String?.self),
            kubeletIdentity: try json(6, KubeletIdentity.self), status: try json(7, ClusterStatus.self),
            version: try cells[8].decode(Int64.self), createdAt: try cells[9].decode(Date.self), updatedAt: try cells[10].decode(Date.self))
    }

    static func json(_ value: some Encodable) -> String { JSONValue.encoding(value).canonicalText }

    func get(_ name: String, lock: RowLock) async throws -> Cluster? {
        try await executor.rows("SELECT \(unescaped: Self.columns) FROM clusters WHERE name = \(name)\(unescaped: Executor.clause(lock))")
            .first.map(Self.decode)
    }

    func list(page: PageRequest) async throws -> [Cluster] {
        let after = page.after?.first ?? ""
        return try await executor.rows(
            "SELECT \(unescaped: Self.columns) FROM clusters WHERE name > \(after) ORDER BY name LIMIT \(page.limit)"
        ).map(Self.decode)
    }

    func insert(_ cluster: Cluster) async throws -> Cluster {
        let rows = try await executor.rows(
            """
            INSERT INTO clusters (name, api_server, connection, broker_namespace, mic_mode, node_resource_group, kubelet_identity, single_team)
            VALUES (\(cluster.name), \(cluster.apiServer), \(Self.json(cluster.connection))::jsonb, \(cluster.brokerNamespace),
                    \(cluster.micMode.rawValue), \(cluster.nodeResourceGroup), \(cluster.kubeletIdentity.map { Self.json($0) })::jsonb,
                    \(cluster.singleTeam))
            RETURNING \(unescaped: Self.columns)
            """)
        return try Self.decode(rows[0])
    }

    func update(_ cluster: Cluster) async throws -> Cluster {
        // A new version is a change of the settings (updated_at moves); a status alone is not.
        let rows = try await executor.rows(
            """
            UPDATE clusters SET api_server = \(cluster.apiServer), connection = \(Self.json(cluster.connection))::jsonb,
                   broker_namespace = \(cluster.brokerNamespace), mic_mode = \(cluster.micMode.rawValue),
                   single_team = \(cluster.singleTeam),
                   node_resource_group = \(cluster.nodeResourceGroup),
                   kubelet_identity = \(cluster.kubeletIdentity.map { Self.json($0) })::jsonb,
                   status = \(cluster.status.map { Self.json($0) })::jsonb,
                   updated_at = CASE WHEN version = \(cluster.version) THEN updated_at ELSE now() END,
                   version = \(cluster.version)
            WHERE name = \(cluster.name)
            RETURNING \(unescaped: Self.columns)
            """)
        guard let row = rows.first else { throw DomainError.notFound("cluster", cluster.name) }
        return try Self.decode(row)
    }

    func delete(_ name: String) async throws {
        try await executor.rows("DELETE FROM clusters WHERE name = \(name)")
    }
}
