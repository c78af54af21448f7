import API
import Core

/// The `health` tag: assignment health per binding, and the roll-up.
extension APIHandler {
    public func getHealthSummary(_ input: Operations.GetHealthSummary.Input) async throws -> Operations.GetHealthSummary.Output {
        let context = try RequestInfo.context()
        return .ok(.init(body: .json(Wire.healthSummary(try await health.summary(context: context)))))
    }

    public func getBindingHealth(_ input: Operations.GetBindingHealth.Input) async throws -> Operations.GetBindingHealth.Output {
        let context = try RequestInfo.context()
        let record = try await health.get(team: input.path.team, identity: input.path.identity, binding: input.path.binding, context: context)
        for key in Wire.bindingHealthNullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(Wire.bindingHealth(record))))
    }

    public func checkBindingHealth(_ input: Operations.CheckBindingHealth.Input) async throws -> Operations.CheckBindingHealth.Output {
        let context = try RequestInfo.context()
        let record = try await health.check(team: input.path.team, identity: input.path.identity, binding: input.path.binding, context: context)
        for key in Wire.bindingHealthNullKeys { ResponseAdjustments.ensureKey(key) }
        ResponseAdjustments.setHeader(.location, "/v1/teams/\(input.path.team)/identities/\(input.path.identity)/bindings/\(input.path.binding)/health")
        return .accepted(.init(body: .json(Wire.bindingHealth(record))))
    }
}
