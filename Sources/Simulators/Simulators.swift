import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The Azure and Kubernetes simulators together, as `podid sim` and `podid dev` run them.
public struct Simulators: Sendable {
    /// What the dev environment seeds: the defaults scripts and examples rely on.
    public struct Seed: Sendable {
        public var subscriptionId = "00000000-0000-0000-0000-000000000000"
        public var tenantId = "00000000-0000-0000-0000-000000000001"
        public var resourceGroup = "podid-dev"
        public var location = "westeurope"
        public var brokerNamespace = "aad-broker"

        public init() {}

        /// One line per seeded thing, for start-up messages.
        public var summary: String {
            """
            subscription \(subscriptionId), tenant \(tenantId), resource group \(resourceGroup) (\(location));
            namespaces default, kube-system, \(brokerNamespace) with simulated MIC and NMI pods
            """
        }
    }

    /// The Azure simulator.
    public let azure: AzureSimulator
    /// The Kubernetes simulator.
    public let kube: KubeSimulator
    /// What was seeded.
    public let seed: Seed

    /// Simulators with state journalled under `dataDirectory` (memory only when nil), seeded.
    public init(
        dataDirectory: URL?, seed: Seed = Seed(), azureSettings: AzureSimulator.Settings = .init(),
        kubeSettings: KubeSimulator.Settings = .init()
    ) throws {
        let azure = AzureSimulator(
            store: try SimStore(file: dataDirectory?.appendingPathComponent("sim-azure.journal")), tenantId: seed.tenantId,
            settings: azureSettings)
        azure.seedResourceGroup(subscription: seed.subscriptionId, name: seed.resourceGroup, location: seed.location)
        let kube = try KubeSimulator(
            store: try SimStore(file: dataDirectory?.appendingPathComponent("sim-kube.journal")),
            brokerNamespace: seed.brokerNamespace, settings: kubeSettings,
            identityExists: { resourceID, clientID in azure.identityExists(resourceID: resourceID, clientID: clientID) })
        kube.seed()
        self.azure = azure
        self.kube = kube
        self.seed = seed
    }

    /// The services that serve both simulators and run the MIC; `onRunning` gets each bound port.
    public func services(
        host: String, azurePort: Int, kubePort: Int, logger: Logger,
        onRunning: @escaping @Sendable (_ azurePort: Int, _ kubePort: Int) async -> Void = { _, _ in }
    ) -> [any Service] {
        let ports = PortPair(onRunning: onRunning)
        var azureLogger = logger
        azureLogger[metadataKey: "component"] = "sim-azure"
        var kubeLogger = logger
        kubeLogger[metadataKey: "component"] = "sim-kube"
        let azureApp = Application(
            responder: azure.responder(),
            configuration: .init(address: .hostname(host, port: azurePort), serverName: "podid-sim-azure"),
            onServerRunning: { await ports.set(azure: $0.localAddress?.port ?? azurePort) },
            logger: azureLogger)
        let kubeApp = Application(
            responder: kube.responder(),
            configuration: .init(address: .hostname(host, port: kubePort), serverName: "podid-sim-kube"),
            onServerRunning: { await ports.set(kube: $0.localAddress?.port ?? kubePort) },
            logger: kubeLogger)
        return [azureApp, kubeApp, MICService(kube: kube)]
    }
}

/// Reports both ports once both servers listen.
actor PortPair {
    var azure: Int?
    var kube: Int?
    let onRunning: @Sendable (Int, Int) async -> Void

    init(onRunning: @escaping @Sendable (Int, Int) async -> Void) {
        self.onRunning = onRunning
    }

    func set(azure: Int? = nil, kube: Int? = nil) async {
        if let azure { self.azure = azure }
        if let kube { self.kube = kube }
        if let a = self.azure, let k = self.kube { await onRunning(a, k) }
    }
}

/// Runs the simulated MIC until shutdown.
struct MICService: Service {
    let kube: KubeSimulator

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await kube.runMIC()
        }
    }
}

extension AzureSimulator {
    /// Whether an identity with this resource id exists and has this client id.
    public func identityExists(resourceID: String, clientID: String) -> Bool {
        guard let identity = store.get("identities", resourceID.lowercased()) else { return false }
        return identity[["properties", "clientId"]]?.string?.lowercased() == clientID.lowercased()
    }
}
