import Foundation

/// Assignment health as the API shows it.
public struct HealthService: Sendable {
    let health: any HealthStore
    let database: any Database
    let authorizer: Authorizer

    /// Creates the service.
    public init(health: any HealthStore, database: any Database) {
        self.health = health
        self.database = database
        self.authorizer = Authorizer(audit: database.audit)
    }

    /// The latest check of a binding (`unknown` with no findings before the first sweep).
    public func get(team: String, identity: String, binding name: String, context: CallContext) async throws -> BindingHealth {
        try await authorizer.requireRead(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        guard let binding = try await database.bindings.get(team: team, identity: identity, name: name, lock: .none) else {
            throw DomainError.notFound("binding", name)
        }
        return try await health.health(team: team, identity: identity, binding: name)
            ?? BindingHealth(team: team, identity: identity, binding: name, cluster: binding.cluster, status: .unknown, findings: [],
                             observedAt: nil, changedAt: nil)
    }

    /// Queues a sweep of the binding's cluster now (maintainers and admins); the result shows in GET.
    public func check(team: String, identity: String, binding name: String, context: CallContext) async throws -> BindingHealth {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        guard let binding = try await database.bindings.get(team: team, identity: identity, name: name, lock: .none) else {
            throw DomainError.notFound("binding", name)
        }
        try await database.jobs.enqueue(HealthCheck.job(binding.cluster, requestId: context.requestId))
        return try await get(team: team, identity: identity, binding: name, context: context)
    }

    /// Counts by status per team, per cluster and per identity (team tokens: their team only).
    public func summary(context: CallContext) async throws -> HealthSummary {
        let principal = context.principal
        let all = try await health.allHealth(team: principal.role.isPlatformRole ? nil : principal.team)
        var summary = HealthSummary()
        for record in all {
            summary.totals.add(record.status)
            summary.teams[record.team, default: HealthCounts()].add(record.status)
            summary.clusters[record.cluster, default: HealthCounts()].add(record.status)
            summary.identities["\(record.team)/\(record.identity)", default: HealthCounts()].add(record.status)
        }
        return summary
    }
}

/// The roll-up: binding → identity → team → cluster.
public struct HealthSummary: Sendable, Equatable {
    public var totals = HealthCounts()
    public var teams: [String: HealthCounts] = [:]
    public var clusters: [String: HealthCounts] = [:]
    /// Keyed `team/identity`.
    public var identities: [String: HealthCounts] = [:]

    public init() {}
}
