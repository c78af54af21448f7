import API
import Core

/// The `tokens` tag: the caller's own token, team tokens and platform tokens.
extension APIHandler {
    public func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let principal = try RequestInfo.context().principal
        for key in Wire.meNullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(Wire.me(principal))))
    }

    public func listTeamTokens(_ input: Operations.ListTeamTokens.Input) async throws -> Operations.ListTeamTokens.Output {
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, {
            try await tokens.listTeamTokens(team: input.path.team, page: $0, context: $1)
        }, map: Wire.token)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func createTeamToken(_ input: Operations.CreateTeamToken.Input) async throws -> Operations.CreateTeamToken.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (record, secret) = try await tokens.createTeamToken(
            team: input.path.team, Wire.newToken(body), context: context)
        ResponseAdjustments.setHeader(.location, "/v1/teams/\(input.path.team)/tokens/\(record.id.uuidString.lowercased())")
        return .created(.init(body: .json(Wire.createdToken(record, secret: secret))))
    }

    public func deleteTeamToken(_ input: Operations.DeleteTeamToken.Input) async throws -> Operations.DeleteTeamToken.Output {
        let context = try RequestInfo.context()
        try await tokens.deleteTeamToken(team: input.path.team, id: input.path.id, context: context)
        return .noContent(.init())
    }

    public func listPlatformTokens(_ input: Operations.ListPlatformTokens.Input) async throws
        -> Operations.ListPlatformTokens.Output
    {
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, {
            try await tokens.listPlatformTokens(page: $0, context: $1)
        }, map: Wire.token)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func createPlatformToken(_ input: Operations.CreatePlatformToken.Input) async throws
        -> Operations.CreatePlatformToken.Output
    {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (record, secret) = try await tokens.createPlatformToken(Wire.newToken(body), context: context)
        ResponseAdjustments.setHeader(.location, "/v1/tokens/\(record.id.uuidString.lowercased())")
        return .created(.init(body: .json(Wire.createdToken(record, secret: secret))))
    }

    public func deletePlatformToken(_ input: Operations.DeletePlatformToken.Input) async throws
        -> Operations.DeletePlatformToken.Output
    {
        let context = try RequestInfo.context()
        try await tokens.deletePlatformToken(id: input.path.id, context: context)
        return .noContent(.init())
    }
}
