import Foundation

/// Clusters: admins write, every token reads. Creating or changing one queues a connection check;
/// nothing talks to the cluster inside the request.
public struct ClusterService: Sendable {
    let store: any ClusterStore
    let authorizer: Authorizer

    /// Creates the service.
    public init(store: any ClusterStore, audit: any AuditStore) {
        self.store = store
        self.authorizer = Authorizer(audit: audit)
    }

    /// Registers a cluster (admin) and queues its connection check.
    public func create(_ cluster: Cluster, context: CallContext) async throws -> Cluster {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "cluster", resourceName: cluster.name)
        try ClusterRules.validate(cluster)
        var cluster = cluster
        cluster.status = nil
        return try await store.insertCluster(
            cluster, job: ClusterJobs.checking(cluster, requestId: context.requestId),
            audit: context.audit("cluster.created", team: nil, resourceType: "cluster", resourceName: cluster.name))
    }

    /// One cluster (any token).
    public func get(_ name: String, context: CallContext) async throws -> Cluster {
        guard let cluster = try await store.cluster(named: name) else { throw DomainError.notFound("cluster", name) }
        return cluster
    }

    /// Clusters by name (any token).
    public func list(page: PageRequest, context: CallContext) async throws -> Page<Cluster> {
        let fetched = try await store.clusters(page: PageRequest(limit: page.limit + 1, after: page.after))
        return Page(fetched: fetched, limit: page.limit) { [$0.name] }
    }

    /// Changes a cluster (admin) and queues a new connection check.
    public func update(_ name: String, patch: ClusterPatch, ifMatch: Int64?, context: CallContext) async throws -> Cluster {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "cluster", resourceName: name)
        for _ in 0..<5 {
            guard let current = try await store.cluster(named: name) else { throw DomainError.notFound("cluster", name) }
            if let ifMatch, ifMatch != current.version { throw Self.stale(name) }
            var updated = current
            if let apiServer = patch.apiServer { updated.apiServer = apiServer }
            if let connection = patch.connection { updated.connection = connection }
            if let broker = patch.brokerNamespace { updated.brokerNamespace = broker }
            if let mode = patch.micMode { updated.micMode = mode }
            if let group = patch.nodeResourceGroup { updated.nodeResourceGroup = group }
            if let kubelet = patch.kubeletIdentity { updated.kubeletIdentity = kubelet }
            try ClusterRules.validate(updated)
            if updated == current { return current }
            let stored = try await store.replaceCluster(
                updated, ifVersion: current.version, job: ClusterJobs.checking(updated, requestId: context.requestId)
            ) { stored in
                context.audit("cluster.updated", team: nil, resourceType: "cluster", resourceName: name,
                              before: .encoding(current), after: .encoding(stored))
            }
            if let stored { return stored }
            if ifMatch != nil { throw Self.stale(name) }
        }
        throw DomainError(.conflict, "Cluster '\(name)' is changing too often to update; try again.")
    }

    /// Forgets a cluster (admin); 409 while bindings use it.
    public func delete(_ name: String, ifMatch: Int64?, context: CallContext) async throws {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "cluster", resourceName: name)
        guard let current = try await store.cluster(named: name) else { throw DomainError.notFound("cluster", name) }
        if let ifMatch, ifMatch != current.version { throw Self.stale(name) }
        let deleted = try await store.deleteCluster(
            named: name, ifVersion: current.version,
            audit: context.audit("cluster.deleted", team: nil, resourceType: "cluster", resourceName: name, before: .encoding(current)))
        if !deleted {
            if ifMatch != nil { throw Self.stale(name) }
            throw DomainError(.conflict, "Cluster '\(name)' changed while it was being deleted; read it again and retry.")
        }
    }

    static func stale(_ name: String) -> DomainError {
        DomainError(.preconditionFailed, "Cluster '\(name)' has changed since the ETag in If-Match; read it again and retry.")
    }
}
