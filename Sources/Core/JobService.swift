import Foundation

/// Jobs as the API shows them: teams see their own, platform roles all; maintainers and admins
/// may retry a failed job.
public struct JobService: Sendable {
    let database: any Database
    let authorizer: Authorizer

    /// Creates the service.
    public init(database: any Database) {
        self.database = database
        self.authorizer = Authorizer(database: database)
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
        _ = try TimeCursor.position(page)
        return try await Page.fetch(page, key: { TimeCursor.key(createdAt: $0.createdAt, id: $0.id) }) { [filter] in
            try await database.jobs.list(filter, page: $0)
        }
    }

    /// One job with its steps.
    public func get(_ id: String, context: CallContext) async throws -> Job {
        let job = try await find(id)
        guard let job else { throw DomainError.notFound("job", id) }
        if let team = job.team {
            try await authorizer.requireRead(context, team: team, resourceType: "job", resourceName: id)
            try await requireCurrentTeam(job, team: team, context: context)
        }
        return job
    }

    /// A team token sees only the jobs of its own team, not those of an earlier team of the same name.
    func requireCurrentTeam(_ job: Job, team: String, context: CallContext) async throws {
        guard !context.principal.role.isPlatformRole, !(try await database.jobs.isOfCurrentTeam(job.id)) else { return }
        let id = job.id.uuidString.lowercased()
        throw try await authorizer.deny(context, .notFound("job", id), team: team, resourceType: "job", resourceName: id)
    }

    /// Queues a failed job again (admin, or a maintainer of the job's team).
    public func retry(_ id: String, context: CallContext) async throws -> Job {
        guard let job = try await find(id) else { throw DomainError.notFound("job", id) }
        if let team = job.team {
            try await authorizer.requireManage(context, team: team, resourceType: "job", resourceName: id)
            try await requireCurrentTeam(job, team: team, context: context)
        } else {
            try await authorizer.requireAdmin(context, team: nil, resourceType: "job", resourceName: id)
        }
        return try await database.transaction { tx in
            guard let current = try await tx.jobs.get(job.id, lock: .update) else { throw DomainError.notFound("job", id) }
            guard JobRules.isRetryable(current.state) else {
                throw DomainError(.conflict, "Job \(id) is \(current.state.rawValue); only a failed or cancelled job can be retried.")
            }
            let retried = try await tx.jobs.requeue(current.id)
            // failed ──(retried)──▶ pending, for the resource the job works on.
            let event = LifecycleEvent.retried(job: current.id)
            if current.resourceType == "identity", let payload = try? IdentityDelete.payload(of: current),
               let identity = try await tx.identities.get(team: payload.team, name: payload.identity, lock: .update),
               identity.state == .failed {
                _ = try await tx.identities.update(ResourceLifecycle.applying(event, to: identity))
            } else if current.resourceType == "binding", let payload = try? BindingApply.payload(of: current),
                      let binding = try await tx.bindings.get(team: payload.team, identity: payload.identity, name: payload.binding, lock: .update),
                      binding.state == .failed {
                _ = try await tx.bindings.update(ResourceLifecycle.applying(event, to: binding))
            }
            try await tx.audit.append(context.audit("job.retried", team: current.team, resourceType: "job", resourceName: id,
                                                    details: ["kind": .string(current.kind), "resource": .string(current.resource),
                                                              "lastError": current.lastError.map(JSONValue.string) ?? .null]))
            return retried
        }
    }

    func find(_ id: String) async throws -> Job? {
        guard let uuid = UUID(uuidString: id) else { return nil }
        return try await database.jobs.get(uuid, lock: .none)
    }
}
