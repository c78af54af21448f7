import Core
import Foundation
import PostgresNIO

/// Clusters in PostgreSQL.
public struct PostgresClusterStore: ClusterStore {
    let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) {
        self.database = database
    }

    static let columns = """
        name, api_server, connection::text, broker_namespace, mic_mode, node_resource_group, kubelet_identity::text,
        status::text, version, created_at, updated_at
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
            micMode: MICMode(rawValue: try cells[4].decode(String.self)) ?? .cluster, nodeResourceGroup: try cells[5].decode(String?.self),
            kubeletIdentity: try json(6, KubeletIdentity.self), status: try json(7, ClusterStatus.self),
            version: try cells[8].decode(Int64.self), createdAt: try cells[9].decode(Date.self), updatedAt: try cells[10].decode(Date.self))
    }

    static func json(_ value: some Encodable) -> String { JSONValue.encoding(value).canonicalText }

    public func insertCluster(_ cluster: Cluster, job: NewJob, audit: AuditDraft) async throws -> Cluster {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO clusters (name, api_server, connection, broker_namespace, mic_mode, node_resource_group, kubelet_identity)
                VALUES (\(cluster.name), \(cluster.apiServer), \(Self.json(cluster.connection))::jsonb, \(cluster.brokerNamespace),
                        \(cluster.micMode.rawValue), \(cluster.nodeResourceGroup), \(cluster.kubeletIdentity.map { Self.json($0) })::jsonb)
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

    public func cluster(named name: String) async throws -> Cluster? {
        try await database.rows("SELECT \(unescaped: Self.columns) FROM clusters WHERE name = \(name)").first.map(Self.decode)
    }

    public func clusters(page: PageRequest) async throws -> [Cluster] {
        let after = page.after?.first ?? ""
        return try await database.rows(
            "SELECT \(unescaped: Self.columns) FROM clusters WHERE name > \(after) ORDER BY name LIMIT \(page.limit)"
        ).map(Self.decode)
    }

    public func replaceCluster(_ cluster: Cluster, ifVersion: Int64, job: NewJob,
                               audit: @escaping @Sendable (Cluster) -> AuditDraft) async throws -> Cluster? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE clusters SET api_server = \(cluster.apiServer), connection = \(Self.json(cluster.connection))::jsonb,
                       broker_namespace = \(cluster.brokerNamespace), mic_mode = \(cluster.micMode.rawValue),
                       node_resource_group = \(cluster.nodeResourceGroup),
                       kubelet_identity = \(cluster.kubeletIdentity.map { Self.json($0) })::jsonb,
                       version = version + 1, updated_at = now()
                WHERE name = \(cluster.name) AND version = \(ifVersion)
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let stored = try Self.decode(row)
            try await connection.enqueueAndAudit(job, audit(stored), logger: database.logger)
            return stored
        }
    }

    public func deleteCluster(named name: String, ifVersion: Int64, audit: AuditDraft) async throws -> Bool {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM clusters WHERE name = \(name) AND version = \(ifVersion) RETURNING name", logger: database.logger
            ).collect()
            guard !rows.isEmpty else { return false }
            try await connection.insertAudit(audit, logger: database.logger)
            return true
        }
    }

    public func recordStatus(cluster: String, _ status: ClusterStatus, audit: AuditDraft) async throws {
        try await database.transaction { connection in
            try await connection.query(
                "UPDATE clusters SET status = \(Self.json(status))::jsonb WHERE name = \(cluster)", logger: database.logger)
            try await connection.insertAudit(audit, logger: database.logger)
        }
    }
}
