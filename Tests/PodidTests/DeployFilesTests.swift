import App
import Foundation
import Testing

/// The files users deploy with: the Kubernetes manifests pass an independent validator, and the
/// compose file, the manifests and the configuration reference name only commands and variables
/// podid has (and the reference names all of them).
@Suite("Deploy files", .timeLimit(.minutes(5)))
struct DeployFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var python: String { root.appendingPathComponent(".venv/bin/python").path }

    /// podid's subcommands, from its own help.
    static func subcommands() async throws -> Set<String> {
        let (status, help) = try await runProgram(DevCommandTests.binary, ["--help"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(status == 0)
        guard let section = help.range(of: "SUBCOMMANDS:") else { return [] }
        return Set(help[section.upperBound...].split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            return line.split(separator: " ").first.map(String.init)
        })
    }

    /// A YAML file (all its documents) as JSON, read by PyYAML.
    static func documents(_ path: String) async throws -> [[String: Any]] {
        let script = "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))"
        let (status, output) = try await runProgram(python, ["-c", script, path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(status == 0, "\(path): \(output)")
        return (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [[String: Any]] ?? []
    }

    @Test("deploy/kubernetes passes kubernetes-validate --strict; a stray field would not")
    func kubernetesManifests() async throws {
        let directory = Self.root.appendingPathComponent("deploy/kubernetes")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(Set(files).isSuperset(of: ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "deployment.yaml", "service.yaml", "pdb.yaml",
                                           "migration-job.yaml", "secret-example.yaml"]))
        let validator = Self.root.appendingPathComponent(".venv/bin/kubernetes-validate").path
        let paths = files.map { directory.appendingPathComponent($0).path }
        let (status, output) = try await runProgram(validator, ["--strict", "-k", "1.31.0"] + paths, environment: ["PATH": "/usr/bin:/bin"],
                                                    timeout: .seconds(120))
        #expect(status == 0, "\(output)")
        #expect(!output.contains("ERROR"), "\(output)")

        let broken = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("broken-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: broken) }
        let deployment = try String(contentsOf: directory.appendingPathComponent("deployment.yaml"), encoding: .utf8)
        try deployment.replacingOccurrences(of: "  replicas: 2", with: "  replicas: 2\n  replica: 2").write(to: broken, atomically: true, encoding: .utf8)
        let (rejected, message) = try await runProgram(validator, ["--strict", "-k", "1.31.0", broken.path], environment: ["PATH": "/usr/bin:/bin"],
                                                       timeout: .seconds(120))
        #expect(rejected != 0, "\(message)")

        // The deployment probes the endpoints podid serves, runs as the image's user, and names only real settings.
        let objects = try await Self.documents(directory.appendingPathComponent("deployment.yaml").path)
        let container = (((objects.first?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
            .flatMap { ($0["containers"] as? [[String: Any]])?.first } ?? [:]
        #expect((container["readinessProbe"] as? [String: Any]).flatMap { ($0["httpGet"] as? [String: Any])?["path"] as? String } == "/readyz")
        #expect((container["livenessProbe"] as? [String: Any]).flatMap { ($0["httpGet"] as? [String: Any])?["path"] as? String } == "/healthz")
        let commands = try await Self.subcommands()
        for file in ["deployment.yaml", "migration-job.yaml"] {
            let documents = try await Self.documents(directory.appendingPathComponent(file).path)
            for document in documents {
                let spec = (((document["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]) ?? [:]
                for container in spec["containers"] as? [[String: Any]] ?? [] {
                    let args = container["args"] as? [String] ?? []
                    #expect(args.first.map(commands.contains) == true, "\(file): \(args) is a podid command")
                    for env in container["env"] as? [[String: Any]] ?? [] {
                        let name = env["name"] as? String ?? ""
                        #expect(PodidConfig.variables.contains(name), "\(file): \(name) is a setting podid reads")
                    }
                }
            }
        }
    }

    @Test("docker-compose.yml: every service runs a podid command and sets only settings podid reads")
    func compose() async throws {
        let compose = try #require(try await Self.documents(Self.root.appendingPathComponent("docker-compose.yml").path).first)
        let services = try #require(compose["services"] as? [String: [String: Any]])
        #expect(Set(services.keys) == ["postgres", "migrate", "sim", "podid"])
        let commands = try await Self.subcommands()
        for (name, service) in services where name != "postgres" {
            let command = service["command"] as? [String] ?? []
            #expect(command.first.map(commands.contains) == true, "\(name): \(command)")
            for key in (service["environment"] as? [String: Any] ?? [:]).keys where key.hasPrefix("PODID_") {
                #expect(PodidConfig.variables.contains(key), "\(name): \(key)")
            }
        }
        #expect((services["postgres"]?["image"] as? String)?.hasPrefix("postgres:16") == true)
        #expect((services["sim"]?["environment"] as? [String: Any])?["PODID_SIM_HOST"] as? String == "0.0.0.0")
        for file in ["deploy/compose/init-roles.sql", "deploy/compose/sim-kube-token", "Dockerfile", ".dockerignore"] {
            #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(file).path), "\(file) exists")
        }
        let dockerfile = try String(contentsOf: Self.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        #expect(dockerfile.contains("--static-swift-stdlib") && dockerfile.contains("USER 10001"))
        for bundle in ["podid_Store.resources", "podid_Simulators.resources"] {
            #expect(dockerfile.contains(bundle), "the image carries \(bundle)")
            #expect(FileManager.default.fileExists(atPath: URL(fileURLWithPath: DevCommandTests.binary).deletingLastPathComponent()
                .appendingPathComponent(bundle).path), "SwiftPM names the bundle \(bundle)")
        }
    }

    @Test("docs/configuration.md names every PODID_* variable podid reads, and no other")
    func configurationReference() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        var mentioned = Set<String>()
        var rest = Substring(text)
        while let range = rest.range(of: "PODID_") {
            let name = "PODID_" + rest[range.upperBound...].prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
            mentioned.insert(name.hasSuffix("_") ? String(name.dropLast()) : name)
            rest = rest[range.upperBound...]
        }
        for variable in PodidConfig.variables {
            #expect(mentioned.contains(variable), "docs/configuration.md describes \(variable)")
        }
        // PODID_LOOPBACK_ONLY is read by the HTTP clients, not the configuration type.
        #expect(mentioned.subtracting(PodidConfig.variables).subtracting(["PODID_LOOPBACK_ONLY"]).isEmpty,
                "\(mentioned.subtracting(PodidConfig.variables))")
    }
}
