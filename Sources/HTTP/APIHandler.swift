import API
import Core
import Foundation
import OpenAPIRuntime
import Prometheus

/// The implementation of the OpenAPI contract: maps wire types to domain calls and back. Errors are
/// thrown as `DomainError` and rendered by `ProblemMiddleware`.
public struct APIHandler: APIProtocol {
    let teams: TeamService
    let tokens: TokenService
    let identities: IdentityService
    let clusters: ClusterService
    let bindings: BindingService
    let jobs: JobService
    let audit: AuditService
    let health: HealthService
    let readiness: any ReadinessProbe
    let registry: PrometheusCollectorRegistry
    let openAPIDocument: String

    /// Creates the handler.
    public init(
        teams: TeamService, tokens: TokenService, identities: IdentityService, clusters: ClusterService, bindings: BindingService,
        jobs: JobService, audit: AuditService, health: HealthService, readiness: any ReadinessProbe, registry: PrometheusCollectorRegistry
    ) {
        self.audit = audit
        self.health = health
        self.teams = teams
        self.tokens = tokens
        self.identities = identities
        self.clusters = clusters
        self.bindings = bindings
        self.jobs = jobs
        self.readiness = readiness
        self.registry = registry
        self.openAPIDocument = openAPIDocumentText
    }

    // MARK: service

    public func getHealthz(_ input: Operations.GetHealthz.Input) async throws -> Operations.GetHealthz.Output {
        .ok(.init(body: .json(.init(status: "ok"))))
    }

    public func getReadyz(_ input: Operations.GetReadyz.Input) async throws -> Operations.GetReadyz.Output {
        let reason = await withTaskGroup(of: String?.self) { group in
            group.addTask { await readiness.notReadyReason() }
            group.addTask {
                try? await Task.sleep(for: .seconds(3))
                return "the database did not answer within 3 seconds"
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let reason { throw DomainError(.unavailable, "podid is not ready: \(reason).") }
        return .ok(.init(body: .json(.init(status: "ok", database: "ok", pendingMigrations: []))))
    }

    public func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return .ok(.init(body: .plainText(HTTPBody(buffer))))
    }

    public func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws
        -> Operations.GetOpenAPIDocument.Output
    {
        .ok(.init(body: .yaml(HTTPBody(openAPIDocument))))
    }

    public func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let principal = try RequestInfo.context().principal
        for key in ["tokenId", "team", "expiresAt"] { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(.init(
            tokenId: principal.tokenId?.uuidString.lowercased(), tokenName: principal.tokenName,
            role: Wire.role(principal.role), team: principal.team, expiresAt: principal.expiresAt))))
    }

    // MARK: teams

    public func listTeams(_ input: Operations.ListTeams.Input) async throws -> Operations.ListTeams.Output {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let result = try await teams.list(page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.team), nextCursor: result.nextCursor))))
    }

    public func createTeam(_ input: Operations.CreateTeam.Input) async throws -> Operations.CreateTeam.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let team = try await teams.create(
            NewTeam(name: body.name, displayName: body.displayName, contacts: body.contacts,
                    policy: body.policy.map(Wire.policyPatch)),
            context: context)
        ResponseAdjustments.setHeader(.eTag, Wire.etag(team.version))
        ResponseAdjustments.setHeader(.location, "/v1/teams/\(team.name)")
        return .created(.init(body: .json(Wire.team(team))))
    }

    public func getTeam(_ input: Operations.GetTeam.Input) async throws -> Operations.GetTeam.Output {
        let context = try RequestInfo.context()
        let team = try await teams.get(input.path.team, context: context)
        ResponseAdjustments.setHeader(.eTag, Wire.etag(team.version))
        return .ok(.init(body: .json(Wire.team(team))))
    }

    public func updateTeam(_ input: Operations.UpdateTeam.Input) async throws -> Operations.UpdateTeam.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let patch = TeamPatch(displayName: body.displayName, contacts: body.contacts, policy: body.policy.map(Wire.policyPatch))
        let team = try await teams.update(
            input.path.team, patch: patch, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        ResponseAdjustments.setHeader(.eTag, Wire.etag(team.version))
        return .ok(.init(body: .json(Wire.team(team))))
    }

    public func deleteTeam(_ input: Operations.DeleteTeam.Input) async throws -> Operations.DeleteTeam.Output {
        let context = try RequestInfo.context()
        try await teams.delete(input.path.team, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .noContent(.init())
    }

    // MARK: tokens

    public func listTeamTokens(_ input: Operations.ListTeamTokens.Input) async throws -> Operations.ListTeamTokens.Output {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let result = try await tokens.listTeamTokens(team: input.path.team, page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.token), nextCursor: result.nextCursor))))
    }

    public func createTeamToken(_ input: Operations.CreateTeamToken.Input) async throws -> Operations.CreateTeamToken.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (record, secret) = try await tokens.createTeamToken(
            team: input.path.team, Wire.newToken(body), context: context)
        ResponseAdjustments.setHeader(.location, "/v1/teams/\(input.path.team)/tokens/\(record.id.uuidString.lowercased())")
        return .created(.init(body: .json(Wire.createdToken(record, secret: secret))))
    }

    public func deleteTeamToken(_ input: Operations.DeleteTeamToken.Input) async throws -> Operations.DeleteTeamToken.Output {
        let context = try RequestInfo.context()
        try await tokens.deleteTeamToken(team: input.path.team, id: input.path.id, context: context)
        return .noContent(.init())
    }

    public func listPlatformTokens(_ input: Operations.ListPlatformTokens.Input) async throws
        -> Operations.ListPlatformTokens.Output
    {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let result = try await tokens.listPlatformTokens(page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.token), nextCursor: result.nextCursor))))
    }

    public func createPlatformToken(_ input: Operations.CreatePlatformToken.Input) async throws
        -> Operations.CreatePlatformToken.Output
    {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (record, secret) = try await tokens.createPlatformToken(Wire.newToken(body), context: context)
        ResponseAdjustments.setHeader(.location, "/v1/tokens/\(record.id.uuidString.lowercased())")
        return .created(.init(body: .json(Wire.createdToken(record, secret: secret))))
    }

    public func deletePlatformToken(_ input: Operations.DeletePlatformToken.Input) async throws
        -> Operations.DeletePlatformToken.Output
    {
        let context = try RequestInfo.context()
        try await tokens.deletePlatformToken(id: input.path.id, context: context)
        return .noContent(.init())
    }

    // MARK: identities

    /// Headers and null keys of a single identity response.
    func respond(_ identity: Identity, location: Bool = false) -> Components.Schemas.Identity {
        ResponseAdjustments.setHeader(.eTag, Wire.etag(identity.generation))
        if location { ResponseAdjustments.setHeader(.location, identity.path) }
        for key in Wire.identityNullKeys { ResponseAdjustments.ensureKey(key) }
        return Wire.identity(identity)
    }

    public func listIdentities(_ input: Operations.ListIdentities.Input) async throws -> Operations.ListIdentities.Output {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let result = try await identities.list(team: input.path.team, page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        for key in Wire.identityNullKeys { ResponseAdjustments.ensureItemKey(key) }
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.identity), nextCursor: result.nextCursor))))
    }

    public func createIdentity(_ input: Operations.CreateIdentity.Input) async throws -> Operations.CreateIdentity.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let identity = try await identities.create(
            team: input.path.team, try Wire.spec(body, name: nil), deletionPolicyGiven: body.deletionPolicy != nil, context: context)
        return .accepted(.init(body: .json(respond(identity, location: true))))
    }

    public func getIdentity(_ input: Operations.GetIdentity.Input) async throws -> Operations.GetIdentity.Output {
        let context = try RequestInfo.context()
        let identity = try await identities.get(team: input.path.team, name: input.path.identity, context: context)
        return .ok(.init(body: .json(respond(identity))))
    }

    public func putIdentity(_ input: Operations.PutIdentity.Input) async throws -> Operations.PutIdentity.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (identity, created, changed) = try await identities.put(
            team: input.path.team, name: input.path.identity, try Wire.spec(body, name: body.name ?? input.path.identity),
            deletionPolicyGiven: body.deletionPolicy != nil, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        if changed { return .accepted(.init(body: .json(respond(identity, location: created)))) }
        return .ok(.init(body: .json(respond(identity))))
    }

    public func updateIdentity(_ input: Operations.UpdateIdentity.Input) async throws -> Operations.UpdateIdentity.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let patch = IdentityPatch(tags: body.tags?.additionalProperties, grants: Wire.grants(body.grants),
                                  deletionPolicy: body.deletionPolicy.map(Wire.deletionPolicy))
        let (identity, changed) = try await identities.patch(
            team: input.path.team, name: input.path.identity, patch, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        if changed { return .accepted(.init(body: .json(respond(identity)))) }
        return .ok(.init(body: .json(respond(identity))))
    }

    public func deleteIdentity(_ input: Operations.DeleteIdentity.Input) async throws -> Operations.DeleteIdentity.Output {
        let context = try RequestInfo.context()
        let identity = try await identities.delete(
            team: input.path.team, name: input.path.identity, ifMatch: try Wire.ifMatch(input.headers.ifMatch),
            cascade: input.query.cascade ?? false, context: context)
        return .accepted(.init(body: .json(respond(identity))))
    }

    // MARK: jobs

    public func listJobs(_ input: Operations.ListJobs.Input) async throws -> Operations.ListJobs.Output {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let filter = JobFilter(team: input.query.team, state: input.query.state.map(Wire.jobState), kind: input.query.kind,
                               resource: input.query.resource)
        let result = try await jobs.list(filter, page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        for key in Wire.jobNullKeys { ResponseAdjustments.ensureItemKey(key) }
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.job), nextCursor: result.nextCursor))))
    }

    public func getJob(_ input: Operations.GetJob.Input) async throws -> Operations.GetJob.Output {
        let context = try RequestInfo.context()
        let job = try await jobs.get(input.path.id, context: context)
        for key in Wire.jobNullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(Wire.job(job))))
    }

    public func retryJob(_ input: Operations.RetryJob.Input) async throws -> Operations.RetryJob.Output {
        let context = try RequestInfo.context()
        let job = try await jobs.retry(input.path.id, context: context)
        for key in Wire.jobNullKeys { ResponseAdjustments.ensureKey(key) }
        ResponseAdjustments.setHeader(.location, "/v1/jobs/\(job.id.uuidString.lowercased())")
        return .accepted(.init(body: .json(Wire.job(job))))
    }

    // MARK: clusters

    func respond(_ cluster: Cluster, location: Bool = false) -> Components.Schemas.Cluster {
        ResponseAdjustments.setHeader(.eTag, Wire.etag(cluster.version))
        if location { ResponseAdjustments.setHeader(.location, "/v1/clusters/\(cluster.name)") }
        for key in Wire.clusterNullKeys { ResponseAdjustments.ensureKey(key) }
        return Wire.cluster(cluster)
    }

    public func listClusters(_ input: Operations.ListClusters.Input) async throws -> Operations.ListClusters.Output {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let result = try await clusters.list(page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        for key in Wire.clusterNullKeys { ResponseAdjustments.ensureItemKey(key) }
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.cluster), nextCursor: result.nextCursor))))
    }

    public func createCluster(_ input: Operations.CreateCluster.Input) async throws -> Operations.CreateCluster.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let cluster = try await clusters.create(try Wire.newCluster(body), context: context)
        return .created(.init(body: .json(respond(cluster, location: true))))
    }

    public func getCluster(_ input: Operations.GetCluster.Input) async throws -> Operations.GetCluster.Output {
        let context = try RequestInfo.context()
        return .ok(.init(body: .json(respond(try await clusters.get(input.path.cluster, context: context)))))
    }

    public func updateCluster(_ input: Operations.UpdateCluster.Input) async throws -> Operations.UpdateCluster.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let cluster = try await clusters.update(
            input.path.cluster, patch: try Wire.clusterPatch(body), ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .ok(.init(body: .json(respond(cluster))))
    }

    public func deleteCluster(_ input: Operations.DeleteCluster.Input) async throws -> Operations.DeleteCluster.Output {
        let context = try RequestInfo.context()
        try await clusters.delete(input.path.cluster, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .noContent(.init())
    }

    // MARK: bindings

    func respond(_ binding: Binding, location: Bool = false) -> Components.Schemas.Binding {
        ResponseAdjustments.setHeader(.eTag, Wire.etag(binding.generation))
        if location { ResponseAdjustments.setHeader(.location, binding.path) }
        for key in Wire.bindingNullKeys { ResponseAdjustments.ensureKey(key) }
        return Wire.binding(binding)
    }

    public func listBindings(_ input: Operations.ListBindings.Input) async throws -> Operations.ListBindings.Output {
        let context = try RequestInfo.context()
        let page = try PageRequest(limit: input.query.limit, cursor: input.query.cursor)
        let result = try await bindings.list(team: input.path.team, identity: input.path.identity, page: page, context: context)
        ResponseAdjustments.ensureKey("nextCursor")
        for key in Wire.bindingNullKeys { ResponseAdjustments.ensureItemKey(key) }
        return .ok(.init(body: .json(.init(items: result.items.map(Wire.binding), nextCursor: result.nextCursor))))
    }

    public func createBinding(_ input: Operations.CreateBinding.Input) async throws -> Operations.CreateBinding.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let binding = try await bindings.create(
            team: input.path.team, identity: input.path.identity,
            NewBinding(name: body.name, cluster: body.cluster, namespace: body.namespace, selector: body.selector), context: context)
        return .accepted(.init(body: .json(respond(binding, location: true))))
    }

    public func getBinding(_ input: Operations.GetBinding.Input) async throws -> Operations.GetBinding.Output {
        let context = try RequestInfo.context()
        let binding = try await bindings.get(team: input.path.team, identity: input.path.identity, name: input.path.binding, context: context)
        return .ok(.init(body: .json(respond(binding))))
    }

    public func updateBinding(_ input: Operations.UpdateBinding.Input) async throws -> Operations.UpdateBinding.Output {
        let context = try RequestInfo.context()
        let body = switch input.body { case .json(let body): body }
        let (binding, changed) = try await bindings.patch(
            team: input.path.team, identity: input.path.identity, name: input.path.binding, selector: body.selector,
            cluster: body.cluster, namespace: body.namespace, ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        if changed { return .accepted(.init(body: .json(respond(binding)))) }
        return .ok(.init(body: .json(respond(binding))))
    }

    public func deleteBinding(_ input: Operations.DeleteBinding.Input) async throws -> Operations.DeleteBinding.Output {
        let context = try RequestInfo.context()
        let binding = try await bindings.delete(
            team: input.path.team, identity: input.path.identity, name: input.path.binding,
            ifMatch: try Wire.ifMatch(input.headers.ifMatch), context: context)
        return .accepted(.init(body: .json(respond(binding))))
    }

    public func getManifests(_ input: Operations.GetManifests.Input) async throws -> Operations.GetManifests.Output {
        let context = try RequestInfo.context()
        let export = try await bindings.manifests(
            team: input.path.team, identity: input.path.identity, cluster: input.query.cluster, namespace: input.query.namespace,
            context: context)
        return .ok(.init(body: .yaml(HTTPBody(ManifestsYAML.render(export)))))
    }

    // MARK: audit

    public func listAudit(_ input: Operations.ListAudit.Input) async throws -> Operations.ListAudit.Output {
        let context = try RequestInfo.context()
        let query = input.query
        let filter = AuditWire.filter(team: query.team, actor: query.actor, action: query.action, resourceType: query.resourceType,
                                      resourceName: query.resourceName, outcome: query.outcome?.rawValue, requestId: query.requestId,
                                      since: query.since, until: query.until)
        switch input.headers.accept.sortedByQuality().first?.contentType {
        case .applicationXNdjson?:
            let records = try await audit.export(filter, context: context)
            return .ok(.init(body: .applicationXNdjson(HTTPBody(AuditExportBody(records: records, format: .ndjson), length: .unknown,
                                                                 iterationBehavior: .single))))
        case .csv?:
            let records = try await audit.export(filter, context: context)
            return .ok(.init(body: .csv(HTTPBody(AuditExportBody(records: records, format: .csv), length: .unknown, iterationBehavior: .single))))
        default:
            let page = try PageRequest(limit: query.limit, cursor: query.cursor)
            let result = try await audit.list(filter, page: page, context: context)
            ResponseAdjustments.ensureKey("nextCursor")
            for key in AuditWire.nullKeys { ResponseAdjustments.ensureItemKey(key) }
            return .ok(.init(body: .json(.init(items: try result.items.map(AuditWire.event), nextCursor: result.nextCursor))))
        }
    }

    public func getAuditEvent(_ input: Operations.GetAuditEvent.Input) async throws -> Operations.GetAuditEvent.Output {
        let context = try RequestInfo.context()
        let record = try await audit.get(input.path.id, context: context)
        for key in AuditWire.nullKeys { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(try AuditWire.event(record))))
    }

    public func streamAudit(_ input: Operations.StreamAudit.Input) async throws -> Operations.StreamAudit.Output {
        let context = try RequestInfo.context()
        let query = input.query
        let filter = try await audit.scoped(
            AuditWire.filter(team: query.team, actor: query.actor, action: query.action, resourceType: query.resourceType,
                             resourceName: query.resourceName, outcome: query.outcome?.rawValue, requestId: query.requestId,
                             since: query.since, until: query.until),
            context: context)
        var after: Int64
        if let header = input.headers.lastEventID {
            guard let position = Int64(header.trimmingCharacters(in: .whitespaces)), position >= 0 else {
                throw DomainError(.badRequest, "Last-Event-ID must be the id of an event this stream sent (a chain position).",
                                  fields: [FieldProblem("Last-Event-ID", "must be a whole number")])
            }
            after = position
        } else if let position = query.lastEventId {
            after = max(position, 0)
        } else {
            after = try await audit.reader.lastPosition()
        }
        ResponseAdjustments.setHeader(.cacheControl, "no-cache")
        return .ok(.init(body: .textEventStream(HTTPBody(AuditStreamBody(log: audit.reader, filter: filter, after: after), length: .unknown,
                                                             iterationBehavior: .single))))
    }

    public func verifyAudit(_ input: Operations.VerifyAudit.Input) async throws -> Operations.VerifyAudit.Output {
        let context = try RequestInfo.context()
        let result = try await audit.verify(from: input.query.from, to: input.query.to, context: context)
        for key in ["firstBroken", "missingPosition", "reason", "anchorPosition"] { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(.init(
            ok: result.ok, checked: result.checked,
            firstBroken: try result.firstBroken.map { .init(additionalProperties: try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data($0.json.canonicalText.utf8))) },
            missingPosition: result.missingPosition, reason: result.reason, anchorPosition: result.anchorPosition, unsealed: result.unsealed))))
    }

    // MARK: health

    static func counts(_ counts: HealthCounts) -> Components.Schemas.HealthCounts {
        .init(status: Components.Schemas.HealthStatus(rawValue: counts.worst.rawValue) ?? .unknown, healthy: counts.healthy,
              degraded: counts.degraded, unhealthy: counts.unhealthy, unknown: counts.unknown)
    }

    static func wire(_ record: BindingHealth) -> Components.Schemas.BindingHealth {
        .init(team: record.team, identity: record.identity, binding: record.binding, cluster: record.cluster,
              status: Components.Schemas.HealthStatus(rawValue: record.status.rawValue) ?? .unknown,
              findings: record.findings.map {
                  .init(code: $0.code, severity: Components.Schemas.Finding.SeverityPayload(rawValue: $0.severity.rawValue) ?? .unknown,
                        message: $0.message, pod: $0.pod, namespace: $0.namespace, hint: $0.hint, observedAt: $0.observedAt)
              },
              observedAt: record.observedAt, changedAt: record.changedAt)
    }

    public func getHealthSummary(_ input: Operations.GetHealthSummary.Input) async throws -> Operations.GetHealthSummary.Output {
        let context = try RequestInfo.context()
        let summary = try await health.summary(context: context)
        return .ok(.init(body: .json(.init(
            totals: Self.counts(summary.totals), teams: .init(additionalProperties: summary.teams.mapValues(Self.counts)),
            clusters: .init(additionalProperties: summary.clusters.mapValues(Self.counts)),
            identities: .init(additionalProperties: summary.identities.mapValues(Self.counts))))))
    }

    public func getBindingHealth(_ input: Operations.GetBindingHealth.Input) async throws -> Operations.GetBindingHealth.Output {
        let context = try RequestInfo.context()
        let record = try await health.get(team: input.path.team, identity: input.path.identity, binding: input.path.binding, context: context)
        for key in ["observedAt", "changedAt"] { ResponseAdjustments.ensureKey(key) }
        return .ok(.init(body: .json(Self.wire(record))))
    }

    public func checkBindingHealth(_ input: Operations.CheckBindingHealth.Input) async throws -> Operations.CheckBindingHealth.Output {
        let context = try RequestInfo.context()
        let record = try await health.check(team: input.path.team, identity: input.path.identity, binding: input.path.binding, context: context)
        for key in ["observedAt", "changedAt"] { ResponseAdjustments.ensureKey(key) }
        ResponseAdjustments.setHeader(.location, "/v1/teams/\(input.path.team)/identities/\(input.path.identity)/bindings/\(input.path.binding)/health")
        return .accepted(.init(body: .json(Self.wire(record))))
    }
}
