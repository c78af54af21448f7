import Foundation
import Logging
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

/// Sends one request (no redirects, no caching).
func send(
    _ method: String, _ url: String, body: String? = nil, contentType: String = "application/json",
    headers: [String: String] = [:], token: String? = "dev"
) async throws -> HTTPAnswer {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    if let body {
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    guard let http = response as? HTTPURLResponse else { throw TestSetupError("not an HTTP response from \(url)") }
    var headers: [String: String] = [:]
    for (key, value) in http.allHeaderFields { headers["\(key)"] = "\(value)" }
    return HTTPAnswer(status: http.statusCode, headers: headers, body: data)
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
