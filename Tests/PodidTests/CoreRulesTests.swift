import Core
import Foundation
import Testing

/// Core's rules on the in-memory database: quota, cascade, selector uniqueness, deletion checks,
/// the lifecycle and the retry reset, in milliseconds and without PostgreSQL. The PostgreSQL and
/// simulator tests prove the same paths end to end.
@Suite("Core rules (in memory)")
struct CoreRulesTests {
    static let subscription = "00000000-0000-0000-0000-000000000000"
    static let scope = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev"
    static let admin = CallContext(principal: Principal(tokenId: nil, tokenName: "admin", role: .admin, team: nil), requestId: "req-1",
                                   operation: "test")

    /// A database with teams `payments` and `search` (allowed cluster `local` and namespace
    /// `default`, at most `max` identities) and cluster `local`.
    static func world(max: Int = 10) async throws -> InMemoryDatabase {
        let database = InMemoryDatabase()
        let policy = TeamPolicyPatch(subscriptions: [subscription], resourceGroups: ["podid-dev"],
                                     grants: [GrantRule(role: "Reader", scopePrefix: scope)], clusters: ["local"], namespaces: ["default"],
                                     maxIdentities: max)
        for team in ["payments", "search"] {
            _ = try await TeamService(database: database).create(NewTeam(name: team, policy: policy), context: admin)
        }
        _ = try await ClusterService(database: database).create(
            Cluster(name: "local", apiServer: "https://127.0.0.1:6443", connection: .inCluster), context: admin)
        return database
    }

    static func spec(_ name: String) -> IdentitySpec {
        IdentitySpec(name: name, subscriptionId: subscription, resourceGroup: "podid-dev", location: "westeurope",
                     grants: [IdentityGrant(role: "Reader", scope: scope)])
    }

    static func create(_ database: InMemoryDatabase, _ team: String, _ name: String) async throws -> Identity {
        try await IdentityService(database: database).create(team: team, spec(name), deletionPolicyGiven: false, context: admin)
    }

    static func bind(_ database: InMemoryDatabase, _ team: String, _ identity: String, _ name: String, selector: String? = nil,
                     namespace: String? = nil) async throws -> Binding {
        try await BindingService(database: database).create(
            team: team, identity: identity, NewBinding(name: name, cluster: "local", namespace: namespace, selector: selector), context: admin)
    }

    static func conflict(_ body: () async throws -> Void) async -> DomainError? {
        do {
            try await body()
            return nil
        } catch let error as DomainError {
            return error
        } catch {
            return nil
        }
    }

    @Test("quota: the team's maxIdentities is a 409 naming the limit, and nothing is written")
    func quota() async throws {
        let database = try await Self.world(max: 1)
        _ = try await Self.create(database, "payments", "orders")
        let jobsBefore = database.snapshot.jobs.count
        let error = await Self.conflict { _ = try await Self.create(database, "payments", "billing") }
        #expect(error?.kind == .conflict)
        #expect(error?.detail.contains("policy.maxIdentities is 1 and it owns 1 identities") == true, "\(String(describing: error))")
        #expect(database.snapshot.identities.count == 1 && database.snapshot.jobs.count == jobsBefore, "a refused creation writes nothing")
        // The quota is per team.
        _ = try await Self.create(database, "search", "billing")
    }

    @Test("a created identity is pending with its provision job and audit event naming the job")
    func creationWritesRowJobAndEvent() async throws {
        let database = try await Self.world()
        let identity = try await Self.create(database, "payments", "orders")
        #expect(identity.state == .pending && identity.message == "waiting for a worker to create it in Azure")
        let job = try #require(database.snapshot.jobs.values.first { $0.kind == IdentityProvision.name })
        #expect(job.serialKey == "identity:payments/orders" && job.dedupeKey == "identity:payments/orders")
        #expect(try IdentityProvision.payload(of: job) == IdentityJobPayload(team: "payments", identity: "orders", generation: 1))
        let event = try #require(database.snapshot.audit.first { $0.action == "identity.created" })
        #expect(event.details["jobId"] == .string(job.id.uuidString.lowercased()))
    }

    @Test("cascade: an identity with bindings is a 409 naming them; with cascade every binding and its superseded jobs go too")
    func cascade() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        let web = try await Self.bind(database, "payments", "orders", "web")
        _ = try await Self.bind(database, "payments", "orders", "jobs", namespace: "default")
        // The web binding's apply job failed for good; it no longer applies once the binding goes.
        let webApply = try #require(database.snapshot.jobs.values.first { $0.kind == BindingApply.name && $0.resource == web.path })
        database.arrange { $0.jobs[webApply.id]?.state = .failed }

        let service = IdentityService(database: database)
        let refused = await Self.conflict { _ = try await service.delete(team: "payments", name: "orders", ifMatch: nil, cascade: false, context: Self.admin) }
        #expect(refused?.kind == .conflict)
        #expect(refused?.detail.contains("still has 2 binding(s): jobs (cluster local), web (cluster local)") == true, "\(String(describing: refused))")
        #expect(database.snapshot.bindings.values.allSatisfy { $0.state != .deleting }, "a refused delete changes nothing")

        let deleted = try await service.delete(team: "payments", name: "orders", ifMatch: nil, cascade: true, context: Self.admin)
        #expect(deleted.state == .deleting)
        let snapshot = database.snapshot
        #expect(snapshot.bindings.values.allSatisfy { $0.state == .deleting && $0.message == "waiting for a worker to delete it (the identity is being deleted)" })
        #expect(snapshot.jobs[webApply.id]?.state == .cancelled, "the failed apply of a binding being deleted is cancelled")
        #expect(snapshot.jobs.values.filter { $0.kind == BindingApply.name }.allSatisfy { $0.state == .cancelled })
        #expect(snapshot.jobs.values.filter { $0.kind == BindingDelete.name }.count == 2)
        #expect(snapshot.jobs.values.filter { $0.kind == IdentityProvision.name }.allSatisfy { $0.state == .cancelled })
        #expect(snapshot.jobs.values.filter { $0.kind == IdentityDelete.name && $0.state == .queued }.count == 1)
        let cascaded = snapshot.audit.filter { $0.action == "binding.deleted" }
        #expect(cascaded.count == 2 && cascaded.allSatisfy { $0.details["cascade"] == .bool(true) && $0.details["jobId"] != nil })

        // Deleting again answers the same, and queues nothing more.
        let again = try await service.delete(team: "payments", name: "orders", ifMatch: nil, cascade: true, context: Self.admin)
        #expect(again.state == .deleting && database.snapshot.jobs.count == snapshot.jobs.count)
    }

    @Test("deleting a binding cancels its queued and failed apply jobs, the same rule as a cascade")
    func bindingDeletionCancels() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        let web = try await Self.bind(database, "payments", "orders", "web")
        let apply = try #require(database.snapshot.jobs.values.first { $0.kind == BindingApply.name })
        database.arrange { $0.jobs[apply.id]?.state = .failed }
        let deleted = try await BindingService(database: database).delete(team: "payments", identity: "orders", name: web.name, ifMatch: nil,
                                                                          context: Self.admin)
        #expect(deleted.state == .deleting)
        #expect(database.snapshot.jobs[apply.id]?.state == .cancelled)
        #expect(database.snapshot.jobs[apply.id]?.lastError == "cancelled: the binding is being deleted")
    }

    @Test("selector: another team's selector in the cluster is a 409 on create and on patch; the same team may share one")
    func selectorUniqueness() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        _ = try await Self.create(database, "search", "crawler")
        _ = try await Self.bind(database, "payments", "orders", "web", selector: "shared")
        _ = try await Self.bind(database, "payments", "orders", "web2", selector: "shared")
        let taken = await Self.conflict { _ = try await Self.bind(database, "search", "crawler", "web", selector: "shared") }
        #expect(taken?.kind == .conflict && taken?.fields.first?.field == "selector", "\(String(describing: taken))")
        #expect(taken?.detail.contains("used by another team in cluster local") == true)
        _ = try await Self.bind(database, "search", "crawler", "web", selector: "mine")
        let patched = await Self.conflict {
            _ = try await BindingService(database: database).patch(team: "search", identity: "crawler", name: "web", selector: "shared",
                                                                   cluster: nil, namespace: nil, ifMatch: nil, context: Self.admin)
        }
        #expect(patched?.kind == .conflict && patched?.fields.first?.field == "selector")
        #expect(database.snapshot.bindings[BindingKey(team: "search", identity: "crawler", name: "web")]?.selector == "mine")
    }

    @Test("an identity that is being deleted cannot be bound or changed")
    func beingDeleted() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        _ = try await IdentityService(database: database).delete(team: "payments", name: "orders", ifMatch: nil, cascade: false, context: Self.admin)
        let bound = await Self.conflict { _ = try await Self.bind(database, "payments", "orders", "web") }
        #expect(bound?.kind == .conflict && bound?.detail == "Identity 'orders' is being deleted; it cannot be bound.")
        let changed = await Self.conflict {
            _ = try await IdentityService(database: database).patch(team: "payments", name: "orders", IdentityPatch(tags: ["a": "b"]),
                                                                    ifMatch: nil, context: Self.admin)
        }
        #expect(changed?.kind == .conflict && changed?.detail.contains("is being deleted") == true)
    }

    @Test("If-Match: a stale generation is a 412 and changes nothing; a change bumps the generation and queues one job")
    func ifMatch() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        let service = IdentityService(database: database)
        let stale = await Self.conflict {
            _ = try await service.patch(team: "payments", name: "orders", IdentityPatch(tags: ["a": "b"]), ifMatch: 7, context: Self.admin)
        }
        #expect(stale?.kind == .preconditionFailed)
        let (changed, didChange) = try await service.patch(team: "payments", name: "orders", IdentityPatch(tags: ["a": "b"]), ifMatch: 1,
                                                           context: Self.admin)
        #expect(didChange && changed.generation == 2 && changed.state == .pending)
        #expect(changed.message == "waiting for a worker to apply generation 2")
        // The queued provision job absorbed the change (one dedupe key), and carries generation 2.
        let queued = database.snapshot.jobs.values.filter { $0.state == .queued && $0.resource == changed.path }
        #expect(queued.count == 1)
        #expect(try IdentityProvision.payload(of: queued[0]).generation == 2)
    }

    @Test("the last binding's deletion queues its identity's delete job again; an earlier one does not")
    func lastBindingRequeuesIdentityDeletion() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        _ = try await Self.bind(database, "payments", "orders", "web")
        _ = try await Self.bind(database, "payments", "orders", "jobs", namespace: "default")
        _ = try await IdentityService(database: database).delete(team: "payments", name: "orders", ifMatch: nil, cascade: true, context: Self.admin)
        // The identity's delete job ran first and found bindings: it is done, and waits to be queued again.
        let first = try #require(database.snapshot.jobs.values.first { $0.kind == IdentityDelete.name })
        database.arrange { $0.jobs[first.id]?.state = .succeeded }
        let bindings = database.snapshot.bindings.values.sorted { $0.name < $1.name }

        try await BindingService.finishDeletion(bindings[0], in: database, audit: [], requestId: nil)
        #expect(database.snapshot.jobs.values.filter { $0.kind == IdentityDelete.name && $0.state == .queued }.isEmpty,
                "one binding is left")
        try await BindingService.finishDeletion(bindings[1], in: database, audit: [], requestId: nil)
        #expect(database.snapshot.jobs.values.filter { $0.kind == IdentityDelete.name && $0.state == .queued }.count == 1)
        #expect(database.snapshot.bindings.isEmpty)
    }

    @Test("retry: a failed job is queued again with fresh attempts, and its failed identity or binding is pending again")
    func retryResetsTheResource() async throws {
        let database = try await Self.world()
        let identity = try await Self.create(database, "payments", "orders")
        let binding = try await Self.bind(database, "payments", "orders", "web")
        let provision = try #require(database.snapshot.jobs.values.first { $0.kind == IdentityProvision.name })
        let apply = try #require(database.snapshot.jobs.values.first { $0.kind == BindingApply.name })
        database.arrange { snapshot in
            snapshot.jobs[provision.id]?.state = .failed
            snapshot.jobs[provision.id]?.attempts = 10
            snapshot.jobs[apply.id]?.state = .failed
            snapshot.identities[IdentityKey(team: "payments", name: "orders")]?.state = .failed
            snapshot.bindings[BindingKey(team: "payments", identity: "orders", name: "web")]?.state = .failed
        }
        let jobs = JobService(database: database)
        let retried = try await jobs.retry(provision.id.uuidString, context: Self.admin)
        #expect(retried.state == .queued && retried.attempts == 0)
        let reset = try #require(database.snapshot.identities[IdentityKey(team: "payments", name: identity.name)])
        #expect(reset.state == .pending && reset.message == "waiting for a worker to retry job \(provision.id.uuidString.lowercased())")
        _ = try await jobs.retry(apply.id.uuidString, context: Self.admin)
        #expect(database.snapshot.bindings[BindingKey(team: "payments", identity: "orders", name: binding.name)]?.state == .pending)
        #expect(database.snapshot.audit.filter { $0.action == "job.retried" }.count == 2)

        let again = await Self.conflict { _ = try await jobs.retry(provision.id.uuidString, context: Self.admin) }
        #expect(again?.kind == .conflict && again?.detail.contains("only a failed or cancelled job can be retried") == true)
    }

    @Test("a team token of another team sees a 404, and the denial is audited")
    func otherTeamIsNotFound() async throws {
        let database = try await Self.world()
        _ = try await Self.create(database, "payments", "orders")
        let search = CallContext(principal: Principal(tokenId: UUID(), tokenName: "search", role: .maintainer, team: "search"),
                                 requestId: "req-2", operation: "test")
        let error = await Self.conflict { _ = try await IdentityService(database: database).get(team: "payments", name: "orders", context: search) }
        #expect(error?.kind == .notFound)
        #expect(database.snapshot.audit.contains { $0.action == "auth.denied" && $0.actorTeam == "search" })
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
                                       "binding.delete", "cluster.check", "health.check"])
    }

    @Test("binding jobs of one AzureIdentity share a serial key; payloads round-trip")
    func keys() throws {
        let binding = Binding(team: "payments", identity: "orders", name: "web", cluster: "local", namespace: "aad-broker", selector: "s")
        let apply = BindingApply.job(binding, requestId: "r")
        let delete = BindingDelete.job(binding, requestId: "r")
        #expect(apply.serialKey == delete.serialKey && apply.serialKey == "k8s:local/aad-broker/payments-orders")
        #expect(apply.dedupeKey == "binding:payments/orders/web" && delete.dedupeKey == "binding-delete:payments/orders/web")
        #expect(apply.payload == .object(["team": .string("payments"), "identity": .string("orders"), "binding": .string("web")]))
        #expect(ClusterCheck.job("local", requestId: nil).maxAttempts == 3)
        #expect(IdentityDelete.job(IdentityKey(team: "payments", name: "orders"), requestId: nil).payload
                == .object(["team": .string("payments"), "identity": .string("orders")]))
    }
}
