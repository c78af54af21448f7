import API
import Core
import Foundation
import OpenAPIRuntime
import Prometheus

/// The implementation of the OpenAPI contract: maps wire types to domain calls and back, one file
/// per tag of openapi.yaml (`APIHandler+<Tag>.swift`); the mapping itself is in `Wire*.swift`.
/// Errors are thrown as `DomainError` and rendered by `ProblemMiddleware`.
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

    /// One page of a list, the same for every list operation: the paging parameters checked (400
    /// naming them), the page fetched for the caller, its items mapped to the wire, and `nextCursor`
    /// (and each item's `itemNullKeys`) written as `null` when absent.
    func page<Item, WireItem>(
        limit: Int?, cursor: String?, itemNullKeys: [String] = [],
        _ fetch: (PageRequest, CallContext) async throws -> Page<Item>, map: (Item) throws -> WireItem
    ) async throws -> (items: [WireItem], nextCursor: String?) {
        let context = try RequestInfo.context()
        let result = try await fetch(try PageRequest(limit: limit, cursor: cursor), context)
        ResponseAdjustments.ensureKey("nextCursor")
        for key in itemNullKeys { ResponseAdjustments.ensureItemKey(key) }
        return (try result.items.map(map), result.nextCursor)
    }
}
