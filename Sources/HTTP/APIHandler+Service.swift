import API
import Core
import OpenAPIRuntime

/// The `service` tag: liveness, readiness, metrics and the contract itself.
extension APIHandler {
    public func getHealthz(_ input: Operations.GetHealthz.Input) async throws -> Operations.GetHealthz.Output {
        .ok(.init(body: .json(.init(status: "ok"))))
    }

    public func getReadyz(_ input: Operations.GetReadyz.Input) async throws -> Operations.GetReadyz.Output {
        let reason = await withTaskGroup(of: String?.self) { group in
            group.addTask { await readiness.notReadyReason() }
            group.addTask {
                try? await Task.sleep(for: .seconds(3))
                return "the database did not answer within 3 seconds"
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let reason { throw DomainError(.unavailable, "podid is not ready: \(reason).") }
        return .ok(.init(body: .json(.init(status: "ok", database: "ok", pendingMigrations: []))))
    }

    public func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return .ok(.init(body: .plainText(HTTPBody(buffer))))
    }

    public func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws
        -> Operations.GetOpenAPIDocument.Output
    {
        .ok(.init(body: .yaml(HTTPBody(openAPIDocument))))
    }
}
