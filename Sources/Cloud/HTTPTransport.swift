import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP exchange, as the Azure and Kubernetes clients see it.
struct HTTPExchange: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var json: JSONValue? {
        JSONValue.parse(bytes: body)
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Sends requests through an AsyncHTTPClient, turning transport failures into retryable
/// `UpstreamError`s.
struct HTTPTransport: Sendable {
    let client: HTTPClient
    let service: UpstreamError.Service
    var timeout: TimeAmount = .seconds(30)
    /// The largest answer read (ARM and Kubernetes lists stay far below it).
    var maxBody = 32 << 20

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> HTTPExchange {
        try Self.checkLoopback(url)
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let buffer = try await response.body.collect(upTo: maxBody)
            return HTTPExchange(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                                body: Array(buffer.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw UpstreamError(service: service, status: nil, code: "Timeout", message: "\(method.rawValue) \(Self.redacted(url)) timed out", retryable: true)
        } catch let error as UpstreamError {
            throw error
        } catch {
            throw UpstreamError(service: service, status: nil, code: "ConnectionFailed",
                                message: "\(method.rawValue) \(Self.redacted(url)) failed: \(error)", retryable: true)
        }
    }

    /// With `PODID_LOOPBACK_ONLY` set (tests, scripts and dev), a request to any address but
    /// loopback is refused before it is sent: nothing here may reach a real cloud by mistake.
    static func checkLoopback(_ url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard environment["PODID_LOOPBACK_ONLY"] != nil else { return }
        let host = URL(string: url)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) ?? ""
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        if !loopback {
            throw UpstreamError(service: .azure, status: nil, code: "NonLoopbackRefused",
                                message: "PODID_LOOPBACK_ONLY is set and \(redacted(url)) is not a loopback address", retryable: false)
        }
    }

    /// A URL without its query (which may carry secrets in some flows).
    static func redacted(_ url: String) -> String {
        url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    }

    /// Seconds in a `Retry-After` header (delta-seconds form).
    static func retryAfter(_ value: String?) -> Duration? {
        guard let value, let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 else { return nil }
        return .milliseconds(Int64(seconds * 1000))
    }
}

/// Percent-encodes a form or query value.
func formEncode(_ value: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
}
