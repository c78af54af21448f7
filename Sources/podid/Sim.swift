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

    func run() async throws {
        let (config, logger, _) = try Bootstrap.configure()
        let simulators = try Simulators(dataDirectory: memory ? nil : URL(fileURLWithPath: config.dataDir))
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
