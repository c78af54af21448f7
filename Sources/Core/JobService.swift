import Foundation

/// Jobs as the API shows them: teams see their own, platform roles all; maintainers and admins
/// may retry a failed job.
public struct JobService: Sendable {
    let store: any JobStore
    let authorizer: Authorizer

    /// Creates the service.
    public init(store: any JobStore, audit: any AuditStore) {
        self.store = store
        self.authorizer = Authorizer(audit: audit)
    }

    /// Jobs matching the filter, newest first; a team token sees only its team's jobs.
    public func list(_ filter: JobFilter, page: PageRequest, context: CallContext) async throws -> Page<Job> {
        var filter = filter
        let principal = context.principal
        if !principal.role.isPlatformRole {
            if let team = filter.team {
                try await authorizer.requireRead(context, team: team, resourceType: "job", resourceName: nil)
            }
            filter.team = principal.team
        }
        if let after = page.after, after.count != 2 || Int64(after[0]) == nil || UUID(uuidString: after[1]) == nil {
            throw DomainError(.badRequest, "Invalid paging parameters.",
                              fields: [FieldProblem("cursor", "is not a cursor this list returned; start again without it")])
        }
        let fetched = try await store.jobs(filter, page: PageRequest(limit: page.limit + 1, after: page.after))
        return Page(fetched: fetched, limit: page.limit) { [String(Int64(($0.createdAt.timeIntervalSince1970 * 1_000_000).rounded())), $0.id.uuidString.lowercased()] }
    }

    /// One job with its steps.
    public func get(_ id: String, context: CallContext) async throws -> Job {
        let job = try await find(id)
        guard let job else { throw DomainError.notFound("job", id) }
        if let team = job.team {
            try await authorizer.requireRead(context, team: team, resourceType: "job", resourceName: id)
        }
        return job
    }

    /// Queues a failed job again (admin, or a maintainer of the job's team).
    public func retry(_ id: String, context: CallContext) async throws -> Job {
        guard let job = try await find(id) else { throw DomainError.notFound("job", id) }
        if let team = job.team {
            try await authorizer.requireManage(context, team: team, resourceType: "job", resourceName: id)
        } else {
            try await authorizer.requireAdmin(context, team: nil, resourceType: "job", resourceName: id)
        }
        guard job.state == .failed || job.state == .cancelled else {
            throw DomainError(.conflict, "Job \(id) is \(job.state.rawValue); only a failed or cancelled job can be retried.")
        }
        let audit = context.audit("job.retried", team: job.team, resourceType: "job", resourceName: id,
                                  details: ["kind": .string(job.kind), "resource": .string(job.resource),
                                            "lastError": job.lastError.map(JSONValue.string) ?? .null])
        guard let retried = try await store.retryJob(job.id, audit: audit) else {
            throw DomainError(.conflict, "Job \(id) changed while it was being retried; read it again.")
        }
        return retried
    }

    func find(_ id: String) async throws -> Job? {
        guard let uuid = UUID(uuidString: id) else { return nil }
        return try await store.job(uuid)
    }
}
