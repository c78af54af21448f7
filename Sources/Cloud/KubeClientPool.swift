import Core
import Foundation
import ServiceLifecycle

/// One `KubeClient` per cluster, built on first use and rebuilt when the cluster's connection
/// changes; all are closed when the service shuts down.
public actor KubeClientPool: KubernetesConnector, Service {
    var clients: [String: (key: String, client: KubeClient)] = [:]
    /// Where clusters' credential files may be.
    let files: CredentialFiles

    /// Creates an empty pool whose connections read credential files only under `credentials`.
    public init(credentials: CredentialDirectories) {
        self.files = .only(credentials)
    }

    public func gateway(for cluster: Cluster) async throws -> any KubernetesGateway {
        let key = JSONValue.encoding(cluster.connection).canonicalText + "|" + (cluster.apiServer ?? "")
        if let cached = clients[cluster.name], cached.key == key { return cached.client }
        let connection: KubeConnection
        do {
            connection = try Self.connection(for: cluster, files: files)
        } catch {
            throw UpstreamError(service: .kubernetes, status: nil, code: "ConnectionConfig",
                                message: "cluster \(cluster.name): \(error)", retryable: false)
        }
        let client = try KubeClient(connection: connection)
        if let old = clients[cluster.name] { try? await old.client.shutdown() }
        clients[cluster.name] = (key, client)
        return client
    }

    /// The connection a cluster describes.
    public static func connection(for cluster: Cluster, files: CredentialFiles) throws -> KubeConnection {
        switch cluster.connection {
        case .inCluster:
            return try KubeConnection.inCluster()
        case .kubeconfig(let path, let context):
            return try KubeConnection.kubeconfig(path: path, context: context, files: files)
        case .token(let tokenFile, let caFile):
            return try KubeConnection.tokenFile(server: cluster.apiServer ?? "", tokenFile: tokenFile, caFile: caFile, files: files)
        }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        for (_, entry) in clients { try? await entry.client.shutdown() }
        clients.removeAll()
    }
}
