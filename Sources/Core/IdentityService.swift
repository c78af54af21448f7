import Foundation

/// Identities: validation against Azure's rules and the team's policy, authorization, and audited
/// changes that enqueue their jobs in the same transaction.
public struct IdentityService: Sendable {
    let database: any Database
    let authorizer: Authorizer

    /// Creates the service.
    public init(database: any Database) {
        self.database = database
        self.authorizer = Authorizer(database: database)
    }

    /// Accepts a new identity (state `pending`) and queues its provision or adopt job.
    public func create(team: String, _ spec: IdentitySpec, deletionPolicyGiven: Bool, context: CallContext) async throws -> Identity {
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: spec.name)
        let owner = try await requireTeam(team)
        try IdentityRules.validate(spec, policy: owner.policy)
        let adopting = spec.adoptResourceId != nil
        var identity = Identity(
            team: team, name: spec.name, subscriptionId: spec.subscriptionId, resourceGroup: spec.resourceGroup,
            location: IdentityRules.normalizedLocation(spec.location), tags: spec.tags, grants: spec.grants,
            // podid deletes in Azure only what it created, unless told otherwise: an adopted
            // identity is retained by default.
            deletionPolicy: deletionPolicyGiven ? spec.deletionPolicy : (adopting ? .retain : .delete),
            adoptResourceId: spec.adoptResourceId, adoptedByAdmin: adopting && context.principal.role == .admin,
            message: nil)
        ResourceLifecycle.apply(.accepted(message: adopting ? "waiting for a worker to adopt \(spec.adoptResourceId ?? "")" : "waiting for a worker to create it in Azure"),
                                to: &identity)
        let event = context.audit("identity.created", team: team, resourceType: "identity", resourceName: spec.name,
                                  details: adopting ? ["adopt": .string(spec.adoptResourceId ?? "")] : [:])
        return try await database.transaction { [identity] tx in
            // Locking the team row serializes creations within one team, so two concurrent requests
            // cannot both take the last place of the quota.
            guard let owner = try await tx.teams.get(team, lock: .update) else { throw DomainError.notFound("team", team) }
            try IdentityRules.checkQuota(owner, owned: try await tx.identities.count(team: team))
            let stored = try await tx.identities.insert(identity)
            var created = event
            created.after = .encoding(stored)
            try await tx.enqueue(stored.reconcileJob(requestId: context.requestId), audited: created)
            return stored
        }
    }

    /// One identity.
    public func get(team: String, name: String, context: CallContext) async throws -> Identity {
        try await authorizer.requireRead(context, team: team, resourceType: "identity", resourceName: name)
        guard let identity = try await database.identities.get(team: team, name: name, lock: .none) else {
            throw DomainError.notFound("identity", name)
        }
        return identity
    }

    /// A team's identities by name.
    public func list(team: String, page: PageRequest, context: CallContext) async throws -> Page<Identity> {
        try await authorizer.requireRead(context, team: team, resourceType: "identity", resourceName: nil)
        _ = try await requireTeam(team)
        return try await Page.fetch(page, key: { [$0.name] }) { try await database.identities.list(team: team, page: $0) }
    }

    /// PUT: creates the identity when it does not exist (`created` true), otherwise replaces its
    /// changeable fields (tags, grants, deletion policy).
    public func put(team: String, name: String, _ spec: IdentitySpec, deletionPolicyGiven: Bool, ifMatch: Int64?,
                    context: CallContext) async throws -> (identity: Identity, created: Bool, changed: Bool) {
        guard spec.name == name else {
            throw DomainError(.validation, "The body names another identity than the path.",
                              fields: [FieldProblem("name", "must be '\(name)' (the identity in the path) or left out")])
        }
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: name)
        if try await database.identities.get(team: team, name: name, lock: .none) == nil {
            if ifMatch != nil { throw Self.stale(name) }
            do {
                return (try await create(team: team, spec, deletionPolicyGiven: deletionPolicyGiven, context: context), true, true)
            } catch let error as DomainError where error.kind == .conflict {
                // Created by a concurrent request since we looked: update it instead. Any other
                // conflict (a quota, the Azure name taken) is the caller's.
                guard try await database.identities.get(team: team, name: name, lock: .none) != nil else { throw error }
            }
        }
        let (identity, changed) = try await change(team: team, name: name, ifMatch: ifMatch, context: context) { @Sendable current in
            try Self.checkUnchangeable(spec, against: current)
            var updated = current
            updated.tags = spec.tags
            updated.grants = spec.grants
            if deletionPolicyGiven {
                try IdentityRules.checkDeletionPolicyChange(current, to: spec.deletionPolicy, by: context.principal.role)
                updated.deletionPolicy = spec.deletionPolicy
            }
            return updated
        }
        return (identity, false, changed)
    }

    /// PATCH: changes tags, grants or the deletion policy; `changed` is false when nothing differed.
    public func patch(team: String, name: String, _ patch: IdentityPatch, ifMatch: Int64?, context: CallContext) async throws
        -> (identity: Identity, changed: Bool)
    {
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: name)
        return try await change(team: team, name: name, ifMatch: ifMatch, context: context) { @Sendable current in
            var updated = current
            if let tags = patch.tags { updated.tags = tags }
            if let grants = patch.grants { updated.grants = grants }
            if let policy = patch.deletionPolicy {
                try IdentityRules.checkDeletionPolicyChange(current, to: policy, by: context.principal.role)
                updated.deletionPolicy = policy
            }
            return updated
        }
    }

    /// DELETE: marks the identity `deleting` and queues the delete job. Refused (409) while it has
    /// bindings, unless `cascade` (then its bindings are deleted first). Deleting an identity that is
    /// already being deleted answers the same again.
    public func delete(team: String, name: String, ifMatch: Int64?, cascade: Bool, context: CallContext) async throws -> Identity {
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: name)
        return try await database.transaction { tx in
            guard let current = try await tx.identities.get(team: team, name: name, lock: .update) else {
                throw DomainError.notFound("identity", name)
            }
            try Precondition.check(ifMatch, current: current.generation, stale: Self.stale(name))
            if current.state == .deleting { return current }
            // The identity row is locked now, and a new binding share-locks it: the list is complete.
            let bindings = try await tx.bindings.list(team: team, identity: name).filter { $0.state != .deleting }
            try IdentityRules.checkDeletion(name, bindings: bindings, cascade: cascade)
            for binding in bindings {
                try await BindingService.markDeleting(
                    binding, in: tx, message: "waiting for a worker to delete it (the identity is being deleted)",
                    event: context.audit("binding.deleted", team: team, resourceType: "binding", resourceName: "\(name)/\(binding.name)",
                                         details: ["cascade": true], before: .encoding(binding)),
                    requestId: context.requestId)
            }
            // Queued work for the identity no longer applies; a running job finishes first (the
            // delete job waits for it: same serial key).
            if let reconcile = IdentityProvision.dedupeKey(current) {
                try await tx.jobs.cancel(dedupeKey: reconcile, states: JobRules.supersededByDeletion,
                                         reason: "cancelled: the identity is being deleted")
            }
            var deleting = current
            ResourceLifecycle.apply(.deleting(message: "waiting for a worker to delete it"), to: &deleting)
            let stored = try await tx.identities.update(deleting)
            try await tx.enqueue(
                IdentityDelete.job(IdentityKey(team: team, name: name), requestId: context.requestId),
                audited: context.audit("identity.deleted", team: team, resourceType: "identity", resourceName: name,
                                       details: ["deletionPolicy": .string(current.deletionPolicy.rawValue), "cascade": .bool(cascade)],
                                       before: .encoding(current), after: .encoding(stored)))
            return stored
        }
    }

    /// Applies `modify` to the current identity and stores it with generation + 1 and a new job,
    /// unless nothing changed. The row is locked while it changes: a concurrent change waits, and
    /// with If-Match it is the caller's 412.
    func change(team: String, name: String, ifMatch: Int64?, context: CallContext,
                _ modify: @escaping @Sendable (Identity) throws -> Identity) async throws -> (Identity, Bool) {
        try await database.transaction { tx in
            guard let owner = try await tx.teams.get(team, lock: .none) else { throw DomainError.notFound("team", team) }
            guard let current = try await tx.identities.get(team: team, name: name, lock: .update) else {
                throw DomainError.notFound("identity", name)
            }
            try Precondition.check(ifMatch, current: current.generation, stale: Self.stale(name))
            if current.state == .deleting {
                throw DomainError(.conflict, "Identity '\(name)' is being deleted; it cannot change any more.")
            }
            var updated = try modify(current)
            try IdentityRules.validate(updated.spec, policy: owner.policy, checkPlacement: false)
            if updated.tags == current.tags && updated.grants == current.grants && updated.deletionPolicy == current.deletionPolicy {
                return (current, false)
            }
            ResourceLifecycle.apply(.changed, to: &updated)
            let stored = try await tx.identities.update(updated)
            try await tx.enqueue(
                stored.reconcileJob(requestId: context.requestId),
                audited: context.audit("identity.updated", team: team, resourceType: "identity", resourceName: name,
                                       before: .encoding(current), after: .encoding(stored)))
            return (stored, true)
        }
    }

    static func checkUnchangeable(_ spec: IdentitySpec, against current: Identity) throws {
        var validator = Validator()
        validator.check(spec.subscriptionId.lowercased() == current.subscriptionId.lowercased(), "subscriptionId",
                        "cannot change (it is \(current.subscriptionId)); create another identity instead")
        validator.check(spec.resourceGroup.lowercased() == current.resourceGroup.lowercased(), "resourceGroup",
                        "cannot change (it is \(current.resourceGroup)); create another identity instead")
        let location = IdentityRules.normalizedLocation(spec.location)
        validator.check(location.isEmpty || location == current.location, "location",
                        "cannot change (it is \(current.location)); create another identity instead")
        if let resourceId = spec.adoptResourceId {
            let existing = current.resourceId ?? current.adoptResourceId ?? current.azureRef.resourceId
            validator.check(resourceId.lowercased() == existing.lowercased(), "resourceId",
                            "cannot change (it is \(existing))")
        }
        try validator.throwIfInvalid()
    }

    func requireTeam(_ name: String) async throws -> Team {
        guard let team = try await database.teams.get(name, lock: .none) else { throw DomainError.notFound("team", name) }
        return team
    }

    static func stale(_ name: String) -> DomainError { Precondition.stale("Identity", name) }
}
