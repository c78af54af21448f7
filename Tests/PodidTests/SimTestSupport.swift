import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Simulators
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Simulators started in-process on free loopback ports, for one test.
struct RunningSimulators: Sendable {
    let simulators: Simulators
    let azureURL: String
    let kubeURL: String

    var azure: AzureSimulator { simulators.azure }
    var kube: KubeSimulator { simulators.kube }
}

/// Runs `body` with fresh simulators (memory only unless `dataDirectory` is given).
func withSimulators<R: Sendable>(
    dataDirectory: URL? = nil, _ body: @Sendable (RunningSimulators) async throws -> R
) async throws -> R {
    let simulators = try Simulators(dataDirectory: dataDirectory)
    var logger = Logger(label: "sim.test")
    logger.logLevel = .warning
    let (stream, continuation) = AsyncStream<(Int, Int)>.makeStream()
    let services = simulators.services(host: "127.0.0.1", azurePort: 0, kubePort: 0, logger: logger) { azure, kube in
        continuation.yield((azure, kube))
        continuation.finish()
    }
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
    return try await withThrowingTaskGroup(of: R?.self) { tasks in
        tasks.addTask {
            try await group.run()
            return nil
        }
        var ports: (Int, Int)?
        for await value in stream { ports = value }
        guard let (azure, kube) = ports else { throw TestSetupError("the simulators did not start") }
        let running = RunningSimulators(simulators: simulators, azureURL: "http://127.0.0.1:\(azure)", kubeURL: "http://127.0.0.1:\(kube)")
        let result: Result<R, any Error>
        do {
            result = .success(try await body(running))
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try result.get()
    }
}

/// A decoded HTTP answer.
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSON { JSON.parse(body) ?? .null }
    func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }
}

/// The tests' own HTTP client for talking to the simulators and podid processes: no redirects,
/// and every exchange bounded in time, so that a server that stops answering fails the test
/// instead of holding the whole run.
let testHTTPClient = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

/// One exchange with `testHTTPClient`: the status, the headers (repeated ones joined by ", ")
/// and the whole body.
func exchange(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]?,
              timeout: Duration = .seconds(120)) async throws -> HTTPAnswer {
    var request = HTTPClientRequest(url: url)
    request.method = HTTPMethod(rawValue: method)
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await testHTTPClient.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
    let collected = try await response.body.collect(upTo: 256 << 20)
    var fields: [String: String] = [:]
    for header in response.headers {
        fields[header.name] = fields[header.name].map { "\($0), \(header.value)" } ?? header.value
    }
    return HTTPAnswer(status: Int(response.status.code), headers: fields, body: Data(collected.readableBytesView))
}

/// Sends one request (no redirects, no caching).
func send(
    _ method: String, _ url: String, body: String? = nil, contentType: String = "application/json",
    headers: [String: String] = [:], token: String? = "dev"
) async throws -> HTTPAnswer {
    var fields: [(String, String)] = []
    if let token { fields.append(("Authorization", "Bearer \(token)")) }
    for (name, value) in headers { fields.append((name, value)) }
    if body != nil { fields.append(("Content-Type", contentType)) }
    return try await exchange(method, url, headers: fields, body: body.map { Array($0.utf8) })
}

/// Runs a program until it exits (at most `timeout`), with output in a file rather than a pipe,
/// and returns its exit status and combined output.
func runProgram(_ path: String, _ arguments: [String], environment: [String: String],
                timeout: Duration = .seconds(30), workingDirectory: URL? = nil) async throws -> (Int32, String) {
    let process = Process()
    if let workingDirectory { process.currentDirectoryURL = workingDirectory }
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = environment
    let output = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("run-\(UUID().uuidString).log")
    FileManager.default.createFile(atPath: output.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: output) }
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
    }
    try? handle.close()
    return (process.terminationStatus, try String(contentsOf: output, encoding: .utf8))
}
