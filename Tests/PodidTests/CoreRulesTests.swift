import Core
import Foundation
import PostgresNIO
import Store
import Testing

/// Where the rules run: the in-memory database (milliseconds) and PostgreSQL (the same rules over the
/// real row stores, locks and constraints).
enum RulesBackend: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory
    case postgres

    var description: String { rawValue }
}

/// A database for one test, with what a test needs to arrange situations and look at the result.
struct RulesWorld: Sendable {
    let database: any Database
    /// Sets a job's state (a job that failed, say).
    let setJobState: @Sendable (UUID, JobState) async throws -> Void
    /// Sets an identity's (binding nil) or a binding's state.
    let setState: @Sendable (_ team: String, _ identity: String, _ binding: String?, ResourceState) async throws -> Void
    /// The audit events so far: action and details.
    let audit: @Sendable () async throws -> [(action: String, actorTeam: String?, details: [String: JSONValue])]

    /// Every job, newest first.
    func jobs() async throws -> [Job] {
        try await database.jobs.list(JobFilter(), page: PageRequest(limit: 500, after: nil))
    }

    func job(_ id: UUID) async throws -> Job? { try await database.jobs.get(id, lock: .none) }

    func bindings(_ team: String, _ identity: String) async throws -> [Binding] {
        try await database.bindings.list(team: team, identity: identity)
    }

    static func with(_ backend: RulesBackend, _ body: @Sendable (RulesWorld) async throws -> Void) async throws {
        switch backend {
        case .memory:
            let memory = InMemoryDatabase()
            try await body(RulesWorld(
                database: memory,
                setJobState: { id, state in memory.arrange { $0.jobs[id]?.state = state } },
                setState: { team, identity, binding, state in
                    memory.arrange { snapshot in
                        if let binding {
                            snapshot.bindings[BindingKey(team: team, identity: identity, name: binding)]?.state = state
                        } else {
                            snapshot.identities[IdentityKey(team: team, name: identity)]?.state = state
                        }
                    }
                },
                audit: { memory.snapshot.audit.map { ($0.action, $0.actorTeam, $0.details) } }))
        case .postgres:
            let test = try await TestDatabase.make()
            defer { Task { await test.drop() } }
            try await test.withRuntime { client in
                let pool = PostgresPool(client: client, logger: TestDatabase.logger, connectionWait: .seconds(TestDatabase.connectionWaitSeconds))
                try await body(RulesWorld(
                    database: PostgresStore(pool: pool),
                    setJobState: { id, state in _ = try await pool.rows("UPDATE jobs SET state = \(state.rawValue) WHERE id = \(id)") },
                    setState: { team, identity, binding, state in
                        if let binding {
                            _ = try await pool.rows("UPDATE bindings SET state = \(state.rawValue) WHERE team = \(team) AND identity = \(identity) AND name = \(binding)")
                        } else {
                            _ = try await pool.rows("UPDATE identities SET state = \(state.rawValue) WHERE team = \(team) AND name = \(identity)")
                        }
                    },
                    audit: {
                        try await pool.rows("SELECT action, actor_team, details::text FROM audit_events ORDER BY id").map { row in
                            let (action, team, details) = try row.decode((String, String?, String).self)
                            guard case .object(let members)? = JSONValue.parse(details) else { return (action, team, [:]) }
                            return (action, team, members)
                        }
                    }))
            }
        }
    }
}

/// Core's rules — quota, cascade, selector uniqueness, deletion checks, If-Match, the re-queued
/// identity deletion and the retry reset — on the in-memory database and on PostgreSQL. Serialized:
/// each PostgreSQL case creates a database, and a burst of creations at the suite's start (each a
/// forced checkpoint) slows every other test's connections.
@Suite("Core rules", .serialized, .timeLimit(.minutes(5)))
struct CoreRulesTests {
    static let subscription = "00000000-0000-0000-0000-000000000000"
    static let scope = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev"
    static let admin = CallContext(principal: Principal(tokenId: nil, tokenName: "admin", role: .admin, team: nil), requestId: "req-1",
                                   operation: "test")

    /// Teams `payments` and `search` (allowed cluster `local` and namespace `default`, at most
    /// `max` identities) and cluster `local`, in cluster mode for the two teams as one tenant.
    static func seed(_ database: any Database, max: Int = 10) async throws {
        let policy = TeamPolicyPatch(subscriptions: [subscription], resourceGroups: ["podid-dev"],
                                     grants: [GrantRule(role: "Reader", scopePrefix: scope)], clusters: ["local"], namespaces: ["default"],
                                     maxIdentities: max)
        for team in ["payments", "search"] {
            _ = try await TeamService(database: database).create(NewTeam(name: team, policy: policy), context: admin)
        }
        _ = try await ClusterService(database: database, credentials: CredentialDirectories(testCredentialDirectories)).create(
            Cluster(name: "local", apiServer: "https://127.0.0.1:6443", connection: .inCluster, singleTeam: true), context: admin)
    }

    static func spec(_ name: String) -> IdentitySpec {
        IdentitySpec(name: name, subscriptionId: subscription, resourceGroup: "podid-dev", location: "westeurope",
                     grants: [IdentityGrant(role: "Reader", scope: scope)])
    }

    static func create(_ database: any Database, _ team: String, _ name: String) async throws -> Identity {
        try await IdentityService(database: database).create(team: team, spec(name), deletionPolicyGiven: false, context: admin)
    }

    static func bind(_ database: any Database, _ team: String, _ identity: String, _ name: String, selector: String? = nil,
                     namespace: String? = nil) async throws -> Binding {
        try await BindingService(database: database).create(
            team: team, identity: identity, NewBinding(name: name, cluster: "local", namespace: namespace, selector: selector), context: admin)
    }

    static func refusal(_ body: () async throws -> Void) async -> DomainError? {
        do {
            try await body()
            return nil
        } catch let error as DomainError {
            return error
        } catch {
            Issue.record("not a domain error: \(error)")
            return nil
        }
    }

    @Test("quota: the team's maxIdentities is a 409 naming the limit, and nothing is written", arguments: RulesBackend.allCases)
    func quota(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database, max: 1)
            _ = try await Self.create(database, "payments", "orders")
            let jobsBefore = try await world.jobs().count
            let error = await Self.refusal { _ = try await Self.create(database, "payments", "billing") }
            #expect(error?.kind == .conflict)
            #expect(error?.detail.contains("policy.maxIdentities is 1 and it owns 1 identities") == true, "\(String(describing: error))")
            #expect(try await database.identities.get(team: "payments", name: "billing", lock: .none) == nil)
            #expect(try await world.jobs().count == jobsBefore, "a refused creation writes nothing")
            // The quota is per team.
            _ = try await Self.create(database, "search", "billing")
        }
    }

    @Test("a created identity is pending with its provision job and audit event naming the job", arguments: RulesBackend.allCases)
    func creationWritesRowJobAndEvent(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            try await Self.seed(world.database)
            let identity = try await Self.create(world.database, "payments", "orders")
            #expect(identity.state == .pending && identity.message == "waiting for a worker to create it in Azure")
            let job = try #require(try await world.jobs().first { $0.kind == IdentityProvision.name })
            #expect(job.serialKey == "identity:payments/orders" && job.dedupeKey == "identity:payments/orders")
            #expect(try IdentityProvision.payload(of: job) == IdentityJobPayload(team: "payments", identity: "orders", generation: 1))
            let event = try #require(try await world.audit().first { $0.action == "identity.created" })
            #expect(event.details["jobId"] == .string(job.id.uuidString.lowercased()))
        }
    }

    @Test("cascade: an identity with bindings is a 409 naming them; with cascade every binding and its superseded jobs go too",
          arguments: RulesBackend.allCases)
    func cascade(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            let web = try await Self.bind(database, "payments", "orders", "web")
            _ = try await Self.bind(database, "payments", "orders", "jobs", namespace: "default")
            // The web binding's apply job failed for good; it no longer applies once the binding goes.
            let webApply = try #require(try await world.jobs().first { $0.kind == BindingApply.name && $0.resource == web.path })
            try await world.setJobState(webApply.id, .failed)

            let service = IdentityService(database: database)
            let refused = await Self.refusal {
                _ = try await service.delete(team: "payments", name: "orders", ifMatch: nil, cascade: false, context: Self.admin)
            }
            #expect(refused?.kind == .conflict)
            #expect(refused?.detail.contains("still has 2 binding(s): jobs (cluster local), web (cluster local)") == true,
                    "\(String(describing: refused))")
            #expect(try await world.bindings("payments", "orders").allSatisfy { $0.state != .deleting }, "a refused delete changes nothing")

            let deleted = try await service.delete(team: "payments", name: "orders", ifMatch: nil, cascade: true, context: Self.admin)
            #expect(deleted.state == .deleting)
            let bindings = try await world.bindings("payments", "orders")
            #expect(bindings.count == 2 && bindings.allSatisfy {
                $0.state == .deleting && $0.message == "waiting for a worker to delete it (the identity is being deleted)"
            })
            let jobs = try await world.jobs()
            #expect(try await world.job(webApply.id)?.state == .cancelled, "the failed apply of a binding being deleted is cancelled")
            #expect(jobs.filter { $0.kind == BindingApply.name }.allSatisfy { $0.state == .cancelled })
            #expect(jobs.filter { $0.kind == BindingDelete.name }.count == 2)
            #expect(jobs.filter { $0.kind == IdentityProvision.name }.allSatisfy { $0.state == .cancelled })
            #expect(jobs.filter { $0.kind == IdentityDelete.name && $0.state == .queued }.count == 1)
            let cascaded = try await world.audit().filter { $0.action == "binding.deleted" }
            #expect(cascaded.count == 2 && cascaded.allSatisfy { $0.details["cascade"] == .bool(true) && $0.details["jobId"] != nil })

            // Deleting again answers the same, and queues nothing more.
            let again = try await service.delete(team: "payments", name: "orders", ifMatch: nil, cascade: true, context: Self.admin)
            #expect(again.state == .deleting)
            #expect(try await world.jobs().count == jobs.count)
        }
    }

    @Test("deleting a binding cancels its queued and failed apply jobs, the same rule as a cascade", arguments: RulesBackend.allCases)
    func bindingDeletionCancels(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            let web = try await Self.bind(database, "payments", "orders", "web")
            let apply = try #require(try await world.jobs().first { $0.kind == BindingApply.name })
            try await world.setJobState(apply.id, .failed)
            let deleted = try await BindingService(database: database).delete(team: "payments", identity: "orders", name: web.name,
                                                                              ifMatch: nil, context: Self.admin)
            #expect(deleted.state == .deleting)
            let cancelled = try await world.job(apply.id)
            #expect(cancelled?.state == .cancelled && cancelled?.lastError == "cancelled: the binding is being deleted")
        }
    }

    @Test("selector: another team's selector in the cluster is a 409 on create and on patch; the same team may share one",
          arguments: RulesBackend.allCases)
    func selectorUniqueness(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            _ = try await Self.create(database, "search", "crawler")
            _ = try await Self.bind(database, "payments", "orders", "web", selector: "shared")
            _ = try await Self.bind(database, "payments", "orders", "web2", selector: "shared")
            let taken = await Self.refusal { _ = try await Self.bind(database, "search", "crawler", "web", selector: "shared") }
            #expect(taken?.kind == .conflict && taken?.fields.first?.field == "selector", "\(String(describing: taken))")
            #expect(taken?.detail.contains("cannot be used in cluster local") == true && taken?.detail.contains("team") == false, "\(String(describing: taken))")
            _ = try await Self.bind(database, "search", "crawler", "web", selector: "mine")
            let patched = await Self.refusal {
                _ = try await BindingService(database: database).patch(team: "search", identity: "crawler", name: "web", selector: "shared",
                                                                       cluster: nil, namespace: nil, ifMatch: nil, context: Self.admin)
            }
            #expect(patched?.kind == .conflict && patched?.fields.first?.field == "selector")
            #expect(try await database.bindings.get(team: "search", identity: "crawler", name: "web", lock: .none)?.selector == "mine")
        }
    }

    @Test("an identity that is being deleted cannot be bound or changed", arguments: RulesBackend.allCases)
    func beingDeleted(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            _ = try await IdentityService(database: database).delete(team: "payments", name: "orders", ifMatch: nil, cascade: false,
                                                                     context: Self.admin)
            let bound = await Self.refusal { _ = try await Self.bind(database, "payments", "orders", "web") }
            #expect(bound?.kind == .conflict && bound?.detail == "Identity 'orders' is being deleted; it cannot be bound.")
            let changed = await Self.refusal {
                _ = try await IdentityService(database: database).patch(team: "payments", name: "orders", IdentityPatch(tags: ["a": "b"]),
                                                                        ifMatch: nil, context: Self.admin)
            }
            #expect(changed?.kind == .conflict && changed?.detail.contains("is being deleted") == true)
        }
    }

    @Test("If-Match: a stale generation is a 412 and changes nothing; a change bumps the generation and coalesces into the queued job",
          arguments: RulesBackend.allCases)
    func ifMatch(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            let service = IdentityService(database: database)
            let stale = await Self.refusal {
                _ = try await service.patch(team: "payments", name: "orders", IdentityPatch(tags: ["a": "b"]), ifMatch: 7, context: Self.admin)
            }
            #expect(stale?.kind == .preconditionFailed)
            let (changed, didChange) = try await service.patch(team: "payments", name: "orders", IdentityPatch(tags: ["a": "b"]), ifMatch: 1,
                                                               context: Self.admin)
            #expect(didChange && changed.generation == 2 && changed.state == .pending)
            #expect(changed.message == "waiting for a worker to apply generation 2")
            let queued = try await world.jobs().filter { $0.state == .queued && $0.resource == changed.path }
            #expect(queued.count == 1)
            #expect(try IdentityProvision.payload(of: try #require(queued.first)).generation == 2)
        }
    }

    @Test("the last binding's deletion queues its identity's delete job again; an earlier one does not", arguments: RulesBackend.allCases)
    func lastBindingRequeuesIdentityDeletion(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            _ = try await Self.bind(database, "payments", "orders", "web")
            _ = try await Self.bind(database, "payments", "orders", "jobs", namespace: "default")
            _ = try await IdentityService(database: database).delete(team: "payments", name: "orders", ifMatch: nil, cascade: true,
                                                                     context: Self.admin)
            // The identity's delete job ran first and found bindings: it is done, and waits to be queued again.
            let first = try #require(try await world.jobs().first { $0.kind == IdentityDelete.name })
            try await world.setJobState(first.id, .succeeded)
            let bindings = try await world.bindings("payments", "orders")
            let queuedDeletes = { try await world.jobs().filter { $0.kind == IdentityDelete.name && $0.state == .queued }.count }

            try await BindingService.finishDeletion(bindings[0], in: database, audit: [], requestId: nil)
            #expect(try await queuedDeletes() == 0, "one binding is left")
            try await BindingService.finishDeletion(bindings[1], in: database, audit: [], requestId: nil)
            #expect(try await queuedDeletes() == 1)
            #expect(try await world.bindings("payments", "orders").isEmpty)
        }
    }

    @Test("retry: a failed job is queued again with fresh attempts, and its failed identity or binding is pending again",
          arguments: RulesBackend.allCases)
    func retryResetsTheResource(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            let database = world.database
            try await Self.seed(database)
            _ = try await Self.create(database, "payments", "orders")
            _ = try await Self.bind(database, "payments", "orders", "web")
            let jobsBefore = try await world.jobs()
            let provision = try #require(jobsBefore.first { $0.kind == IdentityProvision.name })
            let apply = try #require(jobsBefore.first { $0.kind == BindingApply.name })
            try await world.setJobState(provision.id, .failed)
            try await world.setJobState(apply.id, .failed)
            try await world.setState("payments", "orders", nil, .failed)
            try await world.setState("payments", "orders", "web", .failed)

            let jobs = JobService(database: database)
            let retried = try await jobs.retry(provision.id.uuidString, context: Self.admin)
            #expect(retried.state == .queued && retried.attempts == 0)
            let reset = try #require(try await database.identities.get(team: "payments", name: "orders", lock: .none))
            #expect(reset.state == .pending && reset.message == "waiting for a worker to retry job \(provision.id.uuidString.lowercased())")
            _ = try await jobs.retry(apply.id.uuidString, context: Self.admin)
            #expect(try await database.bindings.get(team: "payments", identity: "orders", name: "web", lock: .none)?.state == .pending)
            #expect(try await world.audit().filter { $0.action == "job.retried" }.count == 2)

            let again = await Self.refusal { _ = try await jobs.retry(provision.id.uuidString, context: Self.admin) }
            #expect(again?.kind == .conflict && again?.detail.contains("only a failed or cancelled job can be retried") == true)
        }
    }

    @Test("a team token of another team sees a 404, and the denial is audited", arguments: RulesBackend.allCases)
    func otherTeamIsNotFound(_ backend: RulesBackend) async throws {
        try await RulesWorld.with(backend) { world in
            try await Self.seed(world.database)
            _ = try await Self.create(world.database, "payments", "orders")
            let search = CallContext(principal: Principal(tokenId: UUID(), tokenName: "search", role: .maintainer, team: "search"),
                                     requestId: "req-2", operation: "test")
            let error = await Self.refusal {
                _ = try await IdentityService(database: world.database).get(team: "payments", name: "orders", context: search)
            }
            #expect(error?.kind == .notFound)
            #expect(try await world.audit().contains { $0.action == "auth.denied" && $0.actorTeam == "search" })
        }
    }
}

/// The one lifecycle of identities and bindings, as a pure function.
@Suite("Resource lifecycle")
struct ResourceLifecycleTests {
    static func binding(_ state: ResourceState = .pending, generation: Int64 = 1) -> Binding {
        Binding(team: "t", identity: "i", name: "b", cluster: "c", namespace: "n", selector: "s", state: state, generation: generation)
    }

    @Test("accepted, started, applied: pending, provisioning, ready; the last error is cleared")
    func happyPath() {
        var resource = Self.binding()
        resource.lastError = "boom"
        ResourceLifecycle.apply(.started(message: "applying"), to: &resource)
        #expect(resource.state == .provisioning && resource.message == "applying")
        ResourceLifecycle.apply(.applied(generation: 1, message: "ready: yes"), to: &resource)
        #expect(resource.state == .ready && resource.observedGeneration == 1 && resource.lastError == nil && resource.message == "ready: yes")
    }

    @Test("applying an older generation leaves the resource pending for the newer one")
    func staleApply() {
        var resource = Self.binding(.provisioning, generation: 3)
        ResourceLifecycle.apply(.applied(generation: 2, message: "ready"), to: &resource)
        #expect(resource.state == .pending && resource.observedGeneration == 2)
        #expect(resource.message == "waiting for a worker to apply generation 3")
    }

    @Test("changed bumps the generation and waits for it")
    func changed() {
        var resource = Self.binding(.ready, generation: 4)
        ResourceLifecycle.apply(.changed, to: &resource)
        #expect(resource.generation == 5 && resource.state == .pending && resource.message == "waiting for a worker to apply generation 5")
    }

    @Test("deleting is sticky: later events change its message, never its state")
    func deletingIsSticky() {
        var resource = Self.binding(.ready)
        ResourceLifecycle.apply(.deleting(message: "waiting for a worker to delete it"), to: &resource)
        for event: LifecycleEvent in [.started(message: "x"), .waiting(message: "y"), .applied(generation: 1, message: "z"),
                                      .failed(job: UUID(), attempt: 10, maxAttempts: 10, retryAt: nil, final: true, error: "e")] {
            ResourceLifecycle.apply(event, to: &resource)
            #expect(resource.state == .deleting, "\(event)")
        }
        #expect(resource.message?.hasPrefix("job ") == true, "a failing delete still says why")
    }

    @Test("a failed attempt says when it is retried; the final one fails the resource and says how to retry")
    func failures() throws {
        let job = try #require(UUID(uuidString: "11111111-2222-3333-4444-555555555555"))
        var resource = Self.binding(.provisioning)
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        ResourceLifecycle.apply(.failed(job: job, attempt: 2, maxAttempts: 10, retryAt: at, final: false, error: "throttled"), to: &resource)
        #expect(resource.state == .provisioning && resource.lastError == "throttled")
        #expect(resource.message == "attempt 2 of 10 failed; retrying at \(Timestamp.format(at))")
        ResourceLifecycle.apply(.failed(job: job, attempt: 10, maxAttempts: 10, retryAt: nil, final: true, error: "forbidden"), to: &resource)
        #expect(resource.state == .failed && resource.lastError == "forbidden")
        #expect(resource.message == "job 11111111-2222-3333-4444-555555555555 failed; fix the cause, then POST /v1/jobs/11111111-2222-3333-4444-555555555555/retry")
    }

    @Test("retried resets only a failed resource")
    func retried() {
        let job = UUID()
        var failed = Self.binding(.failed)
        ResourceLifecycle.apply(.retried(job: job), to: &failed)
        #expect(failed.state == .pending && failed.message == "waiting for a worker to retry job \(job.uuidString.lowercased())")
        var ready = Self.binding(.ready)
        ready.message = "ready"
        ResourceLifecycle.apply(.retried(job: job), to: &ready)
        #expect(ready.state == .ready && ready.message == "ready")
    }
}

/// The job catalogue: every kind's stored name and keys, as the database holds them.
@Suite("Job catalogue")
struct JobCatalogueTests {
    @Test("names are unique and stable")
    func names() {
        #expect(JobCatalogue.names == ["identity.provision", "identity.adopt", "identity.update", "identity.delete", "binding.apply",
                                       "binding.delete", "binding.repair", "cluster.check", "health.check"])
    }

    @Test("binding jobs of one AzureIdentity share a serial key; payloads round-trip")
    func keys() throws {
        let binding = Binding(team: "payments", identity: "orders", name: "web", cluster: "local", namespace: "aad-broker", selector: "s")
        let apply = BindingApply.job(binding, requestId: "r")
        let delete = BindingDelete.job(binding, requestId: "r")
        #expect(apply.serialKey == delete.serialKey && apply.serialKey == "k8s:local/aad-broker/\(KubeNames.azureIdentity(team: "payments", identity: "orders"))")
        #expect(apply.dedupeKey == "binding:payments/orders/web" && delete.dedupeKey == "binding-delete:payments/orders/web")
        #expect(apply.payload == .object(["team": .string("payments"), "identity": .string("orders"), "binding": .string("web")]))
        #expect(ClusterCheck.job("local", requestId: nil).maxAttempts == 3)
        #expect(IdentityDelete.job(IdentityKey(team: "payments", name: "orders"), requestId: nil).payload
                == .object(["team": .string("payments"), "identity": .string("orders")]))
    }
}

@Suite("Abuse limits")
struct AbuseLimitTests {
    static func principal(team: String?, id: UUID = UUID()) -> Principal {
        Principal(tokenId: id, tokenName: "t", role: team == nil ? .admin : .maintainer, team: team)
    }

    @Test("token buckets: a burst, then the sustained rate; the team bucket is shared; a refusal takes nothing")
    func buckets() {
        let limiter = RateLimiter(perToken: RateLimit(perSecond: 1, burst: 3), perTeam: RateLimit(perSecond: 1, burst: 4))
        let start = ContinuousClock.now
        let one = Self.principal(team: "data")
        let two = Self.principal(team: "data")
        for _ in 0..<3 { #expect(limiter.admit(one, now: start) == nil) }
        #expect(limiter.admit(one, now: start).map { [$0.scope, String($0.retryAfterSeconds)] } == ["token", "1"])
        #expect(limiter.admit(two, now: start) == nil, "the team had one left")
        #expect(limiter.admit(two, now: start)?.scope == "team")
        // Both buckets empty: Retry-After is when both have room (the slower one).
        let slow = RateLimiter(perToken: RateLimit(perSecond: 1, burst: 1), perTeam: RateLimit(perSecond: 0.25, burst: 1))
        let three = Self.principal(team: "ops")
        #expect(slow.admit(three, now: start) == nil)
        #expect(slow.admit(three, now: start).map { [$0.scope, String($0.retryAfterSeconds)] } == ["team", "4"])
        #expect(limiter.admit(Self.principal(team: "web"), now: start) == nil, "another team has its own bucket")
        #expect(limiter.admit(one, now: start + .seconds(1)) == nil, "one second refills one request")
        #expect(limiter.admit(Self.principal(team: nil), now: start) == nil, "platform tokens have only the token bucket")
        #expect(RateLimiter(perToken: nil, perTeam: nil).admit(one) == nil)
        let bootstrap = Principal(tokenId: nil, tokenName: "bootstrap-admin", role: .admin, team: nil)
        #expect((0..<10).allSatisfy { _ in limiter.admit(bootstrap, now: start) == nil }, "the bootstrap admin token is never limited")
    }

    @Test("denials fold by actor, operation and status; the summary counts the rest and samples the names")
    func folding() {
        let folder = DenialFolder(window: 60)
        let start = Date()
        func denial(_ name: String, status: Int = 404, actor: String = "web/t") -> AuditDraft {
            AuditDraft(actor: actor, actorTeam: "web", action: "auth.denied", outcome: .denied, team: "data", resourceType: "identity",
                       resourceName: name, requestId: "r", details: ["operation": .string("GET /x/{name}"), "status": .number(Double(status))])
        }
        #expect(folder.record(denial("a"), now: start).count == 1)
        for index in 0..<20 { #expect(folder.record(denial("n\(index)"), now: start.addingTimeInterval(1)).isEmpty) }
        #expect(folder.record(denial("a", status: 403), now: start).count == 1, "another status is another fold")
        #expect(folder.record(denial("a", actor: "web/u"), now: start).count == 1, "another actor too")
        #expect(folder.due(now: start.addingTimeInterval(30)).isEmpty)
        let summaries = folder.due(now: start.addingTimeInterval(61))
        #expect(summaries.count == 1, "only the fold that took denials has a summary")
        let summary = summaries[0]
        #expect(summary.details["count"] == .number(20))
        #expect(summary.details["resources"].flatMap { if case .array(let items) = $0 { items.count } else { nil } } == 10)
        #expect(summary.resourceName == nil && summary.team == "data")
        #expect(folder.record(denial("b"), now: start.addingTimeInterval(62)).count == 1, "a new window writes the first again")
    }

    @Test("cluster sharing: cluster mode serves one team unless single-team; namespaced serves any number")
    func sharing() {
        var cluster = Cluster(name: "c", apiServer: nil, connection: .inCluster)
        #expect(ClusterSharing.allows(cluster, teams: 1) && !ClusterSharing.allows(cluster, teams: 2))
        cluster.singleTeam = true
        #expect(ClusterSharing.allows(cluster, teams: 5))
        cluster.singleTeam = false
        cluster.micMode = .namespaced
        #expect(ClusterSharing.allows(cluster, teams: 5))
    }

    @Test("a requested sweep waits for the spacing after the last one")
    func sweepSpacing() {
        let now = Date()
        #expect(HealthRules.requestedSweepStart(lastObserved: nil, spacing: 10, now: now) == nil)
        #expect(HealthRules.requestedSweepStart(lastObserved: now.addingTimeInterval(-30), spacing: 10, now: now) == nil)
        #expect(HealthRules.requestedSweepStart(lastObserved: now.addingTimeInterval(-4), spacing: 10, now: now) == now.addingTimeInterval(6))
        #expect(HealthRules.requestedSweepStart(lastObserved: now, spacing: 0, now: now) == nil)
    }
}
