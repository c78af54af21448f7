import Foundation

/// Clusters: admins write, every token reads. Creating or changing one queues a connection check;
/// nothing talks to the cluster inside the request.
public struct ClusterService: Sendable {
    let database: any Database
    let authorizer: Authorizer
    /// Where credential files may be (`PODID_CLUSTER_CREDENTIALS_DIR`).
    let credentials: CredentialDirectories

    /// Creates the service.
    public init(database: any Database, credentials: CredentialDirectories) {
        self.database = database
        self.authorizer = Authorizer(database: database)
        self.credentials = credentials
    }

    /// Registers a cluster (admin) and queues its connection check.
    public func create(_ cluster: Cluster, context: CallContext) async throws -> Cluster {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "cluster", resourceName: cluster.name)
        try ClusterRules.validate(cluster, credentials: credentials)
        var cluster = cluster
        cluster.status = nil
        let event = context.audit("cluster.created", team: nil, resourceType: "cluster", resourceName: cluster.name)
        return try await database.transaction { [cluster] tx in
            try await ClusterSharing.checkCluster(cluster, field: "micMode", in: tx)
            let stored = try await tx.clusters.insert(cluster)
            var created = event
            created.after = .encoding(stored)
            try await tx.enqueue(ClusterCheck.job(stored.name, requestId: context.requestId), audited: created)
            return stored
        }
    }

    /// One cluster (any token).
    public func get(_ name: String, context: CallContext) async throws -> Cluster {
        guard let cluster = try await database.clusters.get(name, lock: .none) else { throw DomainError.notFound("cluster", name) }
        return cluster
    }

    /// Clusters by name (any token).
    public func list(page: PageRequest, context: CallContext) async throws -> Page<Cluster> {
        return try await Page.fetch(page, key: { [$0.name] }) { try await database.clusters.list(page: $0) }
    }

    /// Changes a cluster (admin) and queues a new connection check.
    public func update(_ name: String, patch: ClusterPatch, ifMatch: Int64?, context: CallContext) async throws -> Cluster {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "cluster", resourceName: name)
        return try await database.transaction { tx in
            guard let current = try await tx.clusters.get(name, lock: .update) else { throw DomainError.notFound("cluster", name) }
            try Precondition.check(ifMatch, current: current.version, stale: Self.stale(name))
            var updated = current
            if let apiServer = patch.apiServer { updated.apiServer = apiServer }
            if let connection = patch.connection { updated.connection = connection }
            if let broker = patch.brokerNamespace { updated.brokerNamespace = broker }
            if let mode = patch.micMode { updated.micMode = mode }
            if let single = patch.singleTeam { updated.singleTeam = single }
            if let group = patch.nodeResourceGroup { updated.nodeResourceGroup = group }
            if let kubelet = patch.kubeletIdentity { updated.kubeletIdentity = kubelet }
            try ClusterRules.validate(updated, credentials: credentials)
            if updated == current { return current }
            if !ClusterSharing.allows(updated, teams: 2) && ClusterSharing.allows(current, teams: 2) {
                try await ClusterSharing.checkCluster(updated, field: patch.singleTeam == false ? "singleTeam" : "micMode", in: tx)
            }
            updated.version = current.version + 1
            let stored = try await tx.clusters.update(updated)
            try await tx.enqueue(ClusterCheck.job(name, requestId: context.requestId),
                                 audited: context.audit("cluster.updated", team: nil, resourceType: "cluster", resourceName: name,
                                                        before: .encoding(current), after: .encoding(stored)))
            return stored
        }
    }

    /// Forgets a cluster (admin); 409 while bindings use it.
    public func delete(_ name: String, ifMatch: Int64?, context: CallContext) async throws {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "cluster", resourceName: name)
        try await database.transaction { tx in
            guard let current = try await tx.clusters.get(name, lock: .update) else { throw DomainError.notFound("cluster", name) }
            try Precondition.check(ifMatch, current: current.version, stale: Self.stale(name))
            try await tx.clusters.delete(name)
            try await tx.audit.append(context.audit("cluster.deleted", team: nil, resourceType: "cluster", resourceName: name,
                                                    before: .encoding(current)))
        }
    }

    static func stale(_ name: String) -> DomainError { Precondition.stale("Cluster", name) }
}
