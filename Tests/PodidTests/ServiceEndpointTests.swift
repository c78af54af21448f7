import App
import Foundation
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

    @Test("serve requires PODID_DATABASE_URL; a shared owner/runtime URL is warned about")
    func requirements() throws {
        let config = try PodidConfig.load(from: [:])
        #expect(throws: ConfigError.self) { try config.requireDatabaseURL() }
        let shared = try PodidConfig.load(from: ["PODID_DATABASE_URL": "postgres://u@h/db"])
        #expect(PodidApplication.warnings(config: shared).count == 1)
        let split = try PodidConfig.load(from: [
            "PODID_DATABASE_URL": "postgres://app@h/db", "PODID_MIGRATION_DATABASE_URL": "postgres://owner@h/db",
        ])
        #expect(PodidApplication.warnings(config: split).isEmpty)
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
