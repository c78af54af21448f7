import Foundation
import Synchronization

/// The system of record in memory, implementing the same protocols as PostgreSQL, so that Core's
/// rules run in fast unit tests. Transactions run one at a time on a copy that replaces the
/// committed state when they return (and is dropped when they throw); writes outside a
/// transaction wait for the running one. Keys and references are enforced as PostgreSQL's
/// constraints enforce them, with the same messages.
public final class InMemoryDatabase: AutocommitDatabase {
    let committed = MemoryState(MemorySnapshot())
    let gate = TransactionGate()

    /// An empty database.
    public init() {}

    public var autocommit: any Records { MemoryRecords(access: .autocommit(self)) }

    public func transaction<Result: Sendable>(_ body: @escaping @Sendable (any Records) async throws -> Result) async throws -> Result {
        await gate.acquire()
        defer { Task { await gate.release() } }
        let working = MemoryState(committed.value.withLock { $0 })
        let result = try await body(MemoryRecords(access: .transaction(working)))
        let snapshot = working.value.withLock { $0 }
        committed.value.withLock { $0 = snapshot }
        return result
    }

    /// Everything committed, for tests to look at.
    public var snapshot: MemorySnapshot { committed.value.withLock { $0 } }

    /// Changes the committed state directly (a test arranging a situation, such as a failed job).
    public func arrange(_ change: (inout MemorySnapshot) -> Void) {
        committed.value.withLock { change(&$0) }
    }
}

/// The rows of an in-memory database.
public struct MemorySnapshot: Sendable {
    public var teams: [String: Team] = [:]
    public var tokens: [UUID: (record: TokenRecord, hash: [UInt8])] = [:]
    public var identities: [IdentityKey: Identity] = [:]
    public var bindings: [BindingKey: Binding] = [:]
    public var clusters: [String: Cluster] = [:]
    public var jobs: [UUID: Job] = [:]
    public var audit: [AuditDraft] = []
    var clock = Date(timeIntervalSince1970: 1_800_000_000)

    /// A strictly increasing time (rows made in one test never share a timestamp).
    mutating func now() -> Date {
        clock = max(Date(), clock.addingTimeInterval(0.000_001))
        return clock
    }

    /// Jobs newest first.
    public var jobsNewestFirst: [Job] { jobs.values.sorted { ($0.createdAt, $0.id.uuidString) > ($1.createdAt, $1.id.uuidString) } }
}

/// A binding's key.
public struct BindingKey: Sendable, Hashable {
    public var team: String
    public var identity: String
    public var name: String

    public init(team: String, identity: String, name: String) {
        self.team = team
        self.identity = identity
        self.name = name
    }
}

final class MemoryState: Sendable {
    let value: Mutex<MemorySnapshot>

    init(_ snapshot: MemorySnapshot) {
        value = Mutex(snapshot)
    }
}

/// One transaction at a time.
actor TransactionGate {
    var busy = false
    var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}

/// Access to an in-memory database's rows: inside a transaction, or each call on its own.
enum MemoryAccess: Sendable {
    case autocommit(InMemoryDatabase)
    case transaction(MemoryState)

    func read<T: Sendable>(_ body: (MemorySnapshot) throws -> T) throws -> T {
        switch self {
        case .autocommit(let database): return try database.committed.value.withLock { try body($0) }
        case .transaction(let state): return try state.value.withLock { try body($0) }
        }
    }

    func write<T: Sendable>(_ body: @Sendable (inout MemorySnapshot) throws -> T) async throws -> T {
        switch self {
        case .autocommit(let database):
            await database.gate.acquire()
            defer { Task { await database.gate.release() } }
            return try database.committed.value.withLock { try body(&$0) }
        case .transaction(let state):
            return try state.value.withLock { try body(&$0) }
        }
    }

    static func page<T>(_ items: [T], after: (T) -> Bool, limit: Int) -> [T] {
        Array(items.filter(after).prefix(limit))
    }
}

/// The row stores of an in-memory database.
struct MemoryRecords: Records {
    let access: MemoryAccess

    var teams: any TeamRows { MemoryTeams(access: access) }
    var tokens: any TokenRows { MemoryTokens(access: access) }
    var identities: any IdentityRows { MemoryIdentities(access: access) }
    var bindings: any BindingRows { MemoryBindings(access: access) }
    var clusters: any ClusterRows { MemoryClusters(access: access) }
    var jobs: any JobRows { MemoryJobs(access: access) }
    var audit: any AuditRows { MemoryAudit(access: access) }
}

struct MemoryTeams: TeamRows {
    let access: MemoryAccess

    func get(_ name: String, lock: RowLock) async throws -> Team? { try access.read { $0.teams[name] } }

    func list(page: PageRequest, only: String?) async throws -> [Team] {
        let after = page.after?.first ?? ""
        return try access.read { snapshot in
            MemoryAccess.page(snapshot.teams.values.sorted { $0.name < $1.name }, after: { $0.name > after && (only == nil || $0.name == only) },
                      limit: page.limit)
        }
    }

    func insert(_ team: Team) async throws -> Team {
        try await access.write { snapshot in
            if snapshot.teams[team.name] != nil { throw DomainError(.conflict, "A team with this name already exists.") }
            var stored = team
            stored.version = 1
            stored.createdAt = snapshot.now()
            stored.updatedAt = stored.createdAt
            snapshot.teams[team.name] = stored
            return stored
        }
    }

    func update(_ team: Team) async throws -> Team {
        try await access.write { snapshot in
            guard var stored = snapshot.teams[team.name] else { throw DomainError.notFound("team", team.name) }
            stored.displayName = team.displayName
            stored.contacts = team.contacts
            stored.policy = team.policy
            stored.version = team.version
            stored.updatedAt = snapshot.now()
            snapshot.teams[team.name] = stored
            return stored
        }
    }

    func delete(_ name: String) async throws {
        try await access.write { snapshot in
            if snapshot.identities.keys.contains(where: { $0.team == name }) {
                throw DomainError(.conflict, "The team still owns identities; delete them first.")
            }
            snapshot.teams[name] = nil
            snapshot.tokens = snapshot.tokens.filter { $0.value.record.team != name }
        }
    }
}

struct MemoryTokens: TokenRows {
    let access: MemoryAccess

    func insert(_ token: TokenRecord, secretHash: [UInt8]) async throws {
        try await access.write { snapshot in snapshot.tokens[token.id] = (token, secretHash) }
    }

    func list(team: String?, page: PageRequest) async throws -> [TokenRecord] {
        let position = try TimeCursor.position(page)
        return try access.read { snapshot in
            let sorted = snapshot.tokens.values.map(\.record).filter { $0.team == team }.sorted {
                ($0.createdAt, $0.id.uuidString.lowercased()) < ($1.createdAt, $1.id.uuidString.lowercased())
            }
            return MemoryAccess.page(sorted, after: { token in
                guard let position else { return true }
                let key = TimeCursor.key(createdAt: token.createdAt, id: token.id)
                return (Int64(key[0]) ?? 0, key[1]) > (position.micros, position.id.uuidString.lowercased())
            }, limit: page.limit)
        }
    }

    func delete(id: UUID, team: String?) async throws -> TokenRecord? {
        try await access.write { snapshot in
            guard let found = snapshot.tokens[id], found.record.team == team else { return nil }
            snapshot.tokens[id] = nil
            return found.record
        }
    }

    func get(secretHash: [UInt8], now: Date) async throws -> TokenRecord? {
        try access.read { snapshot in
            snapshot.tokens.values.first { $0.hash == secretHash && ($0.record.expiresAt.map { $0 > now } ?? true) }?.record
        }
    }
}

struct MemoryIdentities: IdentityRows {
    let access: MemoryAccess

    func get(team: String, name: String, lock: RowLock) async throws -> Identity? {
        try access.read { $0.identities[IdentityKey(team: team, name: name)] }
    }

    func list(team: String, page: PageRequest) async throws -> [Identity] {
        let after = page.after?.first ?? ""
        return try access.read { snapshot in
            MemoryAccess.page(snapshot.identities.values.filter { $0.team == team }.sorted { $0.name < $1.name }, after: { $0.name > after },
                      limit: page.limit)
        }
    }

    func list(keys: [IdentityKey]) async throws -> [Identity] {
        try access.read { snapshot in keys.compactMap { snapshot.identities[$0] } }
    }

    func count(team: String) async throws -> Int {
        try access.read { snapshot in snapshot.identities.keys.filter { $0.team == team }.count }
    }

    func insert(_ identity: Identity) async throws -> Identity {
        try await access.write { snapshot in
            let key = IdentityKey(team: identity.team, name: identity.name)
            guard snapshot.teams[identity.team] != nil else { throw DomainError.notFound("team", identity.team) }
            if snapshot.identities[key] != nil {
                throw DomainError(.conflict, "This team already has an identity with this name; choose another name, or PUT to change it.")
            }
            let azure = { (i: Identity) in "\(i.subscriptionId)/\(i.resourceGroup)/\(i.name)".lowercased() }
            if snapshot.identities.values.contains(where: { azure($0) == azure(identity) }) {
                throw DomainError(.conflict, "Another podid identity already uses the Azure identity with this subscription, resource group and name (Azure names ignore case); choose another name.")
            }
            var stored = identity
            stored.generation = 1
            stored.observedGeneration = 0
            stored.createdAt = snapshot.now()
            stored.updatedAt = stored.createdAt
            snapshot.identities[key] = stored
            return stored
        }
    }

    func update(_ identity: Identity) async throws -> Identity {
        try await access.write { snapshot in
            let key = IdentityKey(team: identity.team, name: identity.name)
            guard let current = snapshot.identities[key] else { throw DomainError.notFound("identity", identity.name) }
            var stored = identity
            stored.subscriptionId = current.subscriptionId
            stored.resourceGroup = current.resourceGroup
            stored.adoptResourceId = current.adoptResourceId
            stored.adoptedByAdmin = current.adoptedByAdmin
            stored.createdAt = current.createdAt
            stored.updatedAt = snapshot.now()
            snapshot.identities[key] = stored
            return stored
        }
    }

    func delete(team: String, name: String) async throws {
        try await access.write { snapshot in
            if snapshot.bindings.keys.contains(where: { $0.team == team && $0.identity == name }) {
                throw DomainError(.conflict, "The identity still has bindings; delete them first.")
            }
            snapshot.identities[IdentityKey(team: team, name: name)] = nil
        }
    }
}

struct MemoryBindings: BindingRows {
    let access: MemoryAccess

    func get(team: String, identity: String, name: String, lock: RowLock) async throws -> Binding? {
        try access.read { $0.bindings[BindingKey(team: team, identity: identity, name: name)] }
    }

    func list(team: String, identity: String, page: PageRequest) async throws -> [Binding] {
        let after = page.after?.first ?? ""
        return MemoryAccess.page(try await list(team: team, identity: identity), after: { $0.name > after }, limit: page.limit)
    }

    func list(team: String, identity: String) async throws -> [Binding] {
        try access.read { snapshot in
            snapshot.bindings.values.filter { $0.team == team && $0.identity == identity }.sorted { $0.name < $1.name }
        }
    }

    func list(cluster: String) async throws -> [Binding] {
        try access.read { snapshot in
            snapshot.bindings.values.filter { $0.cluster == cluster && $0.state != .deleting }
                .sorted { ($0.team, $0.identity, $0.name) < ($1.team, $1.identity, $1.name) }
        }
    }

    func siblings(of binding: Binding) async throws -> [Binding] {
        try access.read { snapshot in
            snapshot.bindings.values.filter {
                $0.cluster == binding.cluster && $0.namespace == binding.namespace && $0.team == binding.team
                    && $0.identity == binding.identity && $0.name != binding.name
            }
        }
    }

    func underOldNaming(limit: Int) async throws -> [Binding] {
        try access.read { snapshot in
            Array(snapshot.bindings.values.filter { $0.objectNaming < .current && $0.state != .deleting }
                .sorted { ($0.team, $0.identity, $0.name) < ($1.team, $1.identity, $1.name) }.prefix(limit))
        }
    }

    func teams(usingSelector selector: String, cluster: String, namespace: String?, excludingTeam: String) async throws -> [String] {
        try access.read { snapshot in
            Set(snapshot.bindings.values.filter {
                $0.cluster == cluster && $0.selector == selector && $0.team != excludingTeam && (namespace == nil || $0.namespace == namespace)
            }.map(\.team))
                .sorted()
        }
    }

    func insert(_ binding: Binding) async throws -> Binding {
        try await access.write { snapshot in
            let key = BindingKey(team: binding.team, identity: binding.identity, name: binding.name)
            guard snapshot.identities[IdentityKey(team: binding.team, name: binding.identity)] != nil else {
                throw DomainError.notFound("identity", binding.identity)
            }
            guard snapshot.clusters[binding.cluster] != nil else { throw DomainError.notFound("cluster", binding.cluster) }
            if snapshot.bindings[key] != nil { throw DomainError(.conflict, "This identity already has a binding with this name.") }
            var stored = binding
            stored.generation = 1
            stored.observedGeneration = 0
            stored.createdAt = snapshot.now()
            stored.updatedAt = stored.createdAt
            snapshot.bindings[key] = stored
            return stored
        }
    }

    func update(_ binding: Binding) async throws -> Binding {
        try await access.write { snapshot in
            let key = BindingKey(team: binding.team, identity: binding.identity, name: binding.name)
            guard let current = snapshot.bindings[key] else { throw DomainError.notFound("binding", binding.name) }
            var stored = binding
            stored.cluster = current.cluster
            stored.namespace = current.namespace
            stored.createdAt = current.createdAt
            stored.updatedAt = snapshot.now()
            snapshot.bindings[key] = stored
            return stored
        }
    }

    func delete(team: String, identity: String, name: String) async throws {
        try await access.write { snapshot in snapshot.bindings[BindingKey(team: team, identity: identity, name: name)] = nil }
    }
}

struct MemoryClusters: ClusterRows {
    let access: MemoryAccess

    func get(_ name: String, lock: RowLock) async throws -> Cluster? { try access.read { $0.clusters[name] } }

    func list(page: PageRequest) async throws -> [Cluster] {
        let after = page.after?.first ?? ""
        return try access.read { snapshot in
            MemoryAccess.page(snapshot.clusters.values.sorted { $0.name < $1.name }, after: { $0.name > after }, limit: page.limit)
        }
    }

    func insert(_ cluster: Cluster) async throws -> Cluster {
        try await access.write { snapshot in
            if snapshot.clusters[cluster.name] != nil { throw DomainError(.conflict, "A cluster with this name already exists.") }
            var stored = cluster
            stored.version = 1
            stored.createdAt = snapshot.now()
            stored.updatedAt = stored.createdAt
            snapshot.clusters[cluster.name] = stored
            return stored
        }
    }

    func update(_ cluster: Cluster) async throws -> Cluster {
        try await access.write { snapshot in
            guard let current = snapshot.clusters[cluster.name] else { throw DomainError.notFound("cluster", cluster.name) }
            var stored = cluster
            stored.createdAt = current.createdAt
            stored.updatedAt = current.version == cluster.version ? current.updatedAt : snapshot.now()
            snapshot.clusters[cluster.name] = stored
            return stored
        }
    }

    func delete(_ name: String) async throws {
        try await access.write { snapshot in
            if snapshot.bindings.values.contains(where: { $0.cluster == name }) {
                throw DomainError(.conflict, "The cluster still has bindings; delete them first.")
            }
            snapshot.clusters[name] = nil
        }
    }
}

struct MemoryJobs: JobRows {
    let access: MemoryAccess

    func enqueue(_ job: NewJob) async throws -> UUID {
        try await access.write { snapshot in
            let now = snapshot.now()
            if let dedupe = job.dedupeKey,
               var queued = snapshot.jobs.values.first(where: { $0.dedupeKey == dedupe && $0.state == .queued }) {
                queued.payload = job.payload
                queued.runAt = min(queued.runAt, max(now, job.runAt ?? now))
                queued.requestId = job.requestId
                queued.updatedAt = now
                snapshot.jobs[queued.id] = queued
                return queued.id
            }
            let stored = Job(id: UUID(), kind: job.kind, team: job.team, resourceType: job.resourceType, resourceName: job.resourceName,
                             serialKey: job.serialKey, dedupeKey: job.dedupeKey, payload: job.payload, state: .queued, attempts: 0,
                             maxAttempts: job.maxAttempts, runAt: max(now, job.runAt ?? now), lastError: nil, steps: [], requestId: job.requestId,
                             createdAt: now, updatedAt: now, resource: job.resource)
            snapshot.jobs[stored.id] = stored
            return stored.id
        }
    }

    func cancel(dedupeKey: String, states: Set<JobState>, reason: String) async throws {
        try await access.write { snapshot in
            let now = snapshot.now()
            for (id, var job) in snapshot.jobs where job.dedupeKey == dedupeKey && states.contains(job.state) {
                job.state = .cancelled
                job.finishedAt = now
                job.updatedAt = now
                job.lastError = reason
                snapshot.jobs[id] = job
            }
        }
    }

    func get(_ id: UUID, lock: RowLock) async throws -> Job? { try access.read { $0.jobs[id] } }

    func isOfCurrentTeam(_ id: UUID) async throws -> Bool {
        try access.read { snapshot in
            guard let job = snapshot.jobs[id] else { return false }
            guard let team = job.team else { return true }
            return snapshot.teams[team].map { job.createdAt >= $0.createdAt } ?? false
        }
    }

    func list(_ filter: JobFilter, page: PageRequest) async throws -> [Job] {
        let position = try TimeCursor.position(page)
        return try access.read { snapshot in
            MemoryAccess.page(snapshot.jobsNewestFirst, after: { job in
                let current = filter.team.map { name in snapshot.teams[name].map { job.team == name && job.createdAt >= $0.createdAt } ?? false } ?? true
                guard current, filter.state == nil || job.state == filter.state,
                      filter.kind == nil || job.kind == filter.kind, filter.resource == nil || job.resource == filter.resource
                else { return false }
                guard let position else { return true }
                let key = TimeCursor.key(createdAt: job.createdAt, id: job.id)
                return (Int64(key[0]) ?? 0, key[1]) < (position.micros, position.id.uuidString.lowercased())
            }, limit: page.limit)
        }
    }

    func requeue(_ id: UUID) async throws -> Job {
        try await access.write { snapshot in
            guard var job = snapshot.jobs[id] else { throw DomainError.notFound("job", id.uuidString.lowercased()) }
            let now = snapshot.now()
            job.state = .queued
            job.attempts = 0
            job.runAt = now
            job.finishedAt = nil
            job.updatedAt = now
            snapshot.jobs[id] = job
            return job
        }
    }
}

struct MemoryAudit: AuditRows {
    let access: MemoryAccess

    func append(_ event: AuditDraft) async throws {
        try await access.write { snapshot in snapshot.audit.append(event) }
    }

    func contains(resourceType: String, resourceName: String, actions: [String], details: [String: String]) async throws -> Bool {
        try access.read { snapshot in
            snapshot.audit.contains { event in
                event.resourceType == resourceType && event.resourceName == resourceName && actions.contains(event.action)
                    && details.allSatisfy { event.details[$0.key] == .string($0.value) }
            }
        }
    }
}
