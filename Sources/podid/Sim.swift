import App
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Simulators

/// `podid sim`: the Azure and Kubernetes simulators alone.
struct Sim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Azure and Kubernetes simulators (state kept in PODID_DATA_DIR).",
        discussion: """
            Listens on PODID_SIM_HOST (127.0.0.1) at PODID_SIM_AZURE_PORT (8081) and PODID_SIM_KUBE_PORT (8082).
            Both accept the bearer token `dev`; the token endpoint accepts client id and secret `dev`.
            See docs/simulators.md.
            """)

    @Flag(help: "Keep state in memory only.")
    var memory = false

    @OptionGroup var options: SimOptions

    func run() async throws {
        let (config, logger, _) = try Bootstrap.configure()
        let simulators = try Simulators(
            dataDirectory: memory ? nil : URL(fileURLWithPath: config.dataDir),
            azureSettings: options.azureSettings(), kubeSettings: options.kubeSettings(config))
        let services = simulators.services(
            host: config.simHost, azurePort: config.simAzurePort, kubePort: config.simKubePort, logger: logger
        ) { azurePort, kubePort in
            FileHandle.standardOutput.write(Data(SimBanner.text(simulators, host: config.simHost, azurePort: azurePort, kubePort: kubePort).utf8))
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Start-up switches of the simulators (all can be changed later through `/_sim/settings`).
struct SimOptions: ParsableArguments {
    @Option(help: "The simulated MIC's mode: cluster or namespaced (default: PODID_SIM_MIC_MODE, else cluster).")
    var micMode: String?

    @Flag(help: "Start with the simulated MIC stopped.")
    var stopMic = false

    @Flag(help: "Keep unknown and capitalised keys in custom resources, as a cluster on the schema-less CRD does.")
    var preserveUnknownFields = false

    @Flag(help: "Refuse Kubernetes requests without a bearer token (kubectl sends none over plain HTTP).")
    var requireToken = false

    @Option(help: "Seconds during which a new identity's principal is not found by role assignments.")
    var principalNotFoundSeconds: Double?

    @Option(help: "Identity writes per second per subscription before 429 (0 turns the limit off).")
    var identityWritesPerSecond: Double?

    func validate() throws {
        if let micMode, !["cluster", "namespaced"].contains(micMode) {
            throw ValidationError("--mic-mode must be cluster or namespaced")
        }
    }

    func azureSettings() -> AzureSimulator.Settings {
        var settings = AzureSimulator.Settings()
        if let principalNotFoundSeconds { settings.principalNotFoundSeconds = principalNotFoundSeconds }
        if let identityWritesPerSecond { settings.identityWritesPerSecond = identityWritesPerSecond }
        return settings
    }

    func kubeSettings(_ config: PodidConfig) -> KubeSimulator.Settings {
        var settings = KubeSimulator.Settings()
        settings.micMode = micMode ?? config.simMicMode
        settings.micRunning = !stopMic
        settings.preserveUnknownFields = preserveUnknownFields
        settings.requireToken = requireToken
        return settings
    }
}

/// What the simulators say when they listen.
enum SimBanner {
    static func text(_ simulators: Simulators, host: String, azurePort: Int, kubePort: Int) -> String {
        """

        podid simulators are running
          Azure       http://\(host):\(azurePort)   (token endpoint /\(simulators.seed.tenantId)/oauth2/v2.0/token, IMDS /metadata/identity/oauth2/token)
          Kubernetes  http://\(host):\(kubePort)   (kubectl --server http://\(host):\(kubePort) --token dev)
          seeded      \(simulators.seed.summary.replacingOccurrences(of: "\n", with: "\n              "))

        """
    }
}
