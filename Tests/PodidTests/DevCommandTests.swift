import App
import Foundation
import Logging
import PostgresNIO
import Simulators
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `podid dev` as a new user runs it (`make run`): a private PostgreSQL, the API, a working curl
/// example, and nothing left running after Ctrl-C.
@Suite("podid dev", .timeLimit(.minutes(5)))
struct DevCommandTests {
    static var binary: String {
        if let bin = ProcessInfo.processInfo.environment["PODID_TEST_BIN"] { return bin }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/podid").path
    }

    /// A running `podid dev`, its output in a file.
    struct DevProcess {
        let process: Process
        let output: URL

        var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        static func start(dataDir: URL, port: Int) throws -> DevProcess {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["dev"]
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PODID_") }
            environment["PODID_DATA_DIR"] = dataDir.path
            environment["PODID_HTTP_PORT"] = String(port)
            let simPorts = try DevCommandTests.freePorts(3).filter { $0 != port }
            environment["PODID_SIM_AZURE_PORT"] = String(simPorts[0])
            environment["PODID_SIM_KUBE_PORT"] = String(simPorts[1])
            process.environment = environment
            let output = dataDir.appendingPathComponent("dev-\(UUID().uuidString).log")
            try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: output.path, contents: nil)
            let handle = try FileHandle(forWritingTo: output)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return DevProcess(process: process, output: output)
        }

        func waitUntilRunning() async throws {
            let deadline = ContinuousClock.now + .seconds(120)
            while !text.contains("podid dev is running") {
                guard process.isRunning, ContinuousClock.now < deadline else {
                    throw TestSetupError("podid dev did not start:\n\(text)")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }

        func interrupt() async throws -> Int32 {
            kill(process.processIdentifier, SIGINT)
            let deadline = ContinuousClock.now + .seconds(60)
            while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!process.isRunning, "podid dev stops on Ctrl-C; its output:\n\(text.suffix(4000))")
            if process.isRunning {
                // Reading the status of a running process would crash the test run.
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            return process.terminationStatus
        }
    }

    static func request(_ method: String, _ url: String, token: String, body: String? = nil) async throws -> (Int, String) {
        var headers = [("Authorization", "Bearer \(token)")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let answer = try await exchange(method, url, headers: headers, body: body.map { Array($0.utf8) })
        return (answer.status, answer.text)
    }

    static func freePort() throws -> Int {
        try freePorts(1)[0]
    }

    /// `count` distinct free loopback ports: the sockets stay bound until all are chosen, so two
    /// calls cannot hand out the same port.
    static func freePorts(_ count: Int) throws -> [Int] {
        // Below the kernel's ephemeral range (32768 and up), which servers binding port 0 draw
        // from: a port chosen here is not taken by another test's listener a moment later.
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < 1000 else { throw TestSetupError("cannot find a free port") }
            let candidate = Int.random(in: 20000..<32000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw TestSetupError("no socket for a free port") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(candidate).bigEndian)
            let length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            if bound == 0 && !ports.contains(candidate) {
                sockets.append(fd)
                ports.append(candidate)
            } else {
                close(fd)
            }
        }
        return ports
    }

    @Test("make run's story: team created, another team's viewer gets 404, both audited, Ctrl-C stops PostgreSQL, data kept")
    func newUser() async throws {
        let dataDir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-dev-test-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dataDir) }
        let port = try Self.freePort()
        let base = "http://127.0.0.1:\(port)"

        let first = try DevProcess.start(dataDir: dataDir, port: port)
        try await first.waitUntilRunning()
        let banner = first.text
        let token = try String(contentsOf: dataDir.appendingPathComponent("admin-token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(banner.contains(token), "the banner prints the admin token")
        #expect(banner.contains("curl -s -X POST \(base)/v1/teams"), "the banner prints a curl example")
        #expect(banner.contains("podid simulators are running"), "podid dev starts the simulators")
        #expect(banner.contains("resource group podid-dev"), "and says what it seeded")
        // The data directory holds the admin token and the database passwords: 0700 (narrowed, since
        // the test made it first with the default mode), and every file podid wrote in it is 0600.
        let manager = FileManager.default
        #expect((try manager.attributesOfItem(atPath: dataDir.path)[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        var checked = 0
        let files = try #require(manager.enumerator(at: dataDir, includingPropertiesForKeys: nil))
        for case let file as URL in files {
            guard !file.lastPathComponent.hasPrefix("dev-") else { continue }
            let attributes = try manager.attributesOfItem(atPath: file.path)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
            let isDirectory = (attributes[.type] as? FileAttributeType) == .typeDirectory
            #expect(mode & 0o077 == 0, "\(file.path) is \(String(mode, radix: 8))")
            if !isDirectory { checked += 1 }
        }
        #expect(checked >= 3, "admin-token, postgres.env, sim-kube-token at least")
        let cluster = try String(contentsOf: dataDir.appendingPathComponent("postgres-location"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: cluster) }

        let created = try await Self.request("POST", "\(base)/v1/teams", token: token, body: #"{"name":"payments","displayName":"Payments"}"#)
        #expect(created.0 == 201, "\(created.1)")
        #expect(try await Self.request("GET", "\(base)/v1/teams/payments", token: token).0 == 200)
        // The simulated cluster is shared by every team a user creates: it runs MIC namespaced.
        let local = try await Self.request("GET", "\(base)/v1/clusters/local", token: token)
        #expect(local.1.contains(#""micMode":"namespaced""#) && local.1.contains(#""singleTeam":false"#), "\(local.1)")
        #expect(try await Self.request("POST", "\(base)/v1/teams", token: token, body: #"{"name":"search"}"#).0 == 201)
        let viewer = try await Self.request("POST", "\(base)/v1/teams/search/tokens", token: token, body: #"{"name":"dash","role":"viewer"}"#)
        let viewerToken = try #require((try JSONSerialization.jsonObject(with: Data(viewer.1.utf8)) as? [String: Any])?["token"] as? String)
        #expect(try await Self.request("GET", "\(base)/v1/teams/payments", token: viewerToken).0 == 404)

        // The audit log holds the creation and the denial (read with the owner's URL from postgres.env).
        let env = try String(contentsOf: dataDir.appendingPathComponent("postgres.env"), encoding: .utf8)
        let ownerURL = try #require(env.split(separator: "\n").first { $0.hasPrefix("PODID_MIGRATION_DATABASE_URL=") }?
            .dropFirst("PODID_MIGRATION_DATABASE_URL=".count))
        let actions = try await PodidApplication.withClient(try DatabaseURL(String(ownerURL)), logger: Logger(label: "t")) { client in
            try await client.query(
                "SELECT action || ':' || coalesce(team, '') FROM audit_events ORDER BY id", logger: Logger(label: "t")
            ).collect().map { try $0.decode(String.self) }
        }
        #expect(actions.contains("team.created:payments"))
        #expect(actions.contains("auth.denied:payments"))

        #expect(try await first.interrupt() == 0)
        #expect(!FileManager.default.fileExists(atPath: cluster + "/data/postmaster.pid"), "PostgreSQL stopped with podid dev")

        // A second run reuses the data.
        let second = try DevProcess.start(dataDir: dataDir, port: port)
        try await second.waitUntilRunning()
        #expect(try await Self.request("GET", "\(base)/v1/teams/payments", token: token).0 == 200)
        #expect(try await second.interrupt() == 0)
        #expect(!FileManager.default.fileExists(atPath: cluster + "/data/postmaster.pid"))
    }

    /// The "Try it" lines of the banner as one shell script (continuation lines joined).
    static func walkThrough(_ banner: String) -> String {
        guard let start = banner.range(of: "Try it:") else { return "" }
        let lines = banner[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        return lines.prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
    }

    @Test("make run's walk-through works as printed: identity ready in the Azure simulator, bound, a deployment's labelled pods Assigned, every step audited; deleted from both",
          arguments: KubectlClient.allCases)
    func identityWalkThrough(kubectlClient: KubectlClient) async throws {
        let dataDir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-dev-test-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dataDir) }
        let port = try Self.freePort()
        let base = "http://127.0.0.1:\(port)"
        let dev = try DevProcess.start(dataDir: dataDir, port: port)
        try await dev.waitUntilRunning()
        let cluster = try String(contentsOf: dataDir.appendingPathComponent("postgres-location"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: cluster) }
        let script = Self.walkThrough(dev.text)
        #expect(script.contains("/v1/teams/payments/identities"), "\(dev.text)")

        // kubectl as the user has it (Debian's 1.20, or a current one), first on PATH.
        guard FileManager.default.isExecutableFile(atPath: kubectlClient.path) else {
            throw TestSetupError("\(kubectlClient) is missing at \(kubectlClient.path): run `make test` (scripts/test-deps installs it)")
        }
        let path = URL(fileURLWithPath: kubectlClient.path).deletingLastPathComponent().path + ":/usr/bin:/bin"
        #expect(script.contains("kubectl --server") && script.contains("create deployment"), "\(script)")
        let (status, output) = try await runProgram("/bin/sh", ["-e", "-c", script],
                                                    environment: ["PATH": path, "HOME": dataDir.path], timeout: .seconds(120))
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""state":"pending""#), "the POST answers pending: \(output)")
        #expect(output.contains(#""kind":"identity.provision""#), "the jobs list shows the job: \(output)")
        #expect(output.contains(#""podLabel":{"aadpodidbinding":"payments-api"}"#), "the binding says which label pods need: \(output)")
        #expect(output.contains("kind: \"AzureIdentityBinding\""), "the manifests export: \(output)")
        #expect(output.contains(#""binding":"api","changedAt""#) && output.contains(#""findings":["#), "the binding's health: \(output)")
        #expect(output.contains("namespace/payments created") && output.contains("successfully rolled out"), "\(output)")
        #expect(output.components(separatedBy: "status: Assigned").count - 1 >= 2, "kubectl shows both pods' assignments Assigned: \(output)")
        let token = try String(contentsOf: dataDir.appendingPathComponent("admin-token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var identity: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            let answer = try await Self.request("GET", "\(base)/v1/teams/payments/identities/orders-api", token: token)
            identity = (try? JSONSerialization.jsonObject(with: Data(answer.1.utf8))) as? [String: Any] ?? [:]
            if identity["state"] as? String == "ready" { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
        #expect(identity["state"] as? String == "ready", "\(identity)")
        #expect(identity["clientId"] is String && identity["resourceId"] is String)
        let simAzure = try #require(dev.text.split(separator: "\n").first { $0.contains("Azure       http://") }?
            .split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init))
        let listURL = "\(simAzure)/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31"
        #expect(try await Self.request("GET", listURL, token: "dev").1.contains("orders-api"))

        let env = try String(contentsOf: dataDir.appendingPathComponent("postgres.env"), encoding: .utf8)
        let ownerURL = try #require(env.split(separator: "\n").first { $0.hasPrefix("PODID_MIGRATION_DATABASE_URL=") }?
            .dropFirst("PODID_MIGRATION_DATABASE_URL=".count))
        func actions() async throws -> [String] {
            try await PodidApplication.withClient(try DatabaseURL(String(ownerURL)), logger: Logger(label: "t")) { client in
                try await client.query("SELECT action FROM audit_events WHERE resource_type = 'identity' ORDER BY id", logger: Logger(label: "t"))
                    .collect().map { try $0.decode(String.self) }
            }
        }
        #expect(try await actions() == ["identity.created", "azure.identity.created", "azure.roleassignment.created", "identity.ready"])

        #expect(try await Self.request("DELETE", "\(base)/v1/teams/payments/identities/orders-api", token: token).0 == 409,
                "it is bound")
        #expect(try await Self.request("DELETE", "\(base)/v1/teams/payments/identities/orders-api?cascade=true", token: token).0 == 202)
        var gone = false
        for _ in 0..<300 where !gone {
            gone = try await Self.request("GET", "\(base)/v1/teams/payments/identities/orders-api", token: token).0 == 404
            if !gone { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(gone)
        #expect(try await !Self.request("GET", listURL, token: "dev").1.contains("orders-api"), "gone from Azure too")
        #expect(try await actions().suffix(4) == ["identity.deleted", "azure.roleassignment.deleted", "azure.identity.deleted", "identity.removed"])
        #expect(try await dev.interrupt() == 0)
    }

    /// Runs the first `sh` block after `heading` in a doc against a fresh `podid dev`, as a user would
    /// from the repository (the block's `P=localhost:8080` pointed at the dev port); its output.
    static func runDocExamples(_ doc: String, heading: String) async throws -> (Int32, String) {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(doc), encoding: .utf8)
        let section = try #require(text.range(of: heading))
        let start = try #require(text.range(of: "```sh\n", range: section.upperBound..<text.endIndex))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("podid-doc-\(UUID().uuidString.prefix(8))")
        let dataDir = work.appendingPathComponent(".podid")
        defer { try? FileManager.default.removeItem(at: work) }
        let port = try Self.freePort()
        let dev = try DevProcess.start(dataDir: dataDir, port: port)
        try await dev.waitUntilRunning()
        let cluster = try String(contentsOf: dataDir.appendingPathComponent("postgres-location"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: cluster) }
        let script = String(text[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "P=localhost:8080", with: "P=127.0.0.1:\(port)")
        #expect(script.contains("P=127.0.0.1:\(port)"), "the examples name the address once")
        let result = try await runProgram("/bin/sh", ["-e", "-c", script], environment: ["PATH": "/usr/bin:/bin"],
                                          timeout: .seconds(120), workingDirectory: work)
        #expect(try await dev.interrupt() == 0)
        return result
    }

    @Test("docs/audit.md's examples work as written against podid dev")
    func auditDocExamples() async throws {
        let (status, output) = try await Self.runDocExamples("docs/audit.md", heading: "## Try it")
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""requestId":"audit-demo-1""#), "the request's story: \(output)")
        #expect(output.contains(#""outcome":"denied""#), "the denial")
        #expect(output.contains("id,time,actor,actorTeam,action,outcome,team,resourceType,resourceName,requestId,jobId,position,hash,details"))
        #expect(output.contains("\nevent: audit\ndata: {"), "the live stream: \(output)")
        #expect(output.contains(#""ok":true"#), "verify")
        #expect(!output.contains(#""ok":false"#))
        #expect(!output.contains("urn:podid:problem"), "no problem answers: \(output)")
    }

    @Test("docs/getting-started.md's walk-through works as written against podid dev")
    func gettingStarted() async throws {
        let (status, output) = try await Self.runDocExamples("docs/getting-started.md", heading: "## Step by step")
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first == "pending", "\(output)")
        #expect(lines.contains { $0.contains("Owner on /subscriptions/") && $0.contains("is not allowed for this team; allowed: Reader") }, "\(output)")
        #expect(lines.contains { UUID(uuidString: $0) != nil }, "the clientId: \(output)")
        #expect(output.contains("{'aadpodidbinding': 'web-"), "a selector nobody can guess: \(output)")
        #expect(output.contains("kind: \"AzureIdentityBinding\""), "\(output)")
        #expect(lines.contains("NoPodsWithSelector"), "\(output)")
        #expect(output.contains("health.changed") || output.contains("binding.") || output.contains("identity."), "\(output)")
    }

    @Test("serve refuses to start while migrations are pending, saying which")
    func serveRefusesPendingMigrations() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PODID_") }
        environment["PODID_DATABASE_URL"] = database.runtimeURLText
        environment["PODID_HTTP_PORT"] = String(try Self.freePort())
        let (status, text) = try await Self.runToExit(["serve"], environment: environment)
        #expect(status == 2)
        #expect(text.contains("0001_foundation.sql"), "\(text)")
        #expect(text.contains("podid migrate apply"), "\(text)")
    }

    @Test("podid migrate verify, status and apply, as an operator runs them")
    func migrateCommands() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        let environment = ["PATH": "/usr/bin:/bin", "PODID_DATABASE_URL": database.runtimeURLText,
                           "PODID_MIGRATION_DATABASE_URL": database.ownerURLText]
        let pending = try await Self.runToExit(["migrate", "verify"], environment: environment)
        #expect(pending.0 == 1)
        #expect(pending.1.contains("pending"), "\(pending.1)")
        let before = try await Self.runToExit(["migrate", "status"], environment: environment)
        #expect(before.0 == 0, "\(before.1)")
        #expect(before.1.contains("0001  pending") && before.1.contains("0001_foundation.sql"), "\(before.1)")
        let applied = try await Self.runToExit(["migrate", "apply"], environment: environment)
        #expect(applied.0 == 0, "\(applied.1)")
        #expect(applied.1.contains("applied: 0001_foundation.sql"), "\(applied.1)")
        #expect(try await Self.runToExit(["migrate", "apply"], environment: environment).1.contains("migrations are current"))
        let verified = try await Self.runToExit(["migrate", "verify"], environment: environment)
        #expect(verified.0 == 0, "\(verified.1)")
        let after = try await Self.runToExit(["migrate", "status"], environment: environment)
        #expect(after.1.contains("0001  applied"), "\(after.1)")
        // The runtime login role was made a member of podid_runtime by apply.
        let member = try await database.withOwner { client in
            try await client.query("SELECT pg_has_role(\(try database.runtimeURL.username), 'podid_runtime', 'MEMBER')",
                                   logger: TestDatabase.logger).collect().first?.decode(Bool.self)
        }
        #expect(member == true)
    }

    @Test("podid sim takes its start-up switches and refuses bad ones")
    func simSwitches() async throws {
        let (status, text) = try await Self.runToExit(["sim", "--memory", "--mic-mode", "sideways"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(status != 0)
        #expect(text.contains("--mic-mode"))
        let ports = try Self.freePorts(2)
        let kubePort = ports[1]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["sim", "--memory", "--mic-mode", "namespaced", "--stop-mic", "--require-token"]
        process.environment = ["PATH": "/usr/bin:/bin", "PODID_SIM_AZURE_PORT": String(ports[0]),
                               "PODID_SIM_KUBE_PORT": String(kubePort)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate() }
        var settings: JSON = .null
        for _ in 0..<300 {
            if let answer = try? await send("GET", "http://127.0.0.1:\(kubePort)/_sim/settings", token: nil), answer.status == 200 {
                settings = answer.json
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(settings["micMode"] == "namespaced")
        #expect(settings["micRunning"] == false)
        #expect(settings["requireToken"] == true)
        kill(process.processIdentifier, SIGINT)
        for _ in 0..<100 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "podid sim stops on Ctrl-C")
    }

    @Test("a bad configuration value stops start-up naming the variable")
    func badConfiguration() async throws {
        let (status, text) = try await Self.runToExit(["serve"], environment: ["PODID_HTTP_PORT": "eighty", "PATH": "/usr/bin:/bin"])
        #expect(status != 0)
        #expect(text.contains("PODID_HTTP_PORT"))
    }

    /// Runs the podid binary until it exits (at most 30 seconds) and returns its status and output.
    static func runToExit(_ arguments: [String], environment: [String: String]) async throws -> (Int32, String) {
        try await runProgram(binary, arguments, environment: environment)
    }
}
