import Core
import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// One health sweep of a cluster: one pass of lists (labelled pods, AzureAssignedIdentities,
/// AzureIdentities, AzureIdentityBindings, the broker's MIC and NMI pods), one identity list per
/// resource group in Azure, then every binding of the cluster evaluated. Cost O(pods + assignments +
/// bindings), never a request per binding. podid's own objects that drifted are re-applied.
public struct HealthSweeper: Sendable {
    let database: any Database
    let health: any HealthStore
    let connector: any KubernetesConnector
    let azure: any AzureGateway
    let logger: Logger
    /// How long an assignment may stay `Created` before it counts as stuck.
    let stuckAfter: TimeInterval

    /// Managed Identity Operator, the role the kubelet identity needs on identities.
    public static let managedIdentityOperator = "f1a07417-d97a-45cb-824c-7a7467783830"

    /// Creates the sweeper.
    public init(database: any Database, health: any HealthStore, connector: any KubernetesConnector, azure: any AzureGateway, logger: Logger,
                stuckAfter: TimeInterval = HealthEvaluator.stuckAfter) {
        self.stuckAfter = stuckAfter
        self.database = database
        self.health = health
        self.connector = connector
        self.azure = azure
        self.logger = logger
    }

    /// Sweeps `name` unless another replica is sweeping it; false then.
    @discardableResult
    public func sweep(cluster name: String) async throws -> Bool {
        try await health.withSweepLock(cluster: name) {
            guard let cluster = try await database.clusters.get(name, lock: .none) else { return }
            try await sweep(cluster)
        }
    }

    func sweep(_ cluster: Cluster) async throws {
        let started = ContinuousClock.now
        let observed = await observe(cluster)
        let bound = try await database.bindings.list(cluster: cluster.name)
        // One query for the identities of every binding, one per team for the policies.
        let keys = Array(Set(bound.map { IdentityKey(team: $0.team, name: $0.identity) }))
        var identityCache: [String: Identity] = [:]
        for identity in try await database.identities.list(keys: keys) {
            identityCache["\(identity.team)/\(identity.name)"] = identity
        }
        var policyCache: [String: TeamPolicy] = [:]
        for team in Set(bound.map(\.team)) {
            if let found = try await database.teams.get(team, lock: .none) { policyCache[team] = found.policy }
        }
        let azureState = await observeAzure(Array(identityCache.values), cluster: cluster)
        var byStatus: [HealthStatus: Int] = [:]
        var byCode: [String: Int] = [:]
        var results: [BindingHealth] = []
        results.reserveCapacity(bound.count)
        for binding in bound {
            guard let identity = identityCache["\(binding.team)/\(binding.identity)"] else { continue }
            let findings = HealthEvaluator.evaluate(
                binding: binding, identity: identity, cluster: cluster, policy: policyCache[binding.team] ?? .empty, observed: observed,
                azure: azureState["\(binding.team)/\(binding.identity)"] ?? AzureIdentityObservation(exists: nil), stuckAfter: stuckAfter)
            let status = HealthEvaluator.status(findings)
            byStatus[status, default: 0] += 1
            for finding in findings { byCode[finding.code, default: 0] += 1 }
            if observed.unreachable == nil {
                await repairDrift(binding, identity: identity, cluster: cluster, findings: findings)
            }
            results.append(BindingHealth(team: binding.team, identity: binding.identity, binding: binding.name, cluster: cluster.name,
                                         status: status, findings: findings, observedAt: observed.observedAt, changedAt: nil))
        }
        try await health.recordAll(results)
        publish(cluster: cluster.name, byStatus: byStatus, byCode: byCode, assignments: observed.assignments)
        let elapsed = ContinuousClock.now - started
        let seconds = elapsed.inSeconds
        Gauge(label: "podid_health_sweep_seconds", dimensions: [("cluster", cluster.name)]).record(seconds)
        Counter(label: "podid_health_sweeps_total", dimensions: [("cluster", cluster.name)]).increment()
        Gauge(label: "podid_health_swept_pods", dimensions: [("cluster", cluster.name)]).record(observed.labelledPods.count)
    }

    /// One pass of lists; an unreachable cluster or missing CRDs is recorded, not thrown.
    public func observe(_ cluster: Cluster) async -> ClusterObservation {
        let now = Date()
        do {
            let gateway = try await connector.gateway(for: cluster)
            let served = try await gateway.servedPodIdentityKinds()
            guard KubeKind.podIdentityKinds.allSatisfy({ served.contains($0.plural) }) else {
                return ClusterObservation(crdsServed: false, observedAt: now)
            }
            // Each page becomes typed objects as it arrives: tens of thousands of pods are never
            // held as JSON at once.
            async let pods = gateway.list(.pod, namespace: nil, labelSelector: "aadpodidbinding", as: PodObject.init)
            async let assignments = gateway.list(.azureAssignedIdentity, namespace: nil, labelSelector: nil, as: AzureAssignedIdentityObject.init)
            async let azureIdentities = gateway.list(.azureIdentity, namespace: nil, labelSelector: nil, as: AzureIdentityObject.init)
            async let identityBindings = gateway.list(.azureIdentityBinding, namespace: nil, labelSelector: nil, as: AzureIdentityBindingObject.init)
            async let mic = gateway.list(.pod, namespace: cluster.brokerNamespace, labelSelector: "component=mic", as: PodObject.init)
            async let nmi = gateway.list(.pod, namespace: cluster.brokerNamespace, labelSelector: "component=nmi", as: PodObject.init)
            return ClusterObservation(
                labelledPods: try await pods, assignments: try await assignments, azureIdentities: try await azureIdentities,
                bindings: try await identityBindings, micPods: try await mic, nmiPods: try await nmi, observedAt: now)
        } catch {
            return ClusterObservation(unreachable: "\(error)", observedAt: now)
        }
    }

    /// What Azure says about the identities: one list per resource group, and (with a kubelet
    /// identity configured) its role assignments on each identity.
    func observeAzure(_ identities: [Identity], cluster: Cluster) async -> [String: AzureIdentityObservation] {
        var result: [String: AzureIdentityObservation] = [:]
        // Role assignments: one (paged) list per subscription whose identities have some recorded.
        var assignmentIds: [String: Set<String>] = [:]
        for subscription in Set(identities.filter { !$0.assignments.isEmpty }.map { $0.subscriptionId.lowercased() }) {
            do {
                assignmentIds[subscription] = Set(try await azure.roleAssignments(scope: "/subscriptions/\(subscription)").map { $0.id.lowercased() })
            } catch {
                logger.warning("listing role assignments for a health sweep failed", metadata: ["error": "\(error)", "subscription": "\(subscription)"])
            }
        }
        let groups = Dictionary(grouping: identities) { "\($0.subscriptionId.lowercased())/\($0.resourceGroup.lowercased())" }
        for (_, members) in groups {
            guard let first = members.first else { continue }
            let listed: [AzureIdentityInfo]
            do {
                listed = try await azure.identities(subscriptionId: first.subscriptionId, resourceGroup: first.resourceGroup)
            } catch {
                logger.warning("listing identities for a health sweep failed", metadata: ["error": "\(error)", "resourceGroup": "\(first.resourceGroup)"])
                continue
            }
            let byName = Dictionary(listed.map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
            for identity in members where identity.resourceId != nil {
                let found = byName[identity.name.lowercased()]
                var observation = AzureIdentityObservation(exists: found != nil, clientId: found?.clientId)
                if let existing = assignmentIds[identity.subscriptionId.lowercased()] {
                    observation.missingAssignments = identity.assignments.filter { !existing.contains($0.assignmentId.lowercased()) }
                }
                if found != nil, let kubelet = cluster.kubeletIdentity?.objectId, let resourceId = identity.resourceId {
                    if let assignments = try? await azure.roleAssignments(scope: resourceId, principalId: kubelet) {
                        observation.kubeletIsOperator = assignments.contains {
                            $0.roleDefinitionGuid == Self.managedIdentityOperator
                                && IdentityRules.scope(resourceId, isWithin: $0.scope.isEmpty ? RoleAssignmentNaming.scopeOf(assignmentId: $0.id) : $0.scope)
                        }
                    }
                }
                result["\(identity.team)/\(identity.name)"] = observation
            }
        }
        return result
    }

    /// Queues the re-application of podid's own objects that were deleted or changed (never one
    /// that is not podid's). The sweep read the binding before it looked at the cluster: it does
    /// not write to the cluster itself, the binding's repair job does, under the binding's serial
    /// key and from a fresh read, so that a binding deleted meanwhile is not brought back.
    func repairDrift(_ binding: Binding, identity: Identity, cluster: Cluster, findings: [Finding]) async {
        let drift: Set<String> = [FindingCode.azureIdentityMissing.rawValue, FindingCode.azureIdentityChanged.rawValue,
                                  FindingCode.azureIdentityBindingMissing.rawValue, FindingCode.azureIdentityBindingChanged.rawValue]
        guard binding.state == .ready, identity.clientId != nil, findings.contains(where: { drift.contains($0.code) }) else { return }
        do {
            try await database.transaction { tx in
                guard let current = try await tx.bindings.get(team: binding.team, identity: binding.identity, name: binding.name, lock: .share),
                      current.state == .ready
                else { return }
                _ = try await tx.jobs.enqueue(BindingRepair.job(current, requestId: nil))
            }
        } catch {
            logger.warning("queueing the repair of a drifted object failed", metadata: ["error": "\(error)", "binding": "\(binding.path)"])
        }
    }

    /// Gauges of the last sweep of a cluster.
    func publish(cluster: String, byStatus: [HealthStatus: Int], byCode: [String: Int], assignments: [AzureAssignedIdentityObject]) {
        for status in HealthStatus.allCases {
            Gauge(label: "podid_health_bindings", dimensions: [("cluster", cluster), ("status", status.rawValue)]).record(byStatus[status] ?? 0)
        }
        let states = Dictionary(grouping: assignments) { $0.status.isEmpty ? "Unknown" : $0.status }.mapValues(\.count)
        for state in ["Created", "Assigned", "Unassigned", "Unknown"] {
            Gauge(label: "podid_health_assignments", dimensions: [("cluster", cluster), ("state", state)]).record(states[state] ?? 0)
        }
        for code in FindingCode.allCases.map(\.rawValue) {
            Gauge(label: "podid_health_findings", dimensions: [("cluster", cluster), ("code", code)]).record(byCode[code] ?? 0)
        }
    }
}

/// Sweeps every cluster every `interval` (`PODID_HEALTH_INTERVAL`); old history goes with
/// `Housekeeping.retention`.
public enum HealthScheduler {
    /// The periodic service.
    public static func service(sweeper: HealthSweeper, database: any Database, interval: Duration, logger: Logger) -> Periodic {
        Periodic("health sweeps", every: interval, logger: logger) {
            var page = PageRequest(limit: 200, after: nil)
            while true {
                let batch = try await database.clusters.list(page: page)
                for cluster in batch where !Task.isShuttingDownGracefully {
                    do {
                        try await sweeper.sweep(cluster: cluster.name)
                    } catch {
                        logger.warning("health sweep failed", metadata: ["cluster": "\(cluster.name)", "error": "\(error)"])
                    }
                }
                guard batch.count == page.limit, let last = batch.last else { break }
                page = PageRequest(limit: 200, after: [last.name])
            }
        }
    }
}

/// `health.check`: a sweep of one cluster now (`POST …/bindings/{binding}/health`).
///
/// The caller waits for a result observed after its request. A sweep already running (the
/// periodic one, or another replica's) looked at the cluster before that, so the check waits for it
/// to finish and then sweeps itself, rather than counting the running sweep as its own.
public struct HealthCheckHandler: JobHandler {
    let sweeper: HealthSweeper
    /// How long the check waits for a running sweep before it gives up (recorded as skipped).
    let waitForRunningSweep: Duration
    let pollEvery: Duration

    /// Creates the handler.
    public init(sweeper: HealthSweeper, waitForRunningSweep: Duration = .seconds(120), pollEvery: Duration = .milliseconds(200)) {
        self.sweeper = sweeper
        self.waitForRunningSweep = waitForRunningSweep
        self.pollEvery = pollEvery
    }

    public var kinds: [any JobKind.Type] { [HealthCheck.self] }

    public func run(_ job: Job, progress: JobProgress) async throws {
        let cluster = try HealthCheck.payload(of: job).cluster
        let deadline = ContinuousClock.now + waitForRunningSweep
        var swept = try await sweeper.sweep(cluster: cluster)
        var waited = false
        while !swept, ContinuousClock.now < deadline {
            waited = true
            try await Task.sleep(for: pollEvery)
            swept = try await sweeper.sweep(cluster: cluster)
        }
        var details = ["cluster": cluster]
        if waited { details["waited"] = "a sweep of \(cluster) was running; this one ran after it" }
        if !swept { details["reason"] = "a sweep of \(cluster) ran for longer than \(waitForRunningSweep); the next periodic sweep reports" }
        await progress.record(JobStep(name: "health.sweep", outcome: swept ? "succeeded" : "skipped", details: details))
    }
}
