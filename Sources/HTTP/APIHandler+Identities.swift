import API
import Core

/// The `identities` tag: a team's Azure identities.
extension APIHandler {
    /// Headers and null keys of a single identity response.
    func respond(_ identity: Identity, location: Bool = false) -> Components.Schemas.Identity {
        ResponseAdjustments.setHeader(.eTag, Wire.etag(identity.generation))
        if location { ResponseAdjustments.setHeader(.location, identity.path) }
        for key in Wire.identityNullKeys { ResponseAdjustments.ensureKey(key) }
        return Wire.identity(identity)
    }

    public func listIdentities(_ input: Operations.ListIdentities.Input) async throws -> Operations.ListIdentities.Output {
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, itemNullKeys: Wire.identityNullKeys, {
            try await identities.list(team: input.path.team, page: $0, context: $1)
        }, map: Wire.identity)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func createIdentity(_ input: Operations.CreateIdentity.Input) async throws -> Operations.CreateIdentity.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let identity = try await identities.create(
            team: input.path.team, try Wire.spec(body, name: nil), deletionPolicyGiven: body.deletionPolicy != nil, context: context)
        return .accepted(.init(body: .json(respond(identity, location: true))))
    }

    public func getIdentity(_ input: Operations.GetIdentity.Input) async throws -> Operations.GetIdentity.Output {
        let context = try RequestInfo.context()
        let identity = try await identities.get(team: input.path.team, name: input.path.identity, context: context)
        return .ok(.init(body: .json(respond(identity))))
    }

    public func putIdentity(_ input: Operations.PutIdentity.Input) async throws -> Operations.PutIdentity.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (identity, created, changed) = try await identities.put(
            team: input.path.team, name: input.path.identity, try Wire.spec(body, name: body.name ?? input.path.identity),
            deletionPolicyGiven: body.deletionPolicy != nil, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        if changed { return .accepted(.init(body: .json(respond(identity, location: created)))) }
        return .ok(.init(body: .json(respond(identity))))
    }

    public func updateIdentity(_ input: Operations.UpdateIdentity.Input) async throws -> Operations.UpdateIdentity.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (identity, changed) = try await identities.patch(
            team: input.path.team, name: input.path.identity, Wire.identityPatch(body), ifMatch: try Wire.ifMatch(input.headers.ifMatch),
            context: context)
        if changed { return .accepted(.init(body: .json(respond(identity)))) }
        return .ok(.init(body: .json(respond(identity))))
    }

    public func deleteIdentity(_ input: Operations.DeleteIdentity.Input) async throws -> Operations.DeleteIdentity.Output {
        let context = try RequestInfo.context()
        let identity = try await identities.delete(
            team: input.path.team, name: input.path.identity, ifMatch: try Wire.ifMatch(input.headers.ifMatch),
            cascade: input.query.cascade ?? false, context: context)
        return .accepted(.init(body: .json(respond(identity))))
    }
}
