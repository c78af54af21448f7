import API
import Core

/// The `jobs` tag: the background work and its steps.
extension APIHandler {
    public func listJobs(_ input: Operations.ListJobs.Input) async throws -> Operations.ListJobs.Output {
        let filter = Wire.jobFilter(input.query)
        let page = try await page(limit: input.query.limit, cursor: input.query.cursor, itemNullKeys: Wire.jobNullKeys, {
            try await jobs.list(filter, page: $0, context: $1)
        }, map: Wire.job)
        return .ok(.init(body: .json(.init(items: page.items, nextCursor: page.nextCursor))))
    }

    public func getJob(_ input: Operations.GetJob.Input) async throws -> Operations.GetJob.Output {
        let context = try RequestInfo.context()
        let job = try await jobs.get(input.path.id, context: context)
        for key in Wire.jobNullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(Wire.job(job))))
    }

    public func retryJob(_ input: Operations.RetryJob.Input) async throws -> Operations.RetryJob.Output {
        let context = try RequestInfo.context()
        let job = try await jobs.retry(input.path.id, context: context)
        for key in Wire.jobNullKeys { ResponseAdjustments.ensureKey(key) }
        ResponseAdjustments.setHeader(.location, "/v1/jobs/\(job.id.uuidString.lowercased())")
        return .accepted(.init(body: .json(Wire.job(job))))
    }
}
