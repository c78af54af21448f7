import API
import Core

/// The `clusters` tag: the clusters podid manages.
extension APIHandler {
    /// Headers and null keys of a single cluster response.
    func respond(_ cluster: Cluster, location: Bool = false) -> Components.Schemas.Cluster {
        ResponseAdjustments.setHeader(.eTag, Wire.etag(cluster.version))
        if location { ResponseAdjustments.setHeader(.location, "/v1/clusters/\(cluster.name)") }
        for key in Wire.clusterNullKeys { ResponseAdjustments.ensureKey(key) }
        return Wire.cluster(cluster)
    }

    public func listClusters(_ input: Operations.ListClusters.Input) async throws -> Operations.ListClusters.Output {
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, itemNullKeys: Wire.clusterNullKeys, {
            try await clusters.list(page: $0, context: $1)
        }, map: Wire.cluster)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func createCluster(_ input: Operations.CreateCluster.Input) async throws -> Operations.CreateCluster.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let cluster = try await clusters.create(try Wire.newCluster(body), context: context)
        return .created(.init(body: .json(respond(cluster, location: true))))
    }

    public func getCluster(_ input: Operations.GetCluster.Input) async throws -> Operations.GetCluster.Output {
        let context = try RequestInfo.context()
        return .ok(.init(body: .json(respond(try await clusters.get(input.path.cluster, context: context)))))
    }

    public func updateCluster(_ input: Operations.UpdateCluster.Input) async throws -> Operations.UpdateCluster.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let cluster = try await clusters.update(
            input.path.cluster, patch: try Wire.clusterPatch(body), ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .ok(.init(body: .json(respond(cluster))))
    }

    public func deleteCluster(_ input: Operations.DeleteCluster.Input) async throws -> Operations.DeleteCluster.Output {
        let context = try RequestInfo.context()
        try await clusters.delete(input.path.cluster, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .noContent(.init())
    }
}
