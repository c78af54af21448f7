import API
import Core

/// The `teams` tag: teams and their policy.
extension APIHandler {
    public func listTeams(_ input: Operations.ListTeams.Input) async throws -> Operations.ListTeams.Output {
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, { try await teams.list(page: $0, context: $1) },
                                  map: Wire.team)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func createTeam(_ input: Operations.CreateTeam.Input) async throws -> Operations.CreateTeam.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let team = try await teams.create(Wire.newTeam(body), context: context)
        ResponseAdjustments.setHeader(.eTag, Wire.etag(team.version))
        ResponseAdjustments.setHeader(.location, "/v1/teams/\(team.name)")
        return .created(.init(body: .json(Wire.team(team))))
    }

    public func getTeam(_ input: Operations.GetTeam.Input) async throws -> Operations.GetTeam.Output {
        let context = try RequestInfo.context()
        let team = try await teams.get(input.path.team, context: context)
        ResponseAdjustments.setHeader(.eTag, Wire.etag(team.version))
        return .ok(.init(body: .json(Wire.team(team))))
    }

    public func updateTeam(_ input: Operations.UpdateTeam.Input) async throws -> Operations.UpdateTeam.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (team, outside) = try await teams.update(
            input.path.team, patch: Wire.teamPatch(body), ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        ResponseAdjustments.setHeader(.eTag, Wire.etag(team.version))
        var wire = Wire.team(team)
        wire.outsidePolicy = outside.map { $0.map(Wire.outsidePolicy) }
        return .ok(.init(body: .json(wire)))
    }

    public func enforceTeamPolicy(_ input: Operations.EnforceTeamPolicy.Input) async throws -> Operations.EnforceTeamPolicy.Output {
        let context = try RequestInfo.context()
        let removed = try await teams.enforcePolicy(input.path.team, context: context)
        return .ok(.init(body: .json(.init(removed: removed.map(Wire.outsidePolicy)))))
    }

    public func deleteTeam(_ input: Operations.DeleteTeam.Input) async throws -> Operations.DeleteTeam.Output {
        let context = try RequestInfo.context()
        try await teams.delete(input.path.team, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .noContent(.init())
    }
}
