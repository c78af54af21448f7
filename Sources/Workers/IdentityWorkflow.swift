import Core
import Foundation
import Logging

/// The identity jobs: provision, adopt, update and delete. Each works from the identity's current
/// row (so a coalesced burst of changes is one run), each step is idempotent (a job whose worker
/// died runs again from the top and skips what is done), and each external effect is written to
/// the audit log with Azure's request id, in the same transaction as what it changed in the row.
public struct IdentityWorkflow: Reconciler {
    let database: any Database
    let azure: any AzureGateway
    public let logger: Logger
    /// How long a role assignment may wait for a new identity's principal to replicate
    /// (`PrincipalNotFound`) before the job is retried with backoff.
    let principalPatience: Duration
    /// How many times one call is retried in place after throttling or a 5xx, honouring
    /// `Retry-After`, before the whole job is retried with backoff.
    let callRetries: Int
    /// The longest in-place wait; a longer `Retry-After` retries the job instead.
    let maxInPlaceWait: Duration

    /// Creates the workflow.
    public init(database: any Database, azure: any AzureGateway, logger: Logger,
                principalPatience: Duration = .seconds(120), callRetries: Int = 4, maxInPlaceWait: Duration = .seconds(30)) {
        self.database = database
        self.azure = azure
        self.logger = logger
        self.principalPatience = principalPatience
        self.callRetries = callRetries
        self.maxInPlaceWait = maxInPlaceWait
    }

    public var kinds: [any JobKind.Type] { [IdentityProvision.self, IdentityAdopt.self, IdentityUpdate.self, IdentityDelete.self] }
    public static let noun = "identity"
    public static let deleteKind: any JobKind.Type = IdentityDelete.self

    public static func payload(of job: Job) throws -> IdentityJobPayload { try IdentityDelete.payload(of: job) }

    public func load(_ payload: IdentityJobPayload) async throws -> Identity? {
        try await database.identities.get(team: payload.team, name: payload.identity, lock: .none)
    }

    public func record(_ event: LifecycleEvent, payload: IdentityJobPayload, audit: [AuditDraft]) async throws {
        try await database.recordIdentity(team: payload.team, name: payload.identity, event, audit: audit)
    }

    public func failureEvent(payload: IdentityJobPayload, job: Job, message: String) -> AuditDraft {
        event("identity.failed", outcome: .failure, team: payload.team, name: payload.identity, job: job,
              details: ["error": .string(message), "attempts": .number(Double(job.attempts))])
    }

    // MARK: provision, adopt, update

    public func reconcile(_ start: Identity, job: Job, progress: JobProgress) async throws {
        var identity = start
        let generation = identity.generation
        let team = identity.team
        let name = identity.name
        guard let working = try await database.recordIdentity(
            team: team, name: name,
            .started(message: "applying generation \(generation) (job \(job.id.uuidString.lowercased()), attempt \(job.attempts))"))
        else { return }
        identity = working
        let ref = identity.azureRef
        let existing = try await call { try await azure.identity(ref) }
        await progress.record(JobStep(name: "azure.identity.get", outcome: "succeeded",
                                      details: ["exists": existing == nil ? "false" : "true", "resourceId": ref.resourceId]))

        let adopting = identity.resourceId == nil && identity.adoptResourceId != nil
        let plan = try IdentityOwnershipRules.plan(identity, existing: existing)
        let adoptedTags = plan.adoptedTags
        let adoptedLocation = plan.adoptedLocation
        if let adoptedTags { identity.tags = adoptedTags }
        if let adoptedLocation { identity.location = adoptedLocation }

        // The identity itself, with the team's tags and podid's ownership tags.
        let desiredTags = identity.azureTags
        let info: AzureIdentityInfo
        var events: [AuditDraft] = []
        if let found = existing {
            if found.tags != desiredTags {
                info = try await call { try await azure.updateIdentityTags(ref, tags: desiredTags) }
                events.append(event("azure.identity.tagged", team: team, name: name, job: job, details: [
                    "resourceId": .string(info.resourceId), "upstreamRequestId": Self.json(info.requestId),
                    "tags": .encoding(desiredTags), "previousTags": .encoding(found.tags),
                ]))
                await progress.record(JobStep(name: "azure.identity.patch", outcome: "succeeded", details: Self.ids(info.requestId)))
            } else {
                info = found
            }
            if identity.resourceId == nil && !adopting {
                // Carrying this identity's podid tags but not recorded: an earlier attempt created it
                // and stopped (a crash, a lost connection) before its event was written, or an
                // identity of the same name kept it (deletionPolicy retain). Audited now, once.
                events.append(event("azure.identity.found", team: team, name: name, job: job, details: [
                    "resourceId": .string(info.resourceId), "clientId": .string(info.clientId), "principalId": .string(info.principalId),
                    "location": .string(identity.location),
                    "note": "already in Azure with this identity's podid tags: created by an earlier attempt that stopped before recording it, or kept by an earlier identity of this name",
                ]))
            }
        } else {
            info = try await call { try await azure.createOrUpdateIdentity(ref, location: identity.location, tags: desiredTags) }
            events.append(event("azure.identity.created", team: team, name: name, job: job, details: [
                "resourceId": .string(info.resourceId), "clientId": .string(info.clientId), "principalId": .string(info.principalId),
                "location": .string(identity.location), "upstreamRequestId": Self.json(info.requestId),
            ]))
            await progress.record(JobStep(name: "azure.identity.put", outcome: "succeeded", details: Self.ids(info.requestId)))
        }
        if adopting {
            events.append(event("identity.adopted", team: team, name: name, job: job, details: [
                "resourceId": .string(info.resourceId), "clientId": .string(info.clientId), "byAdmin": .bool(identity.adoptedByAdmin),
            ]))
        }
        guard let stored = try await database.recordIdentity(
            team: team, name: name, .progressed(message: "identity in Azure; applying \(identity.grants.count) grant(s)"), audit: events,
            change: { [info] row in
                row.record(info)
                if let adoptedTags { row.tags = adoptedTags }
                if let adoptedLocation { row.location = adoptedLocation }
            })
        else { return }
        identity = stored

        try await applyGrants(&identity, principalId: info.principalId, job: job, progress: progress)

        try await database.recordIdentity(
            team: team, name: name,
            .applied(generation: generation, message: "ready: the identity exists in Azure with \(identity.assignments.count) role assignment(s)"),
            audit: [event("identity.ready", team: team, name: name, job: job, details: [
                "generation": .number(Double(generation)), "resourceId": .string(info.resourceId), "clientId": .string(info.clientId),
            ])])

        // Bindings that waited for the identity, or carry an older clientId (a re-adoption), are
        // applied now. Should this fail, the job is retried and gets here again.
        let stale = try await database.bindings.list(team: team, identity: name).filter { $0.needsApply(clientId: info.clientId) }
        if !stale.isEmpty {
            try await database.transaction { tx in
                for binding in stale { try await tx.jobs.enqueue(BindingApply.job(binding, requestId: job.requestId)) }
            }
            await progress.record(JobStep(name: "bindings.queue", outcome: "succeeded", details: ["bindings": stale.map(\.name).joined(separator: ", ")]))
        }
    }

    /// Brings the role assignments in line with the grants: drops recorded ones that vanished from
    /// Azure, deletes the ones no longer granted, creates the missing ones.
    func applyGrants(_ identity: inout Identity, principalId: String, job: Job, progress: JobProgress) async throws {
        let team = identity.team
        let name = identity.name
        var recorded = identity.assignments
        for record in recorded {
            if try await call({ try await azure.roleAssignment(id: record.assignmentId) }) == nil {
                recorded.removeAll { $0 == record }
                try await database.recordIdentity(team: team, name: name, audit: [
                    event("azure.roleassignment.missing", outcome: .failure, team: team, name: name, job: job, details: [
                        "assignmentId": .string(record.assignmentId), "role": .string(record.role), "scope": .string(record.scope),
                        "note": "removed outside podid; podid creates it again if it is still granted",
                    ]),
                ], change: { $0.assignments.removeAll { $0.assignmentId.lowercased() == record.assignmentId.lowercased() } })
            }
        }
        for record in recorded where !identity.grants.contains(where: record.implements) {
            try await release(record, from: &recorded, team: team, name: name, job: job, progress: progress)
        }
        let missing = identity.grants.filter { grant in !recorded.contains(where: { $0.implements(grant) }) }
        let policy = missing.isEmpty ? nil : try await database.teams.get(team, lock: .none)?.policy
        for grant in missing {
            // New access only within the team's current policy, on the scope it names.
            try IdentityRules.checkAssignmentScope(role: grant.role, requested: grant.scope, policy: policy ?? .empty)
            let roleDefinitionId = try await call { try await azure.roleDefinitionId(roleName: grant.role, scope: grant.scope) }
            let assignment = try await assign(scope: grant.scope, roleDefinitionId: roleDefinitionId, principalId: principalId, progress: progress)
            try await checkLanded(assignment, grant: grant, roleDefinitionId: roleDefinitionId, principalId: principalId,
                                  policy: policy ?? .empty, team: team, name: name, job: job)
            let owned = RoleAssignmentNaming.isPodids(assignment)
            let record = RecordedAssignment(role: grant.role, scope: grant.scope, roleDefinitionId: roleDefinitionId,
                                            assignmentId: assignment.id, owned: owned)
            recorded.append(record)
            try await database.recordIdentity(team: team, name: name, audit: [
                event(owned ? "azure.roleassignment.created" : "azure.roleassignment.found", team: team, name: name, job: job, details: [
                    "assignmentId": .string(assignment.id), "role": .string(grant.role), "scope": .string(grant.scope),
                    "roleDefinitionId": .string(roleDefinitionId), "principalId": .string(principalId),
                    "upstreamRequestId": Self.json(assignment.requestId),
                ]),
            ], change: { current in
                // One element, onto the row as it is now: never the whole list as this job read it.
                current.assignments.removeAll { $0.assignmentId.lowercased() == record.assignmentId.lowercased() }
                current.assignments.append(record)
            })
            await progress.record(JobStep(name: "azure.roleAssignment.put", outcome: "succeeded",
                                          details: Self.ids(assignment.requestId).merging(["role": grant.role, "scope": grant.scope]) { a, _ in a }))
        }
        identity.assignments = recorded
    }

    /// Refuses an assignment whose `properties.scope` (what Azure answers) is not the grant's own
    /// scope within the policy: deletes it when podid's PUT made it, audits the refusal, and fails
    /// the job with what happened.
    func checkLanded(_ assignment: RoleAssignmentInfo, grant: IdentityGrant, roleDefinitionId: String, principalId: String,
                     policy: TeamPolicy, team: String, name: String, job: Job) async throws {
        let landed = assignment.scope.isEmpty ? RoleAssignmentNaming.scopeOf(assignmentId: assignment.id) : assignment.scope
        do {
            try IdentityRules.checkAssignmentScope(role: grant.role, requested: grant.scope, landed: landed, policy: policy)
        } catch {
            var details: [String: JSONValue] = [
                "assignmentId": .string(assignment.id), "role": .string(grant.role), "requestedScope": .string(grant.scope),
                "scope": .string(landed), "upstreamRequestId": Self.json(assignment.requestId),
            ]
            let made = assignment.name.lowercased()
                == RoleAssignmentNaming.name(scope: grant.scope, roleDefinitionId: roleDefinitionId, principalId: principalId)
            if made {
                let outcome = try await call { try await azure.deleteRoleAssignment(id: assignment.id) }
                details["deleted"] = .bool(true)
                details["deleteRequestId"] = Self.json(outcome.requestId)
            }
            try await database.recordIdentity(team: team, name: name, audit: [
                event("azure.roleassignment.refused", outcome: .failure, team: team, name: name, job: job, details: details),
            ])
            throw error
        }
    }

    /// Stops using a recorded assignment: deletes it when podid made it (an equal one someone else
    /// made is only forgotten), and records that with its audit event.
    func release(_ record: RecordedAssignment, from recorded: inout [RecordedAssignment], team: String, name: String, job: Job,
                 progress: JobProgress) async throws {
        var details: [String: JSONValue] = [
            "assignmentId": .string(record.assignmentId), "role": .string(record.role), "scope": .string(record.scope),
        ]
        var action = "azure.roleassignment.released"
        if record.owned {
            let outcome = try await call { try await azure.deleteRoleAssignment(id: record.assignmentId) }
            details["upstreamRequestId"] = Self.json(outcome.requestId)
            details["existed"] = .bool(outcome.existed)
            action = "azure.roleassignment.deleted"
            await progress.record(JobStep(name: "azure.roleAssignment.delete", outcome: "succeeded", details: Self.ids(outcome.requestId)))
        }
        recorded.removeAll { $0 == record }
        try await database.recordIdentity(team: team, name: name, audit: [event(action, team: team, name: name, job: job, details: details)],
                                          change: { $0.assignments.removeAll { $0.assignmentId.lowercased() == record.assignmentId.lowercased() } })
    }

    /// A role assignment, waiting while Azure has not yet replicated a new principal.
    func assign(scope: String, roleDefinitionId: String, principalId: String, progress: JobProgress) async throws -> RoleAssignmentInfo {
        let deadline = ContinuousClock.now + principalPatience
        var wait = Duration.seconds(1)
        while true {
            do {
                return try await call { try await azure.assignRole(scope: scope, roleDefinitionId: roleDefinitionId, principalId: principalId) }
            } catch let error as UpstreamError where error.code == "PrincipalNotFound" && ContinuousClock.now + wait < deadline {
                await progress.record(JobStep(name: "azure.roleAssignment.put", outcome: "waiting",
                                              details: Self.ids(error.requestId).merging(["reason": "PrincipalNotFound: the new identity has not replicated yet"]) { a, _ in a }))
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(10))
            }
        }
    }

    // MARK: delete

    public func delete(_ identity: Identity, job: Job, progress: JobProgress) async throws {
        let team = identity.team
        let name = identity.name
        let remaining = try await database.bindings.list(team: team, identity: name)
        if !remaining.isEmpty {
            // The last binding's delete job queues this job again.
            try await database.recordIdentity(team: team, name: name, .progressed(
                message: "waiting for \(remaining.count) binding(s) to be deleted: \(remaining.map(\.name).joined(separator: ", "))"))
            await progress.record(JobStep(name: "bindings.wait", outcome: "skipped", details: ["bindings": remaining.map(\.name).joined(separator: ", ")]))
            return
        }
        let ref = identity.azureRef
        let existing = try await call { try await azure.identity(ref) }
        // podid touches the Azure identity only when it is podid's: provisioned or adopted by this
        // identity, or carrying its ownership tags (a provision that stopped before recording it).
        let ours = IdentityOwnershipRules.mayDelete(identity, existing: existing)
        var recorded = identity.assignments
        if ours, let principalId = identity.principalId ?? existing?.principalId {
            for record in recorded {
                try await release(record, from: &recorded, team: team, name: name, job: job, progress: progress)
            }
            // Assignments podid made but had not recorded yet (a worker stopped between the PUT
            // and the row update): recognised by podid's deterministic names.
            let scopes = Set(identity.grants.map { $0.scope.lowercased() } + identity.assignments.map { $0.scope.lowercased() })
            var swept = Set<String>()
            for scope in scopes.sorted() {
                let found = try await call { try await azure.roleAssignments(scope: scope, principalId: principalId) }
                for assignment in found where assignment.principalId.lowercased() == principalId.lowercased()
                    && RoleAssignmentNaming.isPodids(assignment) && swept.insert(assignment.id.lowercased()).inserted
                {
                    let outcome = try await call { try await azure.deleteRoleAssignment(id: assignment.id) }
                    try await database.recordIdentity(team: team, name: name, audit: [
                        event("azure.roleassignment.deleted", team: team, name: name, job: job, details: [
                            "assignmentId": .string(assignment.id), "scope": .string(assignment.scope),
                            "upstreamRequestId": Self.json(outcome.requestId), "note": "made by an interrupted job and not recorded",
                        ]),
                    ])
                }
            }
        }
        var final: [AuditDraft] = []
        if let found = existing, ours {
            if identity.deletionPolicy == .delete {
                let outcome = try await call { try await azure.deleteIdentity(ref) }
                final.append(event("azure.identity.deleted", team: team, name: name, job: job, details: [
                    "resourceId": .string(found.resourceId), "clientId": .string(found.clientId),
                    "upstreamRequestId": Self.json(outcome.requestId),
                ]))
                await progress.record(JobStep(name: "azure.identity.delete", outcome: "succeeded", details: Self.ids(outcome.requestId)))
            } else {
                final.append(event("azure.identity.retained", team: team, name: name, job: job, details: [
                    "resourceId": .string(found.resourceId), "clientId": .string(found.clientId),
                    "note": "deletionPolicy is retain: the Azure identity is kept, with its podid tags, and can be adopted again",
                ]))
            }
        }
        final.append(event("identity.removed", team: team, name: name, job: job, details: [
            "deletionPolicy": .string(identity.deletionPolicy.rawValue), "resourceId": Self.json(identity.resourceId),
        ], before: .encoding(identity)))
        try await database.transaction { [final] tx in
            try await tx.identities.delete(team: team, name: name)
            try await tx.append(final)
        }
    }

    // MARK: helpers

    /// Runs one Azure call, retrying it in place after throttling or a transient failure (honouring
    /// `Retry-After`) a few times before handing the error to the job's backoff. PrincipalNotFound
    /// is handled by `assign`.
    func call<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as UpstreamError where error.retryable && error.code != "PrincipalNotFound" && attempt < callRetries {
                attempt += 1
                let delay = Backoff.delay(attempt: attempt, base: .milliseconds(500), cap: maxInPlaceWait, retryAfter: error.retryAfter)
                guard delay <= maxInPlaceWait else { throw error }
                logger.debug("retrying an Azure call", metadata: ["error": "\(error)", "delay": "\(delay)"])
                try await Task.sleep(for: delay)
            }
        }
    }

    func event(_ action: String, outcome: AuditOutcome = .success, team: String, name: String, job: Job,
               details: [String: JSONValue] = [:], before: JSONValue? = nil) -> AuditDraft {
        jobEvent(action, outcome: outcome, job: job, team: team, resourceType: "identity", resourceName: name, details: details, before: before)
    }

    static func json(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }

    static func ids(_ requestId: String?) -> [String: String] {
        requestId.map { ["upstreamRequestId": $0] } ?? [:]
    }
}
