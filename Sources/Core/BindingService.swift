import Foundation

/// What a team asks for when it binds an identity.
public struct NewBinding: Sendable, Equatable {
    public var name: String
    public var cluster: String
    /// Default: the cluster's broker namespace.
    public var namespace: String?
    /// Default: `<team>-<binding>`.
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
    let store: any BindingStore
    let identities: any IdentityStore
    let clusters: any ClusterStore
    let teams: any TeamStore
    let authorizer: Authorizer

    /// Creates the service.
    public init(store: any BindingStore, identities: any IdentityStore, clusters: any ClusterStore, teams: any TeamStore,
                audit: any AuditStore) {
        self.store = store
        self.identities = identities
        self.clusters = clusters
        self.teams = teams
        self.authorizer = Authorizer(audit: audit)
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
        guard let cluster = try await clusters.cluster(named: request.cluster) else {
            throw DomainError(.validation, "There is no cluster named '\(request.cluster)'.",
                              fields: [FieldProblem("cluster", "there is no cluster named '\(request.cluster)'; GET /v1/clusters lists them")])
        }
        let namespace = request.namespace ?? cluster.brokerNamespace
        try Self.checkPolicy(owner.policy, cluster: cluster, namespace: namespace)
        if parent.state == .deleting {
            throw DomainError(.conflict, "Identity '\(identity)' is being deleted; it cannot be bound.")
        }
        let binding = Binding(
            team: team, identity: identity, name: request.name, cluster: cluster.name, namespace: namespace,
            selector: request.selector ?? KubeNames.defaultSelector(team: team, binding: request.name),
            message: parent.state == .ready ? "waiting for a worker to apply it" : "waiting for identity '\(identity)' to be ready")
        return try await store.insertBinding(
            binding, job: BindingJobs.applying(binding, requestId: context.requestId),
            audit: context.audit("binding.created", team: team, resourceType: "binding", resourceName: "\(identity)/\(request.name)",
                                 details: ["cluster": .string(cluster.name), "namespace": .string(namespace), "selector": .string(binding.selector)]))
    }

    /// One binding.
    public func get(team: String, identity: String, name: String, context: CallContext) async throws -> Binding {
        try await authorizer.requireRead(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        guard let binding = try await store.binding(team: team, identity: identity, name: name) else {
            throw DomainError.notFound("binding", name)
        }
        return binding
    }

    /// An identity's bindings by name.
    public func list(team: String, identity: String, page: PageRequest, context: CallContext) async throws -> Page<Binding> {
        try await authorizer.requireRead(context, team: team, resourceType: "binding", resourceName: nil)
        _ = try await requireIdentity(team: team, name: identity)
        let fetched = try await store.bindings(team: team, identity: identity, page: PageRequest(limit: page.limit + 1, after: page.after))
        return Page(fetched: fetched, limit: page.limit) { [$0.name] }
    }

    /// Changes the selector (the cluster and namespace cannot change: bind again instead).
    public func patch(team: String, identity: String, name: String, selector: String?, cluster: String?, namespace: String?,
                      ifMatch: Int64?, context: CallContext) async throws -> (Binding, Bool) {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        for _ in 0..<5 {
            guard let current = try await store.binding(team: team, identity: identity, name: name) else {
                throw DomainError.notFound("binding", name)
            }
            if let ifMatch, ifMatch != current.generation { throw Self.stale(name) }
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
            updated.message = "waiting for a worker to apply generation \(current.generation + 1)"
            var next = updated
            next.generation += 1
            let stored = try await store.replaceBinding(
                updated, ifGeneration: current.generation, job: BindingJobs.applying(next, requestId: context.requestId)
            ) { stored in
                context.audit("binding.updated", team: team, resourceType: "binding", resourceName: "\(identity)/\(name)",
                              before: .encoding(current), after: .encoding(stored))
            }
            if let stored { return (stored, true) }
            if ifMatch != nil { throw Self.stale(name) }
        }
        throw DomainError(.conflict, "Binding '\(name)' is changing too often to update; try again.")
    }

    /// Marks the binding `deleting` and queues the job that removes its objects.
    public func delete(team: String, identity: String, name: String, ifMatch: Int64?, context: CallContext) async throws -> Binding {
        try await authorizer.requireManage(context, team: team, resourceType: "binding", resourceName: "\(identity)/\(name)")
        for _ in 0..<5 {
            guard let current = try await store.binding(team: team, identity: identity, name: name) else {
                throw DomainError.notFound("binding", name)
            }
            if let ifMatch, ifMatch != current.generation { throw Self.stale(name) }
            if current.state == .deleting { return current }
            let stored = try await store.markBindingDeleting(
                current, ifGeneration: current.generation, job: BindingJobs.deleting(current, requestId: context.requestId)
            ) { stored in
                context.audit("binding.deleted", team: team, resourceType: "binding", resourceName: "\(identity)/\(name)",
                              before: .encoding(current), after: .encoding(stored))
            }
            if let stored { return stored }
            if ifMatch != nil { throw Self.stale(name) }
        }
        throw DomainError(.conflict, "Binding '\(name)' is changing too often to delete; try again.")
    }

    /// The objects podid applies for an identity's bindings, as multi-document YAML with a pod-label
    /// snippet; optionally only those of one cluster and namespace.
    public func manifests(team: String, identity: String, cluster: String?, namespace: String?, context: CallContext) async throws -> String {
        try await authorizer.requireRead(context, team: team, resourceType: "identity", resourceName: identity)
        let parent = try await requireIdentity(team: team, name: identity)
        guard let clientId = parent.clientId, let resourceId = parent.resourceId else {
            throw DomainError(.conflict, "Identity '\(identity)' is \(parent.state.rawValue) and has no clientId yet; the AzureIdentity needs it. Export the manifests once the identity is ready.")
        }
        let bindings = try await store.bindings(team: team, identity: identity).filter {
            $0.state != .deleting && (cluster == nil || $0.cluster == cluster) && (namespace == nil || $0.namespace == namespace)
        }
        return Manifests.yaml(identity: parent, resourceId: resourceId, clientId: clientId, bindings: bindings)
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

    func requireTeam(_ name: String) async throws -> Team {
        guard let team = try await teams.team(named: name) else { throw DomainError.notFound("team", name) }
        return team
    }

    func requireIdentity(team: String, name: String) async throws -> Identity {
        guard let identity = try await identities.identity(team: team, name: name) else { throw DomainError.notFound("identity", name) }
        return identity
    }

    static func stale(_ name: String) -> DomainError {
        DomainError(.preconditionFailed, "Binding '\(name)' has changed since the ETag in If-Match; read it again and retry.")
    }
}

/// The manifests export: exactly the objects podid applies, and where the pod label goes.
public enum Manifests {
    /// Multi-document YAML: per cluster and namespace the AzureIdentity, then each binding's
    /// AzureIdentityBinding, then a commented Deployment snippet.
    public static func yaml(identity: Identity, resourceId: String, clientId: String, bindings: [Binding]) -> String {
        var documents: [String] = []
        var seen = Set<String>()
        let sorted = bindings.sorted { ($0.cluster, $0.namespace, $0.name) < ($1.cluster, $1.namespace, $1.name) }
        for binding in sorted {
            let place = "\(binding.cluster)/\(binding.namespace)"
            if seen.insert(place).inserted {
                documents.append("# cluster \(binding.cluster): the AzureIdentity of \(identity.team)/\(identity.name)\n"
                    + YAMLText.emit(binding.azureIdentityObject(resourceID: resourceId, clientID: clientId).json))
            }
            documents.append("# cluster \(binding.cluster): binding \(binding.name); pods labelled aadpodidbinding=\(binding.selector) receive the identity\n"
                + YAMLText.emit(binding.bindingObject.json))
        }
        var text = "# podid manifests for identity \(identity.team)/\(identity.name) (clientId \(clientId))\n"
        if documents.isEmpty {
            text += "# It has no bindings yet: POST /v1/teams/\(identity.team)/identities/\(identity.name)/bindings creates one.\n"
        } else {
            text += "---\n" + documents.joined(separator: "---\n")
        }
        let selectors = Array(Set(sorted.map(\.selector))).sorted()
        let selector = selectors.first ?? KubeNames.defaultSelector(team: identity.team, binding: "<binding>")
        text += """
            # Where the label goes: on the pod template of your Deployment (not on the Deployment itself).
            #
            # apiVersion: apps/v1
            # kind: Deployment
            # metadata:
            #   name: my-app
            # spec:
            #   template:
            #     metadata:
            #       labels:
            #         aadpodidbinding: \(selector)

            """
        if selectors.count > 1 {
            text += "# This identity's bindings use several selectors: \(selectors.joined(separator: ", ")).\n"
        }
        return text
    }
}

/// A small YAML writer for JSON values: block style, keys in a stable order (`apiVersion`, `kind`,
/// `metadata`, `spec` first), strings double-quoted (valid YAML, no type surprises such as `no` or `0755`).
public enum YAMLText {
    /// The value as a YAML document body.
    public static func emit(_ value: JSONValue) -> String {
        var out = ""
        write(value, indent: 0, into: &out, inline: false)
        return out
    }

    static let leading = ["apiVersion", "kind", "metadata", "name", "namespace", "labels", "spec"]

    static func orderedKeys(_ object: [String: JSONValue]) -> [String] {
        let first = leading.filter { object[$0] != nil }
        return first + object.keys.filter { !leading.contains($0) }.sorted()
    }

    static func scalar(_ value: JSONValue) -> String? {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number):
            return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .string(let text): return JSONValue.string(text).canonicalText
        case .array(let items) where items.isEmpty: return "[]"
        case .object(let members) where members.isEmpty: return "{}"
        default: return nil
        }
    }

    static func write(_ value: JSONValue, indent: Int, into out: inout String, inline: Bool) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case .object(let members) where !members.isEmpty:
            for (index, key) in orderedKeys(members).enumerated() {
                let member = members[key] ?? .null
                let prefix = inline && index == 0 ? "" : pad
                let quotedKey = JSONValue.string(key).canonicalText == "\"\(key)\"" && key.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) })
                    ? key : JSONValue.string(key).canonicalText
                if let text = scalar(member) {
                    out += "\(prefix)\(quotedKey): \(text)\n"
                } else {
                    out += "\(prefix)\(quotedKey):\n"
                    write(member, indent: indent + 2, into: &out, inline: false)
                }
            }
        case .array(let items) where !items.isEmpty:
            for item in items {
                if let text = scalar(item) {
                    out += "\(pad)- \(text)\n"
                } else {
                    out += "\(pad)- "
                    write(item, indent: indent + 2, into: &out, inline: true)
                }
            }
        default:
            out += "\(pad)\(scalar(value) ?? "null")\n"
        }
    }
}
