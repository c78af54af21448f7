import Foundation

/// The system of record as Core sees it: row stores that read and write rows, and a unit of work.
///
/// The rules live in the services of this module; a row store decides nothing. A change is one
/// `transaction { tx in … }`: it reads what it needs (locking the rows it decides on), applies the
/// rules, and writes rows, jobs and audit events, which commit together or not at all. Reads
/// outside a transaction go through the same row stores on `Database` itself, each seeing committed
/// data.
public protocol Records: Sendable {
    var teams: any TeamRows { get }
    var tokens: any TokenRows { get }
    var identities: any IdentityRows { get }
    var bindings: any BindingRows { get }
    var clusters: any ClusterRows { get }
    var jobs: any JobRows { get }
    var audit: any AuditRows { get }
}

/// Records with a unit of work.
public protocol Database: Records {
    /// Folds repeated denials into one audit event (nil: every denial is written).
    var denials: DenialFolder? { get }
    /// Runs `body` in one transaction: everything it writes commits when it returns, nothing when it
    /// throws. Row locks taken inside are held until then.
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (any Records) async throws -> Result) async throws -> Result
}

extension Database {
    public var denials: DenialFolder? { nil }
}

/// A database whose reads and writes outside a transaction go through the records of `autocommit`.
public protocol AutocommitDatabase: Database {
    /// The records each call of which runs on its own.
    var autocommit: any Records { get }
}

extension AutocommitDatabase {
    public var teams: any TeamRows { autocommit.teams }
    public var tokens: any TokenRows { autocommit.tokens }
    public var identities: any IdentityRows { autocommit.identities }
    public var bindings: any BindingRows { autocommit.bindings }
    public var clusters: any ClusterRows { autocommit.clusters }
    public var jobs: any JobRows { autocommit.jobs }
    public var audit: any AuditRows { autocommit.audit }
}

/// The lock a read takes on the rows it returns (inside a transaction; outside one it has no effect).
public enum RowLock: Sendable, Equatable {
    /// A plain read.
    case none
    /// Others may read and share-lock the row, not change it (`FOR SHARE`).
    case share
    /// The caller is about to change the row (`FOR UPDATE`).
    case update
}

/// Teams.
public protocol TeamRows: Sendable {
    /// The team with that name, if any.
    func get(_ name: String, lock: RowLock) async throws -> Team?
    /// Teams ordered by name, after the page's position; only `only` when it is set.
    func list(page: PageRequest, only: String?) async throws -> [Team]
    /// Inserts a team; 409 when the name is taken.
    func insert(_ team: Team) async throws -> Team
    /// Writes the team's changeable fields and version.
    func update(_ team: Team) async throws -> Team
    /// Deletes a team and its tokens; 409 while it owns identities.
    func delete(_ name: String) async throws
}

/// Bearer tokens, kept by the SHA-256 of their secret.
public protocol TokenRows: Sendable {
    /// Inserts a token.
    func insert(_ token: TokenRecord, secretHash: [UInt8]) async throws
    /// Tokens of `team` (platform tokens when nil), oldest first, after `[microseconds since 1970, id]`.
    func list(team: String?, page: PageRequest) async throws -> [TokenRecord]
    /// Deletes a token of `team` (a platform token when nil); nil when there is none.
    func delete(id: UUID, team: String?) async throws -> TokenRecord?
    /// The unexpired token with that secret hash, if any.
    func get(secretHash: [UInt8], now: Date) async throws -> TokenRecord?
}

/// Identities.
public protocol IdentityRows: Sendable {
    /// The identity, if any.
    func get(team: String, name: String, lock: RowLock) async throws -> Identity?
    /// Identities of a team ordered by name, after the page's position.
    func list(team: String, page: PageRequest) async throws -> [Identity]
    /// The identities of these (team, name) pairs that exist, in one query.
    func list(keys: [IdentityKey]) async throws -> [Identity]
    /// How many identities the team owns.
    func count(team: String) async throws -> Int
    /// Inserts an identity (generation 1); 409 when the name is taken in the team or in Azure.
    func insert(_ identity: Identity) async throws -> Identity
    /// Writes everything about the identity but its key and creation time.
    func update(_ identity: Identity) async throws -> Identity
    /// Deletes the row.
    func delete(team: String, name: String) async throws
}

/// Bindings.
public protocol BindingRows: Sendable {
    /// One binding.
    func get(team: String, identity: String, name: String, lock: RowLock) async throws -> Binding?
    /// An identity's bindings by name, after the page's position.
    func list(team: String, identity: String, page: PageRequest) async throws -> [Binding]
    /// Every binding of an identity, by name.
    func list(team: String, identity: String) async throws -> [Binding]
    /// Every binding in a cluster that is not being deleted.
    func list(cluster: String) async throws -> [Binding]
    /// Bindings in the binding's cluster and namespace that share its identity's AzureIdentity.
    func siblings(of binding: Binding) async throws -> [Binding]
    /// Bindings (not being deleted) whose objects are still under an older naming scheme.
    func underOldNaming(limit: Int) async throws -> [Binding]
    /// The teams other than `excludingTeam` whose bindings use `selector` in `cluster` (in `namespace` when given).
    func teams(usingSelector selector: String, cluster: String, namespace: String?, excludingTeam: String) async throws -> [String]
    /// Inserts a binding (generation 1).
    func insert(_ binding: Binding) async throws -> Binding
    /// Writes everything about the binding but its key, place and creation time.
    func update(_ binding: Binding) async throws -> Binding
    /// Deletes the row.
    func delete(team: String, identity: String, name: String) async throws
}

/// Clusters.
public protocol ClusterRows: Sendable {
    /// The cluster, if any.
    func get(_ name: String, lock: RowLock) async throws -> Cluster?
    /// Clusters by name, after the page's position.
    func list(page: PageRequest) async throws -> [Cluster]
    /// Inserts a cluster; 409 when the name is taken.
    func insert(_ cluster: Cluster) async throws -> Cluster
    /// Writes the cluster's connection settings, status and version.
    func update(_ cluster: Cluster) async throws -> Cluster
    /// Deletes the row; 409 while bindings use it.
    func delete(_ name: String) async throws
}

/// Jobs as changes enqueue, cancel and retry them (the workers' side is `JobQueue`).
public protocol JobRows: Sendable {
    /// Enqueues a job; a queued job with the same dedupe key takes this one's payload instead (and
    /// runs no later than it would have). Returns the job's id.
    @discardableResult
    func enqueue(_ job: NewJob) async throws -> UUID
    /// Moves the jobs with `dedupeKey` that are in one of `states` to `cancelled`, with `reason`.
    func cancel(dedupeKey: String, states: Set<JobState>, reason: String) async throws
    /// One job.
    func get(_ id: UUID, lock: RowLock) async throws -> Job?
    /// Whether a job belongs to the team that has its team's name now (always for jobs of no team):
    /// false for the jobs of an earlier team of the name.
    func isOfCurrentTeam(_ id: UUID) async throws -> Bool
    /// Jobs matching `filter` (its team: the team that has the name now), newest first, after
    /// `[microseconds since 1970 of createdAt, id]`.
    func list(_ filter: JobFilter, page: PageRequest) async throws -> [Job]
    /// Queues a job again now with fresh attempts.
    func requeue(_ id: UUID) async throws -> Job
}

/// The audit history's writing side.
public protocol AuditRows: Sendable {
    /// Appends one event.
    func append(_ event: AuditDraft) async throws
    /// Whether an event of one of `actions` on the resource has all of `details` (string values):
    /// a job that finds its effect already done asks this before it audits it, so that each effect
    /// is audited once even when a worker stopped between doing and recording it.
    func contains(resourceType: String, resourceName: String, actions: [String], details: [String: String]) async throws -> Bool
}

extension Records {
    /// Enqueues the job a change causes and appends the change's audit event naming the job.
    public func enqueue(_ job: NewJob, audited event: AuditDraft) async throws {
        let id = try await jobs.enqueue(job)
        var event = event
        event.details["jobId"] = .string(id.uuidString.lowercased())
        try await audit.append(event)
    }

    /// Appends audit events in order.
    public func append(_ events: [AuditDraft]) async throws {
        for event in events { try await audit.append(event) }
    }
}

/// The If-Match rule every versioned resource follows.
public enum Precondition {
    /// Refuses with `stale` when the caller sent an ETag (`ifMatch`) and the resource has moved on.
    public static func check(_ ifMatch: Int64?, current: Int64, stale: @autoclosure () -> DomainError) throws {
        if let ifMatch, ifMatch != current { throw stale() }
    }

    /// 412: the resource changed since the caller read it.
    public static func stale(_ kind: String, _ name: String) -> DomainError {
        DomainError(.preconditionFailed, "\(kind) '\(name)' has changed since the ETag in If-Match; read it again and retry.")
    }
}
