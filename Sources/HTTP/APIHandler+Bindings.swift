import API
import Core
import OpenAPIRuntime

/// The `bindings` tag: an identity's bindings in clusters, and the manifests podid applies.
extension APIHandler {
    /// Headers and null keys of a single binding response.
    func respond(_ binding: Binding, location: Bool = false) -> Components.Schemas.Binding {
        ResponseAdjustments.setHeader(.eTag, Wire.etag(binding.generation))
        if location { ResponseAdjustments.setHeader(.location, binding.path) }
        for key in Wire.bindingNullKeys { ResponseAdjustments.ensureKey(key) }
        return Wire.binding(binding)
    }

    public func listBindings(_ input: Operations.ListBindings.Input) async throws -> Operations.ListBindings.Output {
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, itemNullKeys: Wire.bindingNullKeys, {
            try await bindings.list(team: input.path.team, identity: input.path.identity, page: $0, context: $1)
        }, map: Wire.binding)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func createBinding(_ input: Operations.CreateBinding.Input) async throws -> Operations.CreateBinding.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let binding = try await bindings.create(team: input.path.team, identity: input.path.identity, Wire.newBinding(body), context: context)
        return .accepted(.init(body: .json(respond(binding, location: true))))
    }

    public func getBinding(_ input: Operations.GetBinding.Input) async throws -> Operations.GetBinding.Output {
        let context = try RequestInfo.context()
        let binding = try await bindings.get(team: input.path.team, identity: input.path.identity, name: input.path.binding, context: context)
        return .ok(.init(body: .json(respond(binding))))
    }

    public func updateBinding(_ input: Operations.UpdateBinding.Input) async throws -> Operations.UpdateBinding.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (binding, changed) = try await bindings.patch(
            team: input.path.team, identity: input.path.identity, name: input.path.binding, selector: body.selector,
            cluster: body.cluster, namespace: body.namespace, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        if changed { return .accepted(.init(body: .json(respond(binding)))) }
        return .ok(.init(body: .json(respond(binding))))
    }

    public func deleteBinding(_ input: Operations.DeleteBinding.Input) async throws -> Operations.DeleteBinding.Output {
        let context = try RequestInfo.context()
        let binding = try await bindings.delete(
            team: input.path.team, identity: input.path.identity, name: input.path.binding,
            ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .accepted(.init(body: .json(respond(binding))))
    }

    public func getManifests(_ input: Operations.GetManifests.Input) async throws -> Operations.GetManifests.Output {
        let context = try RequestInfo.context()
        let export = try await bindings.manifests(
            team: input.path.team, identity: input.path.identity, cluster: input.query.cluster, namespace: input.query.namespace,
            context: context)
        return .ok(.init(body: .yaml(HTTPBody(ManifestsYAML.render(export)))))
    }
}
