@testable import Cloud
import Core
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
import ServiceLifecycle
import Simulators
import Testing

/// The Kubernetes client over TLS: trusting only the cluster CA, and a client certificate.
@Suite("Kubernetes client over TLS", .timeLimit(.minutes(5)))
struct KubeTLSTests {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
    static func certificates(in directory: URL) async throws {
        let commands = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=podid-test-ca"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=podid"],
            ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "1"],
        ]
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        for arguments in commands {
            let (status, output) = try await runProgram("/usr/bin/openssl", arguments, environment: ["PATH": "/usr/bin:/bin"], workingDirectory: directory)
            guard status == 0 else { throw TestSetupError("openssl \(arguments.joined(separator: " ")) failed: \(output)") }
        }
    }

    @Test("trusts the cluster CA from the connection, presents a client certificate, and refuses an unknown server")
    func mutualTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.certificates(in: directory)
        func read(_ name: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
                throw TestSetupError("missing \(name)")
            }
            return Array(data)
        }
        var serverTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(try read("server.crt")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: try read("server.key"), format: .pem)))
        serverTLS.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(try read("ca.crt")))
        serverTLS.certificateVerification = .noHostnameVerification

        let simulators = try Simulators(dataDirectory: nil)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "tls.test")
        logger.logLevel = .critical
        let app = Application(
            responder: simulators.kube.responder(), server: try .tls(.http1(), tlsConfiguration: serverTLS),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var port = 0
            for await value in stream { port = value }
            let server = "https://127.0.0.1:\(port)"

            let client = try KubeClient(connection: KubeConnection(
                server: server, certificateAuthority: try read("ca.crt"),
                auth: .clientCertificate(certificate: try read("client.crt"), key: try read("client.key"))))
            let pods = try await client.list(.pod, namespace: "aad-broker", labelSelector: nil)
            #expect(pods.count >= 4)
            try await client.shutdown()

            // The system trust store does not know the cluster CA.
            let untrusting = try KubeClient(connection: KubeConnection(
                server: server, auth: .clientCertificate(certificate: try read("client.crt"), key: try read("client.key"))))
            await #expect {
                try await untrusting.list(.pod, namespace: nil, labelSelector: nil)
            } throws: { ($0 as? UpstreamError)?.code == "ConnectionFailed" }
            try await untrusting.shutdown()

            // Without a client certificate the server refuses the handshake.
            let anonymous = try KubeClient(connection: KubeConnection(server: server, certificateAuthority: try read("ca.crt"), auth: .none))
            await #expect { try await anonymous.list(.pod, namespace: nil, labelSelector: nil) } throws: { $0 is UpstreamError }
            try await anonymous.shutdown()

            #expect(throws: KubeConfigError.self) {
                try KubeClient(connection: KubeConnection(server: server, certificateAuthority: Array("not pem".utf8), auth: .none))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
