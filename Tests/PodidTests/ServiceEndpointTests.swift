import App
import AsyncHTTPClient
import NIOCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import HummingbirdTesting
import Logging
import Prometheus
import Testing

@Suite("Service endpoints", .timeLimit(.minutes(5)))
struct ServiceEndpointTests {
    @Test("healthz, readyz, openapi.yaml and metrics need no token")
    func publicEndpoints() async throws {
        try await withTestApp { client, _ in
            let health = try await client.call(.get, "/healthz")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "ok")
            // Readiness answers within 3 seconds or says the database is slow: under the load of the
            // whole suite it may take a second try.
            #expect(try await eventually(timeout: .seconds(30)) { try await client.call(.get, "/readyz").status == .ok })

            let spec = try await client.call(.get, "/openapi.yaml")
            #expect(spec.status == .ok)
            #expect(spec.headers[.contentType] == "application/yaml")
            let onDisk = try String(
                contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent("openapi.yaml"), encoding: .utf8)
            #expect(spec.body == onDisk)

            _ = try await client.call(.get, "/v1/teams/alpha", token: testAdminToken)
            _ = try await client.call(.get, "/v1/teams")
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.body.contains(#"podid_http_requests_total{route="/v1/teams/{team}",method="GET",status="404"} 1"#))
            #expect(metrics.body.contains(#"podid_http_unauthorized_total{route="/v1/teams"} 1"#))
            #expect(metrics.body.contains("podid_http_request_duration_seconds_bucket"))
            #expect(!metrics.body.contains("/v1/teams/alpha"), "labels use route templates, never raw paths")
        }
    }

    @Test("readyz is 503 problem+json while migrations are pending")
    func notReady() async throws {
        let database = try await TestDatabase.makeEmpty()
        defer { Task { await database.drop() } }
        var config = PodidConfig()
        config.databaseConnectWait = TestDatabase.connectionWaitSeconds
        config.clusterCredentialDirectories = testCredentialDirectories
        config.databaseURL = database.ownerURLText
        config.adminToken = testAdminToken
        let app = try PodidApplication.build(config: config, registry: PrometheusCollectorRegistry(), logger: Logger(label: "t"))
        try await app.test(.router) { client in
            let ready = try await client.call(.get, "/readyz")
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.headers[.contentType] == "application/problem+json")
            #expect((ready.json["detail"] as? String)?.contains("0001_foundation.sql") == true)
        }
    }
}

@Suite("Configuration", .timeLimit(.minutes(5)))
struct ConfigTests {
    @Test("defaults match docs/configuration.md")
    func defaults() throws {
        let config = try PodidConfig.load(from: [:])
        #expect(config.httpHost == "127.0.0.1")
        #expect(config.httpPort == 8080)
        #expect(config.workers == 4)
        #expect(config.healthInterval == 60)
        #expect(config.dataDir == ".podid")
        #expect(config.simAzurePort == 8081)
        #expect(config.simKubePort == 8082)
        #expect(config.logFormat == .text)
        #expect(config.databaseConnectWait == 5)
        #expect(try PodidConfig.load(from: ["PODID_DATABASE_CONNECT_WAIT": "30"]).databaseConnectWait == 30)
        #expect(config.tokenDefaultExpiryDays == 90)
        #expect(config.metricsToken == nil && config.adminTokenFile == nil)
    }

    @Test("a bad value stops start-up naming the variable, and never echoes a secret")
    func badValues() throws {
        let cases: [(String, String)] = [
            ("PODID_HTTP_PORT", "eighty"), ("PODID_HTTP_PORT", "70000"), ("PODID_LOG_LEVEL", "loud"),
            ("PODID_LOG_FORMAT", "xml"), ("PODID_ADMIN_TOKEN", "short"), ("PODID_WORKERS", "-1"),
            ("PODID_HEALTH_INTERVAL", "1"), ("PODID_DATABASE_URL", "mysql://x@y/z"),
            ("PODID_MIGRATION_DATABASE_URL", "postgres://host/db"), ("PODID_DATABASE_URL", "postgres://u:pw@h:5432/"),
            ("PODID_SIM_AZURE_PORT", "x"), ("PODID_SIM_MIC_MODE", "sideways"),
            ("PODID_DATABASE_CONNECT_WAIT", "0"), ("PODID_DATABASE_CONNECT_WAIT", "soon"),
            ("PODID_METRICS_TOKEN", "short"), ("PODID_TOKEN_DEFAULT_EXPIRY_DAYS", "-1"),
            ("PODID_ADMIN_TOKEN_FILE", "/nonexistent/admin-token"),
        ]
        for (variable, value) in cases {
            #expect {
                try PodidConfig.load(from: [variable: value])
            } throws: { error in
                guard let error = error as? ConfigError else { return false }
                return error.variable == variable && !(["PODID_ADMIN_TOKEN", "PODID_METRICS_TOKEN"].contains(variable) && error.description.contains(value))
            }
        }
    }

    @Test("database URLs: TCP, Unix socket, sslmode; the password never shows in descriptions")
    func databaseURLs() throws {
        let tcp = try DatabaseURL("postgres://app:s%40cret@db.example:6543/podid?sslmode=require")
        #expect(tcp.username == "app")
        #expect(tcp.host == "db.example")
        #expect(tcp.port == 6543)
        #expect(tcp.database == "podid")
        #expect(tcp.sslMode == "require")
        #expect(!tcp.description.contains("s@cret") && !tcp.description.contains("s%40cret"))
        let socket = try DatabaseURL("postgresql://app@/podid?host=/var/run/postgresql")
        #expect(socket.socketDirectory == "/var/run/postgresql")
        #expect(socket.clientConfiguration().unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
        #expect(throws: DatabaseURL.ParseError.self) { try DatabaseURL("postgres://app@h/db?sslmode=sometimes") }
        // A database on another machine is verified (chain and host name) unless the URL says otherwise;
        // only loopback and Unix sockets default to prefer.
        #expect(try DatabaseURL("postgres://app@db.example/podid").sslMode == "verify-full")
        #expect(try DatabaseURL("postgres://app@10.0.0.7:5432/podid").sslMode == "verify-full")
        for local in ["localhost", "127.0.0.1", "[::1]"] {
            #expect(try DatabaseURL("postgres://app@\(local)/podid").sslMode == "prefer", "\(local)")
        }
        #expect(try DatabaseURL("postgres://app@/podid?host=/run/postgresql").sslMode == "prefer")
        #expect(try DatabaseURL("postgres://app@db.example/podid?sslmode=disable").sslMode == "disable")
        #expect(try DatabaseURL("postgres://app@db.example/podid?sslrootcert=/etc/ssl/db.pem").sslRootCert == "/etc/ssl/db.pem")
        #expect(throws: DatabaseURL.ParseError.self) { try DatabaseURL("postgres://app@db.example/podid?sslrootcert=db.pem") }
        #expect(DatabaseURL.isLoopback("127.255.0.1") && !DatabaseURL.isLoopback("127.0.0.1.example") && !DatabaseURL.isLoopback("128.0.0.1"))
    }

    @Test("a connection that sends nothing, or half a request, is closed after the idle timeout; an unauthenticated body is not read")
    func idleTimeout() async throws {
        try await withTestApp(live: true, configure: { $0.httpIdleTimeout = 1 }) { client, _ in
            let port = try #require(client.port)
            /// Connects, sends `text`, and waits (up to 20 s) for the server to close: the seconds it took, or nil.
            @Sendable func closedAfter(sending text: String) throws -> Double? {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                #expect(fd >= 0)
                defer { close(fd) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                #expect(connected == 0)
                if !text.isEmpty { _ = text.withCString { send(fd, $0, strlen($0), 0) } }
                var timeout = timeval(tv_sec: 20, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let started = Date()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let read = recv(fd, &buffer, buffer.count, 0)
                    if read == 0 { return Date().timeIntervalSince(started) }
                    if read < 0 { return nil }
                }
            }
            let idle = try closedAfter(sending: "")
            #expect(idle.map { $0 < 15 } == true, "an idle connection is closed: \(String(describing: idle))")
            let trickle = try closedAfter(sending: "POST /v1/teams HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
            #expect(trickle.map { $0 < 15 } == true, "a request head that never ends is cut off: \(String(describing: trickle))")
            // Without a token, a large body is refused at once rather than read.
            // (The server answers 401 and closes rather than reading the rest: a client still sending may see the close instead.)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/teams")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: "{\"name\":\"" + String(repeating: "x", count: 500_000) + "\"}"))
            do {
                let refused = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                #expect(refused.status == .unauthorized)
            } catch {
                #expect(!(error is HTTPClientError) || "\(error)".contains("closed") || "\(error)".contains("reset"), "\(error)")
            }
        }
    }

    @Test("serve requires PODID_DATABASE_URL; a shared owner/runtime URL and an unkeyed audit chain are warned about; a short or missing audit key is refused")
    func requirements() throws {
        let config = try PodidConfig.load(from: [:])
        #expect(throws: ConfigError.self) { try config.requireDatabaseURL() }
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("podid-audit-key-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: keyFile) }
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: keyFile)
        let shared = try PodidConfig.load(from: ["PODID_DATABASE_URL": "postgres://u@h/db", "PODID_MIGRATION_DATABASE_URL": "postgres://u@h/db",
                                                 "PODID_AUDIT_KEY_FILE": keyFile.path])
        #expect(PodidApplication.warnings(config: shared).count == 1)
        #expect(PodidApplication.warnings(config: shared).first?.contains("owning role") == true)
        let unkeyed = try PodidConfig.load(from: ["PODID_DATABASE_URL": "postgres://app@h/db"])
        #expect(PodidApplication.warnings(config: unkeyed).map { $0.contains("PODID_AUDIT_KEY_FILE") } == [true])
        let split = try PodidConfig.load(from: [
            "PODID_DATABASE_URL": "postgres://app@h/db", "PODID_MIGRATION_DATABASE_URL": "postgres://owner@h/db",
            "PODID_AUDIT_KEY_FILE": keyFile.path, "PODID_AUDIT_CHECKPOINTS": "/tmp/checkpoints",
        ])
        #expect(PodidApplication.warnings(config: split).isEmpty)
        #expect(split.auditKey?.id.count == 16)
        try Data("too short".utf8).write(to: keyFile)
        #expect(throws: ConfigError.self) { try PodidConfig.load(from: ["PODID_AUDIT_KEY_FILE": keyFile.path]) }
        #expect(throws: ConfigError.self) { try PodidConfig.load(from: ["PODID_AUDIT_KEY_FILE": "/nonexistent/key"]) }
        #expect(throws: ConfigError.self, "checkpoints need the key") { try PodidConfig.load(from: ["PODID_AUDIT_CHECKPOINTS": "/tmp/x"]) }
    }
}

@Suite("Azure configuration", .timeLimit(.minutes(5)))
struct AzureConfigTests {
    @Test("PODID_AZURE_* first, then the webhook's AZURE_* variables; endpoints default to the public cloud")
    func azure() throws {
        let defaults = try PodidConfig.load(from: [:])
        #expect(defaults.azureARMEndpoint == "https://management.azure.com")
        #expect(defaults.azureAuthorityHost == "https://login.microsoftonline.com")
        #expect(defaults.azureIMDSEndpoint == "http://169.254.169.254")
        #expect(defaults.azureIdentityWritesPerSecond == 2)
        let webhook = try PodidConfig.load(from: [
            "AZURE_TENANT_ID": "t-1", "AZURE_CLIENT_ID": "c-1", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token",
            "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
        ])
        #expect(webhook.azureTenantId == "t-1")
        #expect(webhook.azureClientId == "c-1")
        #expect(webhook.azureFederatedTokenFile == "/var/run/token")
        #expect(webhook.azureAuthorityHost == "https://login.microsoftonline.com")
        let own = try PodidConfig.load(from: ["AZURE_CLIENT_ID": "c-1", "PODID_AZURE_CLIENT_ID": "c-2",
                                              "PODID_AZURE_ARM_ENDPOINT": "http://127.0.0.1:8081"])
        #expect(own.azureClientId == "c-2")
        #expect(own.azureARMEndpoint == "http://127.0.0.1:8081")
        for (variable, value) in [("PODID_AZURE_ARM_ENDPOINT", "management.azure.com"), ("PODID_AZURE_IMDS_ENDPOINT", "ftp://x"),
                                  ("PODID_AZURE_IDENTITY_WRITES_PER_SECOND", "0"), ("PODID_AZURE_TENANT_ID", "a b")] {
            #expect(throws: ConfigError.self) { try PodidConfig.load(from: [variable: value]) }
        }
    }
}
