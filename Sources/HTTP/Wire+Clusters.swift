import API
import Core
import Foundation

/// Clusters and the bindings in them.
extension Wire {
    /// (`kubeletIdentity` and `status` are objects: absent rather than null when unset.)
    static let clusterNullKeys = ["apiServer", "nodeResourceGroup"]
    static let bindingNullKeys = ["message", "lastError", "health"]

    static func connection(_ connection: ClusterConnection) -> Components.Schemas.ClusterConnection {
        switch connection {
        case .inCluster: .init(mode: .inCluster)
        case .kubeconfig(let path, let context): .init(mode: .kubeconfig, path: path, context: context)
        case .token(let tokenFile, let caFile): .init(mode: .token, tokenFile: tokenFile, caFile: caFile)
        }
    }

    /// The wire connection as a domain value; 422 naming the field a mode needs.
    static func connection(_ wire: Components.Schemas.ClusterConnection) throws -> ClusterConnection {
        switch wire.mode {
        case .inCluster:
            return .inCluster
        case .kubeconfig:
            guard let path = wire.path else {
                throw DomainError(.validation, "A kubeconfig connection needs a path.", fields: [FieldProblem("connection.path", "is required for mode kubeconfig")])
            }
            return .kubeconfig(path: path, context: wire.context)
        case .token:
            guard let tokenFile = wire.tokenFile else {
                throw DomainError(.validation, "A token connection needs a token file.", fields: [FieldProblem("connection.tokenFile", "is required for mode token")])
            }
            return .token(tokenFile: tokenFile, caFile: wire.caFile)
        }
    }

    static func micMode(_ mode: MICMode) -> Components.Schemas.MICMode {
        switch mode {
        case .cluster: .cluster
        case .namespaced: .namespaced
        }
    }

    static func micMode(_ mode: Components.Schemas.MICMode) -> MICMode {
        switch mode {
        case .cluster: .cluster
        case .namespaced: .namespaced
        }
    }

    static func kubelet(_ wire: Components.Schemas.KubeletIdentity) -> KubeletIdentity {
        KubeletIdentity(resourceId: wire.resourceId, clientId: wire.clientId, objectId: wire.objectId)
    }

    static func cluster(_ cluster: Cluster) -> Components.Schemas.Cluster {
        .init(
            name: cluster.name, apiServer: cluster.apiServer, connection: connection(cluster.connection),
            brokerNamespace: cluster.brokerNamespace, micMode: micMode(cluster.micMode), singleTeam: cluster.singleTeam,
            nodeResourceGroup: cluster.nodeResourceGroup,
            kubeletIdentity: cluster.kubeletIdentity.map { .init(resourceId: $0.resourceId, clientId: $0.clientId, objectId: $0.objectId) },
            status: cluster.status.map { status in
                .init(reachable: status.reachable, crdsServed: status.crdsServed, servedKinds: status.servedKinds,
                      permissions: status.permissions.map { .init(verb: $0.verb, resource: $0.resource, namespace: $0.namespace, allowed: $0.allowed) },
                      serverVersion: status.serverVersion, checkedAt: status.checkedAt, message: status.message)
            },
            createdAt: cluster.createdAt, updatedAt: cluster.updatedAt)
    }

    static func newCluster(_ wire: Components.Schemas.ClusterCreate) throws -> Cluster {
        Cluster(
            name: wire.name, apiServer: wire.apiServer, connection: try connection(wire.connection),
            brokerNamespace: wire.brokerNamespace ?? "aad-broker", micMode: wire.micMode.map(micMode) ?? .cluster,
            singleTeam: wire.singleTeam ?? false, nodeResourceGroup: wire.nodeResourceGroup, kubeletIdentity: wire.kubeletIdentity.map(kubelet))
    }

    static func clusterPatch(_ wire: Components.Schemas.ClusterPatch) throws -> ClusterPatch {
        ClusterPatch(
            apiServer: wire.apiServer.map { $0.isEmpty ? nil : $0 }, connection: try wire.connection.map(connection),
            brokerNamespace: wire.brokerNamespace, micMode: wire.micMode.map(micMode), singleTeam: wire.singleTeam,
            nodeResourceGroup: wire.nodeResourceGroup.map { $0.isEmpty ? nil : $0 },
            kubeletIdentity: wire.kubeletIdentity.map { wire in
                let kubelet = Self.kubelet(wire)
                return kubelet == KubeletIdentity() ? nil : kubelet
            })
    }

    static func newBinding(_ wire: Components.Schemas.BindingCreate) -> NewBinding {
        NewBinding(name: wire.name, cluster: wire.cluster, namespace: wire.namespace, selector: wire.selector)
    }

    static func binding(_ binding: Binding) -> Components.Schemas.Binding {
        .init(
            name: binding.name, team: binding.team, identity: binding.identity, cluster: binding.cluster, namespace: binding.namespace,
            selector: binding.selector, podLabel: .init(additionalProperties: binding.podLabel),
            azureIdentityName: binding.azureIdentityObjectName, azureIdentityBindingName: binding.bindingObjectName,
            state: state(binding.state), message: binding.message, lastError: binding.lastError, health: binding.health?.rawValue,
            generation: binding.generation, observedGeneration: binding.observedGeneration,
            createdAt: binding.createdAt, updatedAt: binding.updatedAt)
    }
}
