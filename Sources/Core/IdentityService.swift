import Foundation

/// The jobs that make an identity so in Azure.
public enum IdentityJobs {
    /// Creates the Azure identity and its role assignments.
    public static let provision = "identity.provision"
    /// Takes over an existing Azure identity, then its role assignments.
    public static let adopt = "identity.adopt"
    /// Brings tags and role assignments in line with a changed desired state.
    public static let update = "identity.update"
    /// Removes podid's role assignments and (unless retained) the Azure identity, then the row.
    public static let delete = "identity.delete"
    /// Every kind, for handler registration and the jobs API.
    public static let all = [provision, adopt, update, delete]

    /// The serial key: jobs of one identity never run at once.
    public static func serialKey(team: String, name: String) -> String { "identity:\(team)/\(name)" }

    /// The job that brings `identity` to its desired state. Provision, adopt and update share one
    /// dedupe key, so a burst of changes while a job waits coalesces into one job (which always
    /// works from the identity's current row).
    public static func reconcile(_ identity: Identity, kind: String, requestId: String?) -> NewJob {
        NewJob(kind: kind, team: identity.team, resourceType: "identity", resourceName: identity.name,
               serialKey: serialKey(team: identity.team, name: identity.name),
               dedupeKey: serialKey(team: identity.team, name: identity.name),
               payload: .object(["team": .string(identity.team), "identity": .string(identity.name), "generation": .number(Double(identity.generation))]),
               requestId: requestId, resource: identity.path)
    }

    /// The delete job of identity `name` of `team`.
    public static func deletion(team: String, name: String, requestId: String?) -> NewJob {
        NewJob(kind: delete, team: team, resourceType: "identity", resourceName: name,
               serialKey: serialKey(team: team, name: name), dedupeKey: "identity-delete:\(team)/\(name)",
               payload: .object(["team": .string(team), "identity": .string(name)]),
               requestId: requestId, resource: "/v1/teams/\(team)/identities/\(name)")
    }
}

/// Identities: validation against Azure's rules and the team's policy, authorization, and audited
/// changes that enqueue their jobs in the same transaction.
public struct IdentityService: Sendable {
    let store: any IdentityStore
    let teams: any TeamStore
    let authorizer: Authorizer

    /// Creates the service.
    public init(store: any IdentityStore, teams: any TeamStore, audit: any AuditStore) {
        self.store = store
        self.teams = teams
        self.authorizer = Authorizer(audit: audit)
    }

    /// Accepts a new identity (state `pending`) and queues its provision or adopt job.
    public func create(team: String, _ spec: IdentitySpec, deletionPolicyGiven: Bool, context: CallContext) async throws -> Identity {
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: spec.name)
        let owner = try await requireTeam(team)
        try IdentityRules.validate(spec, policy: owner.policy)
        let adopting = spec.adoptResourceId != nil
        let identity = Identity(
            team: team, name: spec.name, subscriptionId: spec.subscriptionId, resourceGroup: spec.resourceGroup,
            location: IdentityRules.normalizedLocation(spec.location), tags: spec.tags, grants: spec.grants,
            // podid deletes in Azure only what it created, unless told otherwise: an adopted
            // identity is retained by default.
            deletionPolicy: deletionPolicyGiven ? spec.deletionPolicy : (adopting ? .retain : .delete),
            adoptResourceId: spec.adoptResourceId, adoptedByAdmin: adopting && context.principal.role == .admin,
            message: adopting ? "waiting for a worker to adopt \(spec.adoptResourceId ?? "")" : "waiting for a worker to create it in Azure")
        let job = IdentityJobs.reconcile(identity, kind: adopting ? IdentityJobs.adopt : IdentityJobs.provision,
                                         requestId: context.requestId)
        return try await store.insertIdentity(
            identity, job: job,
            audit: context.audit("identity.created", team: team, resourceType: "identity", resourceName: spec.name,
                                 details: adopting ? ["adopt": .string(spec.adoptResourceId ?? "")] : [:]))
    }

    /// One identity.
    public func get(team: String, name: String, context: CallContext) async throws -> Identity {
        try await authorizer.requireRead(context, team: team, resourceType: "identity", resourceName: name)
        guard let identity = try await store.identity(team: team, name: name) else { throw DomainError.notFound("identity", name) }
        return identity
    }

    /// A team's identities by name.
    public func list(team: String, page: PageRequest, context: CallContext) async throws -> Page<Identity> {
        try await authorizer.requireRead(context, team: team, resourceType: "identity", resourceName: nil)
        _ = try await requireTeam(team)
        let fetched = try await store.identities(team: team, page: PageRequest(limit: page.limit + 1, after: page.after))
        return Page(fetched: fetched, limit: page.limit) { [$0.name] }
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
        if try await store.identity(team: team, name: name) == nil {
            if ifMatch != nil { throw Self.stale(name) }
            do {
                return (try await create(team: team, spec, deletionPolicyGiven: deletionPolicyGiven, context: context), true, true)
            } catch let error as DomainError where error.kind == .conflict {
                // Created by a concurrent request since we looked: update it instead. Any other
                // conflict (a quota, the Azure name taken) is the caller's.
                guard try await store.identity(team: team, name: name) != nil else { throw error }
            }
        }
        let (identity, changed) = try await change(team: team, name: name, ifMatch: ifMatch, context: context) { current in
            try Self.checkUnchangeable(spec, against: current)
            var updated = current
            updated.tags = spec.tags
            updated.grants = spec.grants
            if deletionPolicyGiven { updated.deletionPolicy = spec.deletionPolicy }
            return updated
        }
        return (identity, false, changed)
    }

    /// PATCH: changes tags, grants or the deletion policy; `changed` is false when nothing differed.
    public func patch(team: String, name: String, _ patch: IdentityPatch, ifMatch: Int64?, context: CallContext) async throws
        -> (identity: Identity, changed: Bool)
    {
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: name)
        return try await change(team: team, name: name, ifMatch: ifMatch, context: context) { current in
            var updated = current
            if let tags = patch.tags { updated.tags = tags }
            if let grants = patch.grants { updated.grants = grants }
            if let policy = patch.deletionPolicy { updated.deletionPolicy = policy }
            return updated
        }
    }

    /// DELETE: marks the identity `deleting` and queues the delete job. Refused (409) while it has
    /// bindings, unless `cascade` (then its bindings are deleted first). Deleting an identity that is
    /// already being deleted answers the same again.
    public func delete(team: String, name: String, ifMatch: Int64?, cascade: Bool, context: CallContext) async throws -> Identity {
        try await authorizer.requireManage(context, team: team, resourceType: "identity", resourceName: name)
        for _ in 0..<5 {
            guard let current = try await store.identity(team: team, name: name) else { throw DomainError.notFound("identity", name) }
            if let ifMatch, ifMatch != current.generation { throw Self.stale(name) }
            if current.state == .deleting { return current }
            var cascading: (@Sendable (Binding) -> (NewJob, AuditDraft))?
            if cascade {
                cascading = { @Sendable binding in
                    (BindingJobs.deleting(binding, requestId: context.requestId),
                     context.audit("binding.deleted", team: team, resourceType: "binding", resourceName: "\(name)/\(binding.name)",
                                   details: ["cascade": true], before: .encoding(binding)))
                }
            }
            let deleting = try await store.markDeleting(
                team: team, name: name, ifGeneration: current.generation,
                job: IdentityJobs.deletion(team: team, name: name, requestId: context.requestId), cascade: cascading
            ) { stored in
                context.audit("identity.deleted", team: team, resourceType: "identity", resourceName: name,
                              details: ["deletionPolicy": .string(current.deletionPolicy.rawValue), "cascade": .bool(cascade)],
                              before: .encoding(current), after: .encoding(stored))
            }
            if let deleting { return deleting }
            if ifMatch != nil { throw Self.stale(name) }
        }
        throw DomainError(.conflict, "Identity '\(name)' is changing too often to delete; try again.")
    }

    /// Applies `modify` to the current identity and stores it with generation + 1 and a new job,
    /// unless nothing changed. Without If-Match a concurrent change only makes us read again; with
    /// If-Match it is the caller's 412.
    func change(team: String, name: String, ifMatch: Int64?, context: CallContext,
                _ modify: (Identity) throws -> Identity) async throws -> (Identity, Bool) {
        let owner = try await requireTeam(team)
        for _ in 0..<5 {
            guard let current = try await store.identity(team: team, name: name) else { throw DomainError.notFound("identity", name) }
            if let ifMatch, ifMatch != current.generation { throw Self.stale(name) }
            if current.state == .deleting {
                throw DomainError(.conflict, "Identity '\(name)' is being deleted; it cannot change any more.")
            }
            var updated = try modify(current)
            try IdentityRules.validate(updated.spec, policy: owner.policy, checkPlacement: false)
            if updated.tags == current.tags && updated.grants == current.grants && updated.deletionPolicy == current.deletionPolicy {
                return (current, false)
            }
            updated.state = .pending
            updated.message = "waiting for a worker to apply generation \(current.generation + 1)"
            let kind = current.resourceId == nil ? (current.adoptResourceId != nil ? IdentityJobs.adopt : IdentityJobs.provision) : IdentityJobs.update
            var next = updated
            next.generation = current.generation + 1
            let stored = try await store.replaceIdentity(
                updated, ifGeneration: current.generation, job: IdentityJobs.reconcile(next, kind: kind, requestId: context.requestId)
            ) { stored in
                context.audit("identity.updated", team: team, resourceType: "identity", resourceName: name,
                              before: .encoding(current), after: .encoding(stored))
            }
            if let stored { return (stored, true) }
            if ifMatch != nil { throw Self.stale(name) }
        }
        throw DomainError(.conflict, "Identity '\(name)' is changing too often to update; try again.")
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
        guard let team = try await teams.team(named: name) else { throw DomainError.notFound("team", name) }
        return team
    }

    static func stale(_ name: String) -> DomainError {
        DomainError(.preconditionFailed, "Identity '\(name)' has changed since the ETag in If-Match; read it again and retry.")
    }
}
