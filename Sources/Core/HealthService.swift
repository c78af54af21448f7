import Foundation

/// Assignment health as the API shows it.
public struct HealthService: Sendable {
    let health: any HealthStore
    let database: any Database
    let authorizer: Authorizer
    let requestedSweepSpacing: TimeInterval

    /// Creates the service; `requestedSweepSpacing` is the least time between a cluster's last sweep
    /// and one a request asks for.
    public init(health: any HealthStore, database: any Database, requestedSweepSpacing: TimeInterval = HealthRules.defaultSpacing) {
        self.health = health
        self.database = database
        self.authorizer = Authorizer(database: database)
        self.requestedSweepSpacing = requestedSweepSpacing
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

    /// Queues a sweep of the binding's cluster (maintainers and admins); the result shows in GET.
    /// Requests coalesce per cluster: every request while a sweep is queued joins it, and a sweep
    /// asked for within `requestedSweepSpacing` of the last one runs when that spacing has passed, so that a loop of requests cannot keep a cluster's sweeps running back to back.
    public func check(team: String, identity: String, binding name: String, context: CallContext) async throws -> BindingHealth {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        guard let binding = try await database.bindings.get(team: team, identity: identity, name: name, lock: .none) else {
            throw DomainError.notFound("binding", name)
        }
        let current = try await get(team: team, identity: identity, binding: name, context: context)
        var job = HealthCheck.job(binding.cluster, requestId: context.requestId)
        job.runAt = HealthRules.requestedSweepStart(lastObserved: current.observedAt, spacing: requestedSweepSpacing)
        try await database.jobs.enqueue(job)
        return current
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

/// When requested sweeps may run.
public enum HealthRules {
    /// The default least time between a cluster's last sweep and one a request asks for.
    public static let defaultSpacing: TimeInterval = 10

    /// When a sweep asked for now may start: at once, or `spacing` after the last sweep that
    /// observed the binding.
    public static func requestedSweepStart(lastObserved: Date?, spacing: TimeInterval, now: Date = Date()) -> Date? {
        guard let lastObserved, spacing > 0 else { return nil }
        let earliest = lastObserved.addingTimeInterval(spacing)
        return earliest > now ? earliest : nil
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
