import Foundation

/// What a team asks for when it binds an identity.
public struct NewBinding: Sendable, Equatable {
    public var name: String
    public var cluster: String
    /// Default: the cluster's broker namespace.
    public var namespace: String?
    /// Default: `KubeNames.defaultSelector` (the binding's name and 13 random characters).
    public var selector: String?

    /// Creates a request.
    public init(name: String, cluster: String, namespace: String? = nil, selector: String? = nil) {
        self.name = name
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
    }
}

/// Bindings: validation against the cluster and the team's policy, authorization, and audited
/// changes that queue their jobs in the same transaction.
public struct BindingService: Sendable {
    let database: any Database
    let authorizer: Authorizer

    /// Creates the service.
    public init(database: any Database) {
        self.database = database
        self.authorizer = Authorizer(database: database)
    }

    /// Binds an identity in a cluster (202, state `pending`) and queues the apply job.
    public func create(team: String, identity: String, _ request: NewBinding, context: CallContext) async throws -> Binding {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: request.name)
        let owner = try await requireTeam(team)
        let parent = try await requireIdentity(team: team, name: identity)
        var validator = Validator()
        validator.check(Rules.isDNS1123Label(request.name), "name",
                        "must be a DNS-1123 label: 1 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit")
        if let namespace = request.namespace {
            validator.check(Rules.isDNS1123Label(namespace), "namespace", "must be a namespace name (a DNS-1123 label)")
        }
        if let selector = request.selector {
            validator.check(KubeNames.isLabelValue(selector), "selector",
                            "must be a label value: 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
        }
        validator.check(!request.cluster.isEmpty, "cluster", "is required: the name of a cluster (GET /v1/clusters lists them)")
        try validator.throwIfInvalid()
        guard let cluster = try await database.clusters.get(request.cluster, lock: .none) else { throw Self.noCluster(request.cluster) }
        let namespace = try request.namespace ?? Self.defaultNamespace(cluster, policy: owner.policy)
        try Self.checkPolicy(owner.policy, cluster: cluster, namespace: namespace)
        try Self.checkBindable(parent)
        var binding = Binding(
            team: team, identity: identity, name: request.name, cluster: cluster.name, namespace: namespace,
            selector: request.selector ?? KubeNames.defaultSelector(binding: request.name))
        ResourceLifecycle.apply(.accepted(message: parent.state == .ready ? "waiting for a worker to apply it" : "waiting for identity '\(identity)' to be ready"),
                                to: &binding)
        let event = context.audit("binding.created", team: team, resourceType: "binding", resourceName: "\(identity)/\(request.name)",
                                  details: ["cluster": .string(cluster.name), "namespace": .string(namespace), "selector": .string(binding.selector)])
        return try await database.transaction { [binding] tx in
            // The cluster's row lock makes the selector check and the insert one step per cluster.
            guard let locked = try await tx.clusters.get(binding.cluster, lock: .update) else { throw Self.noCluster(binding.cluster) }
            guard let parent = try await tx.identities.get(team: team, name: identity, lock: .share) else {
                throw DomainError.notFound("identity", identity)
            }
            try Self.checkBindable(parent)
            try await Self.checkSelector(binding, cluster: locked, in: tx)
            let stored = try await tx.bindings.insert(binding)
            var created = event
            created.after = .encoding(stored)
            try await tx.enqueue(BindingApply.job(stored, requestId: context.requestId), audited: created)
            return stored
        }
    }

    /// One binding.
    public func get(team: String, identity: String, name: String, context: CallContext) async throws -> Binding {
        try await authorizer.requireRead(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        guard let binding = try await database.bindings.get(team: team, identity: identity, name: name, lock: .none) else {
            throw DomainError.notFound("binding", name)
        }
        return binding
    }

    /// An identity's bindings by name.
    public func list(team: String, identity: String, page: PageRequest, context: CallContext) async throws -> Page<Binding> {
        try await authorizer.requireRead(context, team: team, resourceType: "binding", resourceName: nil)
        _ = try await requireIdentity(team: team, name: identity)
        return try await Page.fetch(page, key: { [$0.name] }) { try await database.bindings.list(team: team, identity: identity, page: $0) }
    }

    /// Changes the selector (the cluster and namespace cannot change: bind again instead).
    public func patch(team: String, identity: String, name: String, selector: String?, cluster: String?, namespace: String?,
                      ifMatch: Int64?, context: CallContext) async throws -> (Binding, Bool) {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        return try await database.transaction { tx in
            guard let located = try await tx.bindings.get(team: team, identity: identity, name: name, lock: .none) else {
                throw DomainError.notFound("binding", name)
            }
            // Lock order as in create: the cluster (selector check), then the binding.
            let locked = try await tx.clusters.get(located.cluster, lock: .update)
            guard let current = try await tx.bindings.get(team: team, identity: identity, name: name, lock: .update) else {
                throw DomainError.notFound("binding", name)
            }
            try Precondition.check(ifMatch, current: current.generation, stale: Self.stale(name))
            var validator = Validator()
            if let cluster { validator.check(cluster == current.cluster, "cluster", "cannot change (it is \(current.cluster)); create another binding instead") }
            if let namespace { validator.check(namespace == current.namespace, "namespace", "cannot change (it is \(current.namespace)); create another binding instead") }
            if let selector {
                validator.check(KubeNames.isLabelValue(selector), "selector",
                                "must be a label value: 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
            }
            try validator.throwIfInvalid()
            if current.state == .deleting { throw DomainError(.conflict, "Binding '\(name)' is being deleted; it cannot change any more.") }
            guard let selector, selector != current.selector else { return (current, false) }
            var updated = current
            updated.selector = selector
            try await Self.checkSelector(updated, cluster: locked, in: tx)
            ResourceLifecycle.apply(.changed, to: &updated)
            let stored = try await tx.bindings.update(updated)
            try await tx.enqueue(BindingApply.job(stored, requestId: context.requestId),
                                 audited: context.audit("binding.updated", team: team, resourceType: "binding", resourceName: "\(identity)/\(name)",
                                                        before: .encoding(current), after: .encoding(stored)))
            return (stored, true)
        }
    }

    /// Marks the binding `deleting` and queues the job that removes its objects.
    public func delete(team: String, identity: String, name: String, ifMatch: Int64?, context: CallContext) async throws -> Binding {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        return try await database.transaction { tx in
            guard let current = try await tx.bindings.get(team: team, identity: identity, name: name, lock: .update) else {
                throw DomainError.notFound("binding", name)
            }
            try Precondition.check(ifMatch, current: current.generation, stale: Self.stale(name))
            if current.state == .deleting { return current }
            return try await Self.markDeleting(
                current, in: tx, message: "waiting for a worker to delete it",
                event: context.audit("binding.deleted", team: team, resourceType: "binding", resourceName: "\(identity)/\(name)",
                                     before: .encoding(current)),
                requestId: context.requestId)
        }
    }

    /// Marks a binding `deleting` inside `tx`: its superseded apply jobs are cancelled, its delete
    /// job queued, and `event` recorded with the stored binding and the job. Deleting a binding and
    /// deleting its identity with `cascade` both come here.
    @discardableResult
    static func markDeleting(_ binding: Binding, in tx: any Records, message: String, event: AuditDraft,
                             requestId: String?) async throws -> Binding {
        if let apply = BindingApply.dedupeKey(binding) {
            try await tx.jobs.cancel(dedupeKey: apply, states: JobRules.supersededByDeletion, reason: "cancelled: the binding is being deleted")
        }
        let stored = try await tx.bindings.update(ResourceLifecycle.applying(.deleting(message: message), to: binding))
        var deleted = event
        deleted.after = .encoding(stored)
        try await tx.enqueue(BindingDelete.job(stored, requestId: requestId), audited: deleted)
        return stored
    }

    /// Queues the apply job of every binding whose objects are still under an older naming scheme
    /// (`KubeNames.Scheme`), with an audit event each; the job moves them. Run by the workers at
    /// start-up; queueing is idempotent (a queued apply job absorbs another), so replicas may all
    /// run it. Returns how many bindings it queued.
    @discardableResult
    public static func queueRenames(in database: any Database) async throws -> Int {
        let old = try await database.bindings.underOldNaming(limit: 100_000)
        var start = 0
        while start < old.count {
            let batch = old[start..<min(start + 100, old.count)]
            try await database.transaction { tx in
                for binding in batch {
                    let event = AuditDraft(
                        actor: "podid", actorTeam: nil, action: "binding.renaming", outcome: .success, team: binding.team,
                        resourceType: "binding", resourceName: "\(binding.identity)/\(binding.name)", requestId: nil,
                        details: ["cluster": .string(binding.cluster), "namespace": .string(binding.namespace),
                                  "from": .array([.string(binding.azureIdentityObjectName), .string(binding.bindingObjectName)]),
                                  "to": .array([.string(binding.underCurrentNaming.azureIdentityObjectName),
                                                .string(binding.underCurrentNaming.bindingObjectName)])])
                    try await tx.enqueue(BindingApply.job(binding, requestId: nil), audited: event)
                }
            }
            start += batch.count
        }
        return old.count
    }

    /// A binding's delete job removed its objects: the row goes with the job's audit events, and
    /// when its identity is being deleted and this was its last binding, the identity's delete job
    /// (which waited for its bindings) is queued again.
    public static func finishDeletion(_ binding: Binding, in database: any Database, audit events: [AuditDraft], requestId: String?) async throws {
        try await database.transaction { tx in
            try await tx.bindings.delete(team: binding.team, identity: binding.identity, name: binding.name)
            try await tx.append(events)
            // Locked: a concurrent delete of the identity's other last binding sees this one gone.
            guard let identity = try await tx.identities.get(team: binding.team, name: binding.identity, lock: .update),
                  identity.state == .deleting,
                  try await tx.bindings.list(team: binding.team, identity: binding.identity).isEmpty
            else { return }
            try await tx.jobs.enqueue(IdentityDelete.job(IdentityKey(team: binding.team, name: binding.identity), requestId: requestId))
        }
    }

    /// The objects podid applies for an identity's bindings; optionally only those of one cluster and
    /// namespace (HTTP renders them as YAML).
    public func manifests(team: String, identity: String, cluster: String?, namespace: String?, context: CallContext) async throws -> BindingManifests {
        try await authorizer.requireRead(context, team: team, resourceType: "identity", resourceName: identity)
        let parent = try await requireIdentity(team: team, name: identity)
        guard let clientId = parent.clientId, let resourceId = parent.resourceId else {
            throw DomainError(.conflict, "Identity '\(identity)' is \(parent.state.rawValue) and has no clientId yet; the AzureIdentity needs it. Export the manifests once the identity is ready.")
        }
        let bindings = try await database.bindings.list(team: team, identity: identity).filter {
            $0.state != .deleting && (cluster == nil || $0.cluster == cluster) && (namespace == nil || $0.namespace == namespace)
        }
        return BindingManifests(identity: parent, resourceId: resourceId, clientId: clientId, bindings: bindings)
    }

    /// The team's policy for a binding: the cluster must be allowed; the namespace must be the
    /// broker namespace or an allowed one, and in `namespaced` mode an allowed one (it is where the
    /// pods run).
    static func checkPolicy(_ policy: TeamPolicy, cluster: Cluster, namespace: String) throws {
        var validator = Validator()
        validator.check(policy.clusters.contains(cluster.name), "cluster",
                        "cluster \(cluster.name) is not allowed for this team; allowed: \(IdentityRules.describe(policy.clusters))")
        switch cluster.micMode {
        case .namespaced:
            validator.check(policy.namespaces.contains(namespace), "namespace",
                            "cluster \(cluster.name) runs MIC namespaced, so the binding's namespace is where the pods run: \(namespace) is not allowed for this team; allowed: \(IdentityRules.describe(policy.namespaces))")
        case .cluster:
            validator.check(namespace == cluster.brokerNamespace || policy.namespaces.contains(namespace), "namespace",
                            "namespace \(namespace) is not allowed for this team; allowed: \(cluster.brokerNamespace) (the broker namespace)\(policy.namespaces.isEmpty ? "" : ", " + policy.namespaces.joined(separator: ", "))")
        }
        try validator.throwIfInvalid()
    }

    /// Refuses a selector another team uses where MIC matches this binding's pods: the whole cluster
    /// in `cluster` mode, the binding's namespace in `namespaced` mode (pods are matched by their
    /// label alone). The answer says the selector is taken there, never by whom. The caller holds the
    /// cluster's row lock, so two teams cannot take one selector at the same moment.
    static func checkSelector(_ binding: Binding, cluster: Cluster?, in tx: any Records) async throws {
        let namespaced = cluster?.micMode == .namespaced
        let others = try await tx.bindings.teams(usingSelector: binding.selector, cluster: binding.cluster,
                                                 namespace: namespaced ? binding.namespace : nil, excludingTeam: binding.team)
        if !others.isEmpty {
            let place = namespaced ? "namespace \(binding.namespace) of cluster \(binding.cluster)" : "cluster \(binding.cluster)"
            throw DomainError(
                .conflict,
                "Selector '\(binding.selector)' cannot be used in \(place): pods there are matched by their label alone and this one is taken. Choose another, or leave selector out for one that cannot be guessed.",
                fields: [FieldProblem("selector", "cannot be used in \(place); choose another, or leave it out")])
        }
    }

    /// Where a binding goes when the request names no namespace: the broker namespace in `cluster`
    /// mode; in `namespaced` mode the pods' namespace, which is the team's only policy namespace
    /// (422 when the policy allows several or none).
    static func defaultNamespace(_ cluster: Cluster, policy: TeamPolicy) throws -> String {
        switch cluster.micMode {
        case .cluster:
            return cluster.brokerNamespace
        case .namespaced:
            guard policy.namespaces.count == 1 else {
                throw DomainError.invalid([FieldProblem(
                    "namespace",
                    "is required: cluster \(cluster.name) runs MIC namespaced, so the binding goes in the namespace where its pods run; allowed: \(IdentityRules.describe(policy.namespaces))")])
            }
            return policy.namespaces[0]
        }
    }

    /// An identity that is being deleted cannot be bound.
    static func checkBindable(_ identity: Identity) throws {
        if identity.state == .deleting {
            throw DomainError(.conflict, "Identity '\(identity.name)' is being deleted; it cannot be bound.")
        }
    }

    static func noCluster(_ name: String) -> DomainError {
        DomainError(.validation, "There is no cluster named '\(name)'.",
                    fields: [FieldProblem("cluster", "there is no cluster named '\(name)'; GET /v1/clusters lists them")])
    }

    func requireTeam(_ name: String) async throws -> Team {
        guard let team = try await database.teams.get(name, lock: .none) else { throw DomainError.notFound("team", name) }
        return team
    }

    func requireIdentity(team: String, name: String) async throws -> Identity {
        guard let identity = try await database.identities.get(team: team, name: name, lock: .none) else {
            throw DomainError.notFound("identity", name)
        }
        return identity
    }

    static func stale(_ name: String) -> DomainError { Precondition.stale("Binding", name) }
}

/// The manifests export of an identity: exactly the objects podid applies for these bindings.
public struct BindingManifests: Sendable, Equatable {
    public var identity: Identity
    public var resourceId: String
    public var clientId: String
    public var bindings: [Binding]

    public init(identity: Identity, resourceId: String, clientId: String, bindings: [Binding]) {
        self.identity = identity
        self.resourceId = resourceId
        self.clientId = clientId
        self.bindings = bindings
    }
}
