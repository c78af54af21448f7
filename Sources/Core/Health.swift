import Foundation

/// A binding's health, from best to worst (`unknown`: podid could not look).
public enum HealthStatus: String, Sendable, Codable, CaseIterable, Comparable {
    case healthy
    case degraded
    case unhealthy
    case unknown

    var rank: Int {
        switch self {
        case .healthy: 0
        case .degraded: 1
        case .unknown: 2
        case .unhealthy: 3
        }
    }

    public static func < (lhs: HealthStatus, rhs: HealthStatus) -> Bool { lhs.rank < rhs.rank }

    /// The worst of several (healthy when there are none).
    public static func worst(_ statuses: some Sequence<HealthStatus>) -> HealthStatus {
        statuses.max() ?? .healthy
    }
}

/// How much a finding matters.
public enum FindingSeverity: String, Sendable, Codable {
    /// Worth knowing; the binding stays healthy.
    case info
    /// Something will go wrong or already half does: degraded.
    case warning
    /// Pods do not get their identity, or get one they should not: unhealthy.
    case critical
    /// podid could not observe: unknown.
    case unknown
}

/// One thing a health check observed, with the fix.
public struct Finding: Sendable, Equatable, Codable, Hashable {
    public var code: String
    public var severity: FindingSeverity
    public var message: String
    public var pod: String?
    public var namespace: String?
    /// What to do about it.
    public var hint: String
    public var observedAt: Date

    /// Creates a finding.
    public init(code: String, severity: FindingSeverity, message: String, pod: String? = nil, namespace: String? = nil, hint: String,
                observedAt: Date) {
        self.code = code
        self.severity = severity
        self.message = message
        self.pod = pod
        self.namespace = namespace
        self.hint = hint
        self.observedAt = observedAt
    }
}

/// What one sweep observed in a cluster: one pass of lists.
public struct ClusterObservation: Sendable {
    /// Nil when the cluster answered; otherwise why not.
    public var unreachable: String?
    public var crdsServed: Bool
    /// Pods carrying `aadpodidbinding`.
    public var labelledPods: [PodObject]
    public var assignments: [AzureAssignedIdentityObject]
    public var azureIdentities: [AzureIdentityObject]
    public var bindings: [AzureIdentityBindingObject]
    /// Pods in the broker namespace labelled `component=mic` / `component=nmi`.
    public var micPods: [PodObject]
    public var nmiPods: [PodObject]
    public var observedAt: Date

    /// Creates an observation, indexing it once so that evaluating a binding costs only its own
    /// pods and assignments (a sweep is O(pods + assignments + bindings)).
    public init(unreachable: String? = nil, crdsServed: Bool = true, labelledPods: [PodObject] = [], assignments: [AzureAssignedIdentityObject] = [],
                azureIdentities: [AzureIdentityObject] = [], bindings: [AzureIdentityBindingObject] = [], micPods: [PodObject] = [],
                nmiPods: [PodObject] = [], observedAt: Date = Date()) {
        self.unreachable = unreachable
        self.crdsServed = crdsServed
        self.labelledPods = labelledPods
        self.assignments = assignments
        self.azureIdentities = azureIdentities
        self.bindings = bindings
        self.micPods = micPods
        self.nmiPods = nmiPods
        self.observedAt = observedAt
        podsBySelector = Dictionary(grouping: labelledPods) { $0.selector ?? "" }
        podKeys = Set(labelledPods.map { "\($0.namespace)/\($0.name)" })
        assignmentsByIdentity = Dictionary(grouping: assignments) { "\($0.identityNamespace)/\($0.identityName)" }
        assignmentsByPod = Dictionary(grouping: assignments.filter { $0.deletionTimestamp == nil }) { "\($0.podNamespace)/\($0.pod)" }
        azureIdentitiesByName = Dictionary(grouping: azureIdentities, by: \.name)
        bindingsByKey = Dictionary(bindings.map { ("\($0.namespace)/\($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        let selectors = Set(bindings.map(\.selector))
        unmatchedPods = labelledPods.filter { !selectors.contains($0.selector ?? "") }
        nmiByNode = Dictionary(nmiPods.compactMap { pod in pod.nodeName.map { ($0, pod) } }, uniquingKeysWith: { a, _ in a })
    }

    let podsBySelector: [String: [PodObject]]
    let podKeys: Set<String>
    let assignmentsByIdentity: [String: [AzureAssignedIdentityObject]]
    let assignmentsByPod: [String: [AzureAssignedIdentityObject]]
    let azureIdentitiesByName: [String: [AzureIdentityObject]]
    let bindingsByKey: [String: AzureIdentityBindingObject]
    /// Labelled pods whose label no AzureIdentityBinding uses.
    let unmatchedPods: [PodObject]
    let nmiByNode: [String: PodObject]
}

/// What Azure says about a binding's identity.
public struct AzureIdentityObservation: Sendable, Equatable {
    /// Nil when Azure could not be asked (then nothing is concluded).
    public var exists: Bool?
    public var clientId: String?
    /// Whether the cluster's kubelet identity has Managed Identity Operator on the identity (nil:
    /// no kubelet identity configured, or not checked).
    public var kubeletIsOperator: Bool?
    /// Recorded role assignments that no longer exist in Azure.
    public var missingAssignments: [RecordedAssignment]

    /// Creates an observation.
    public init(exists: Bool?, clientId: String? = nil, kubeletIsOperator: Bool? = nil, missingAssignments: [RecordedAssignment] = []) {
        self.exists = exists
        self.clientId = clientId
        self.kubeletIsOperator = kubeletIsOperator
        self.missingAssignments = missingAssignments
    }
}

/// The assignment health evaluator: a pure function from what a sweep observed, and what podid
/// wants, to findings. It implements the failure catalogue of aad-pod-identity (reference §3.8)
/// as far as the Kubernetes API and ARM can observe it.
public enum HealthEvaluator {
    /// How long an assignment may stay `Created` before it counts as stuck.
    public static let stuckAfter: TimeInterval = 120

    /// Findings for one binding.
    public static func evaluate(binding: Binding, identity: Identity, cluster: Cluster, policy: TeamPolicy, observed: ClusterObservation,
                                azure: AzureIdentityObservation, stuckAfter: TimeInterval = stuckAfter) -> [Finding] {
        let now = observed.observedAt
        var findings: [Finding] = []
        func add(_ code: FindingCode, _ severity: FindingSeverity, _ message: String, pod: String? = nil, namespace: String? = nil, hint: String) {
            findings.append(Finding(code: code.rawValue, severity: severity, message: message, pod: pod, namespace: namespace, hint: hint, observedAt: now))
        }
        // What the team's policy no longer allows, known without asking the cluster.
        let outside = PolicyReview.review(identity, policy: policy) + [PolicyReview.review(binding, cluster: cluster, policy: policy)].compactMap { $0 }
        for item in outside {
            add(.outsidePolicy, .warning, "Outside the team's current policy: \(item.message).",
                hint: "An admin widens the policy again, or removes what is outside it: POST /v1/teams/\(binding.team)/policy/enforce.")
        }
        if let reason = observed.unreachable {
            add(.clusterUnreachable, .unknown, "podid cannot reach cluster \(cluster.name): \(reason)",
                hint: "Check the cluster's connection (GET /v1/clusters/\(cluster.name) shows the last connection check).")
            return findings
        }
        if !observed.crdsServed {
            add(.crdsNotServed, .critical, "The aad-pod-identity CRDs are not served in cluster \(cluster.name).",
                hint: "Install aad-pod-identity (its chart installs the CRDs) into \(cluster.brokerNamespace).")
            return findings
        }
        guard binding.state == .ready || binding.observedGeneration > 0 else {
            add(.bindingNotApplied, .unknown, "The binding is \(binding.state.rawValue) and has not been applied yet\(binding.lastError.map { ": \($0)" } ?? ".")",
                hint: "Follow the binding's job (GET /v1/jobs?resource=\(binding.path)).")
            return findings
        }

        // MIC: without a running MIC nothing gets assigned.
        if !observed.micPods.contains(where: { $0.phase == "Running" || $0.phase.isEmpty }) {
            add(.micNotRunning, .critical, "No MIC pod runs in \(cluster.brokerNamespace): new pods get no identity assignment.",
                namespace: cluster.brokerNamespace,
                hint: "Check the MIC deployment: kubectl -n \(cluster.brokerNamespace) get pods -l component=mic, and its logs.")
        }

        // podid's own objects, as applied.
        let aiName = binding.azureIdentityObjectName
        let aibName = binding.bindingObjectName
        let ai = observed.azureIdentitiesByName[aiName]?.first { $0.namespace == binding.namespace }
        let aib = observed.bindingsByKey["\(binding.namespace)/\(aibName)"]
        if let ai {
            if !binding.owns(ai.labels, includingBinding: false) {
                add(.azureIdentityNotPodids, .critical, "AzureIdentity \(binding.namespace)/\(aiName) is not podid's (its labels do not name this identity).",
                    namespace: binding.namespace, hint: "Remove or rename that object; podid never changes objects it does not own.")
            } else if ai.clientID != (identity.clientId ?? ai.clientID) || ai.resourceID != (identity.resourceId ?? ai.resourceID) || ai.type != 0 {
                add(.azureIdentityChanged, .critical, "AzureIdentity \(binding.namespace)/\(aiName) does not match the identity (clientID \(ai.clientID)).",
                    namespace: binding.namespace, hint: "podid re-applies it in this sweep; if it changes again, find who edits it.")
            }
            if !ai.legacyKeys.isEmpty {
                add(.legacyKeys, .critical, "AzureIdentity \(binding.namespace)/\(aiName) has capitalised keys that aad-pod-identity ≥ 1.6 ignores: \(ai.legacyKeys.joined(separator: ", ")).",
                    namespace: binding.namespace, hint: "Use the lower-camel keys (resourceID, clientID); podid writes only those.")
            }
        } else {
            add(.azureIdentityMissing, .critical, "AzureIdentity \(binding.namespace)/\(aiName) is missing.", namespace: binding.namespace,
                hint: "podid re-applies it in this sweep; if it disappears again, find who deletes it.")
        }
        if let aib {
            if !binding.owns(aib.labels, includingBinding: true) {
                add(.azureIdentityBindingNotPodids, .critical, "AzureIdentityBinding \(binding.namespace)/\(aibName) is not podid's.",
                    namespace: binding.namespace, hint: "Remove or rename that object; podid never changes objects it does not own.")
            } else if aib.selector != binding.selector || aib.azureIdentity != aiName {
                add(.azureIdentityBindingChanged, .critical, "AzureIdentityBinding \(binding.namespace)/\(aibName) does not match the binding (selector \(aib.selector)).",
                    namespace: binding.namespace, hint: "podid re-applies it in this sweep; if it changes again, find who edits it.")
            }
            if !aib.legacyKeys.isEmpty {
                add(.legacyKeys, .critical, "AzureIdentityBinding \(binding.namespace)/\(aibName) has capitalised keys that aad-pod-identity ≥ 1.6 ignores: \(aib.legacyKeys.joined(separator: ", ")).",
                    namespace: binding.namespace, hint: "Use the lower-camel keys (azureIdentity, selector); podid writes only those.")
            }
        } else {
            add(.azureIdentityBindingMissing, .critical, "AzureIdentityBinding \(binding.namespace)/\(aibName) is missing.", namespace: binding.namespace,
                hint: "podid re-applies it in this sweep; if it disappears again, find who deletes it.")
        }
        // The same AzureIdentity name in two namespaces (cluster mode): MIC may pick the wrong one.
        if cluster.micMode == .cluster {
            let namesakes = (observed.azureIdentitiesByName[aiName] ?? []).filter { $0.namespace != binding.namespace }
            if !namesakes.isEmpty {
                add(.duplicateAzureIdentityName, .warning,
                    "AzureIdentity \(aiName) also exists in \(namesakes.map(\.namespace).sorted().joined(separator: ", ")); in cluster mode MIC may assign the wrong one.",
                    hint: "Rename or remove the other AzureIdentity; names must be unique across namespaces in cluster mode.")
            }
        }

        // Azure: the identity itself.
        if azure.exists == false {
            add(.identityMissingInAzure, .critical, "The Azure identity \(identity.resourceId ?? identity.azureRef.resourceId) does not exist any more.",
                hint: "It was deleted outside podid. Pods cannot get tokens for it; delete this identity in podid and create it again (its clientId will change).")
        } else if let azureClient = azure.clientId, let recorded = identity.clientId, azureClient.lowercased() != recorded.lowercased() {
            add(.clientIdMismatch, .critical, "The Azure identity's clientId is now \(azureClient), not \(recorded): it was deleted and recreated outside podid.",
                hint: "Consumers configured with the old clientId fail. Adopt the new identity (an admin POSTs it with resourceId) or recreate it in podid.")
        }
        for missing in azure.missingAssignments {
            add(.roleAssignmentMissing, .critical,
                "The role assignment for \(missing.role) on \(missing.scope) was removed outside podid: pods get tokens but no access there.",
                hint: "Change the identity (PATCH it, or POST /v1/jobs/{id}/retry on its last job): its job creates the assignment again. Find who removed it.")
        }
        if azure.kubeletIsOperator == false {
            add(.kubeletLacksOperator, .critical, "The cluster's kubelet identity lacks Managed Identity Operator on the identity: MIC cannot attach it to the nodes.",
                hint: "az role assignment create --role 'Managed Identity Operator' --assignee <kubelet objectId> --scope \(identity.resourceId ?? identity.azureRef.resourceId)")
        }

        // Pods: who carries the selector, and what MIC made of them.
        let matching = observed.podsBySelector[binding.selector] ?? []
        let inScope = cluster.micMode == .namespaced ? matching.filter { $0.namespace == binding.namespace } : matching
        if cluster.micMode == .namespaced {
            for pod in matching where pod.namespace != binding.namespace {
                add(.podOutsideBindingNamespace, .warning,
                    "Pod \(pod.namespace)/\(pod.name) carries aadpodidbinding=\(binding.selector) but the cluster runs MIC namespaced and the binding is in \(binding.namespace): it gets no identity.",
                    pod: pod.name, namespace: pod.namespace, hint: "Bind the identity in \(pod.namespace), or run the pod in \(binding.namespace).")
            }
        } else {
            for pod in matching where !policy.namespaces.contains(pod.namespace) && pod.namespace != cluster.brokerNamespace {
                add(.foreignNamespacePod, .critical,
                    "Pod \(pod.namespace)/\(pod.name) carries team \(binding.team)'s selector \(binding.selector) in a namespace outside the team's policy, and in cluster mode it receives the identity.",
                    pod: pod.name, namespace: pod.namespace,
                    hint: "Remove the label from that pod, or (if it is the team's) ask an admin to add \(pod.namespace) to the team's policy.namespaces.")
            }
        }
        // A label that matches no binding at all but nearly this one is a typo on a pod meant for
        // it. Only pods where the team's pods run count: a pod in another team's namespace is none
        // of this team's business, and naming it would tell this team about the other's workloads.
        for pod in observed.unmatchedPods {
            guard let label = pod.selector, label != binding.selector,
                  editDistance(label, binding.selector, limit: 2) <= 2,
                  pod.namespace == binding.namespace || (cluster.micMode == .cluster && policy.namespaces.contains(pod.namespace))
            else { continue }
            add(.unmatchedPodLabel, .critical,
                "Pod \(pod.namespace)/\(pod.name) carries aadpodidbinding=\(label), which no binding uses; it gets no identity. Did you mean \(binding.selector)?",
                pod: pod.name, namespace: pod.namespace, hint: "Set the label to aadpodidbinding: \(binding.selector) in the workload's pod template.")
        }
        if inScope.isEmpty {
            add(.noPodsWithSelector, .warning, "No pod carries aadpodidbinding=\(binding.selector)\(cluster.micMode == .namespaced ? " in \(binding.namespace)" : "").",
                hint: "Add the label aadpodidbinding: \(binding.selector) to the pod template (spec.template.metadata.labels) of the workload, and check it for typos.")
        }
        let mine = observed.assignmentsByIdentity["\(binding.namespace)/\(aiName)"] ?? []
        let podKeys = observed.podKeys
        let nmiByNode = observed.nmiByNode
        for pod in inScope {
            guard let node = pod.nodeName else { continue }  // not scheduled yet: MIC waits too
            let assignment = mine.first { $0.pod == pod.name && $0.podNamespace == pod.namespace }
            if let assignment {
                if assignment.status == "Created", let created = assignment.creationTimestamp.flatMap(Timestamp.parse),
                   now.timeIntervalSince(created) > stuckAfter {
                    add(.assignmentStuckCreated, .critical,
                        "The assignment of pod \(pod.namespace)/\(pod.name) has been Created for \(Int(now.timeIntervalSince(created))) s without becoming Assigned.",
                        pod: pod.name, namespace: pod.namespace,
                        hint: "MIC cannot attach the identity to the node: check MIC's logs for LinkedAuthorizationFailed (the kubelet identity needs Managed Identity Operator on the identity) or throttling.")
                }
            } else if !observed.micPods.isEmpty {
                add(.podWithoutAssignment, .critical, "Pod \(pod.namespace)/\(pod.name) carries the selector but has no AzureAssignedIdentity for \(aiName).",
                    pod: pod.name, namespace: pod.namespace,
                    hint: "MIC has not matched it: check MIC's logs; with a fresh pod, wait for the next MIC sync.")
            }
            if let nmi = nmiByNode[node] {
                if !nmi.ready {
                    add(.nmiNotReady, .critical, "NMI on node \(node) is not ready: pod \(pod.namespace)/\(pod.name) cannot get tokens.",
                        pod: pod.name, namespace: pod.namespace, hint: "Check the NMI DaemonSet pod \(nmi.name) (kubectl -n \(cluster.brokerNamespace) describe pod \(nmi.name)).")
                }
            } else {
                add(.nmiNotReady, .critical, "No NMI pod runs on node \(node): pod \(pod.namespace)/\(pod.name) cannot get tokens.",
                    pod: pod.name, namespace: pod.namespace, hint: "Check the NMI DaemonSet in \(cluster.brokerNamespace) (tolerations, node selector).")
            }
            let all = observed.assignmentsByPod["\(pod.namespace)/\(pod.name)"] ?? []
            if Set(all.map(\.identityName)).count > 1 {
                add(.multipleIdentities, .info,
                    "Pod \(pod.namespace)/\(pod.name) has \(Set(all.map(\.identityName)).count) identities; token requests without client_id get any one of them.",
                    pod: pod.name, namespace: pod.namespace, hint: "Pass client_id (or mi_res_id) in every token request from this pod.")
            }
        }
        for assignment in mine where !podKeys.contains("\(assignment.podNamespace)/\(assignment.pod)") {
            add(.assignmentForMissingPod, .warning, "AzureAssignedIdentity \(assignment.namespace)/\(assignment.name) is for pod \(assignment.podNamespace)/\(assignment.pod), which is gone (or no longer labelled).",
                pod: assignment.pod, namespace: assignment.podNamespace,
                hint: observed.micPods.isEmpty ? "MIC is not running to clean it up: start MIC." : "MIC removes it on its next sync; if it stays, check MIC's logs.")
        }
        return findings
    }

    /// The Levenshtein distance of two short strings, or `limit + 1` once it is surely larger.
    public static func editDistance(_ a: String, _ b: String, limit: Int) -> Int {
        let a = Array(a), b = Array(b)
        if abs(a.count - b.count) > limit { return limit + 1 }
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            if current.min() ?? 0 > limit { return limit + 1 }
            previous = current
        }
        return a.isEmpty ? b.count : b.isEmpty ? a.count : previous[b.count]
    }

    /// The status findings add up to.
    public static func status(_ findings: [Finding]) -> HealthStatus {
        if findings.contains(where: { $0.severity == .critical }) { return .unhealthy }
        if findings.contains(where: { $0.severity == .unknown }) { return .unknown }
        if findings.contains(where: { $0.severity == .warning }) { return .degraded }
        return .healthy
    }
}

/// A binding's latest health.
public struct BindingHealth: Sendable, Equatable {
    public var team: String
    public var identity: String
    public var binding: String
    public var cluster: String
    public var status: HealthStatus
    public var findings: [Finding]
    /// When the last sweep looked (nil: never).
    public var observedAt: Date?
    /// When the status last changed.
    public var changedAt: Date?

    /// Creates a health record.
    public init(team: String, identity: String, binding: String, cluster: String, status: HealthStatus, findings: [Finding],
                observedAt: Date?, changedAt: Date?) {
        self.team = team
        self.identity = identity
        self.binding = binding
        self.cluster = cluster
        self.status = status
        self.findings = findings
        self.observedAt = observedAt
        self.changedAt = changedAt
    }
}

/// Counts of bindings by status.
public struct HealthCounts: Sendable, Equatable {
    public var healthy = 0
    public var degraded = 0
    public var unhealthy = 0
    public var unknown = 0

    public init() {}

    /// Adds one binding's status.
    public mutating func add(_ status: HealthStatus) {
        switch status {
        case .healthy: healthy += 1
        case .degraded: degraded += 1
        case .unhealthy: unhealthy += 1
        case .unknown: unknown += 1
        }
    }

    /// The worst status present.
    public var worst: HealthStatus {
        unhealthy > 0 ? .unhealthy : unknown > 0 ? .unknown : degraded > 0 ? .degraded : .healthy
    }
}

/// A binding's health status changed.
public enum HealthChange {
    /// The `health.changed` audit event of a binding whose status went from `previous` to `record`'s.
    public static func event(_ record: BindingHealth, previous: HealthStatus?) -> AuditDraft {
        AuditDraft(actor: "podid", actorTeam: nil, action: "health.changed", outcome: record.status == .healthy ? .success : .failure,
                   team: record.team, resourceType: "binding", resourceName: "\(record.identity)/\(record.binding)", requestId: nil,
                   details: ["cluster": .string(record.cluster), "from": previous.map { .string($0.rawValue) } ?? .null,
                             "to": .string(record.status.rawValue), "codes": .array(Set(record.findings.map(\.code)).sorted().map(JSONValue.string))])
    }
}

/// Health in the system of record: the latest per binding, and its changes over time.
public protocol HealthStore: Sendable {
    /// Records a sweep's results in one transaction (bindings deleted meanwhile are skipped); for
    /// those whose status changed, also a history row and the `HealthChange.event`.
    func recordAll(_ results: [BindingHealth]) async throws
    /// The latest health of a binding.
    func health(team: String, identity: String, binding: String) async throws -> BindingHealth?
    /// The latest health of every binding (of one team when given).
    func allHealth(team: String?) async throws -> [BindingHealth]
    /// Deletes history rows older than `before`.
    func pruneHistory(before: Date) async throws -> Int
    /// Runs `body` while holding the sweep lock of `cluster` (false when another replica holds it).
    func withSweepLock(cluster: String, _ body: @Sendable () async throws -> Void) async throws -> Bool
}

/// Every finding code of the assignment health checks (docs/health.md describes each).
public enum FindingCode: String, Sendable, CaseIterable {
    case clusterUnreachable = "ClusterUnreachable"
    case crdsNotServed = "CRDsNotServed"
    case bindingNotApplied = "BindingNotApplied"
    case micNotRunning = "MICNotRunning"
    case azureIdentityMissing = "AzureIdentityMissing"
    case azureIdentityChanged = "AzureIdentityChanged"
    case azureIdentityNotPodids = "AzureIdentityNotPodids"
    case azureIdentityBindingMissing = "AzureIdentityBindingMissing"
    case azureIdentityBindingChanged = "AzureIdentityBindingChanged"
    case azureIdentityBindingNotPodids = "AzureIdentityBindingNotPodids"
    case legacyKeys = "LegacyKeys"
    case duplicateAzureIdentityName = "DuplicateAzureIdentityName"
    case identityMissingInAzure = "IdentityMissingInAzure"
    case clientIdMismatch = "ClientIdMismatch"
    case kubeletLacksOperator = "KubeletLacksOperator"
    case roleAssignmentMissing = "RoleAssignmentMissing"
    case podOutsideBindingNamespace = "PodOutsideBindingNamespace"
    case foreignNamespacePod = "ForeignNamespacePod"
    case unmatchedPodLabel = "UnmatchedPodLabel"
    case noPodsWithSelector = "NoPodsWithSelector"
    case assignmentStuckCreated = "AssignmentStuckCreated"
    case podWithoutAssignment = "PodWithoutAssignment"
    case nmiNotReady = "NMINotReady"
    case multipleIdentities = "MultipleIdentities"
    case assignmentForMissingPod = "AssignmentForMissingPod"
    case outsidePolicy = "OutsidePolicy"
}
