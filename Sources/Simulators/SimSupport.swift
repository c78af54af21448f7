import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// One request a simulator answered, for tests and drills to read.
public struct SimRequestRecord: Sendable, Codable, Equatable {
    /// When the answer was sent.
    public var time: String
    public var method: String
    public var path: String
    public var query: String
    public var operation: String
    public var status: Int
    public var requestId: String
    /// The request body (up to 64 KiB), for tests that check what clients send.
    public var body: String?
    /// When the request arrived (before it was answered at `time`): a request that arrived before
    /// an earlier 429 was answered was already in flight, not a retry.
    public var receivedAt: String?
    /// The client's `x-ms-client-request-id`, kept by podid across the attempts of one call.
    public var clientRequestId: String?
    /// The client's `User-Agent` (podid's names its process).
    public var userAgent: String?
}

/// The requests a simulator answered, newest last (bounded).
public final class SimRequestLog: Sendable {
    let records = Mutex<[SimRequestRecord]>([])
    let limit: Int

    /// A log keeping at most `limit` records.
    public init(limit: Int = 100_000) {
        self.limit = limit
    }

    func append(_ record: SimRequestRecord) {
        records.withLock {
            $0.append(record)
            if $0.count > limit { $0.removeFirst($0.count - limit) }
        }
    }

    /// Every record.
    public var all: [SimRequestRecord] { records.withLock { $0 } }

    /// Forgets every record.
    public func clear() { records.withLock { $0.removeAll() } }
}

/// A fault rule for one operation (or `*`): error rates and added latency.
public struct SimFaultRule: Sendable, Codable, Equatable {
    /// The operation, such as `identity.put`, or `*` for all.
    public var operation: String
    /// Share of requests answered 429 with Retry-After (0…1).
    public var throttleRate: Double?
    /// Share of requests answered 500 (0…1).
    public var errorRate: Double?
    /// Milliseconds added before answering.
    public var latencyMs: Int?
    /// Seconds in the Retry-After of injected 429s.
    public var retryAfterSeconds: Int?
    /// Share of requests refused with 403, as when podid's own identity lacks a role (0…1).
    public var forbiddenRate: Double?

    public init(operation: String, throttleRate: Double? = nil, errorRate: Double? = nil, latencyMs: Int? = nil,
                retryAfterSeconds: Int? = nil, forbiddenRate: Double? = nil) {
        self.operation = operation
        self.throttleRate = throttleRate
        self.errorRate = errorRate
        self.latencyMs = latencyMs
        self.retryAfterSeconds = retryAfterSeconds
        self.forbiddenRate = forbiddenRate
    }

    func applies(to operation: String) -> Bool {
        self.operation == "*" || self.operation == operation
            || (self.operation.hasSuffix(".*") && operation.hasPrefix(String(self.operation.dropLast(1))))
    }
}

/// What a fault rule decided for one request.
enum InjectedFault {
    case none
    case throttle(retryAfter: Int)
    case error
}

/// Reads the body of a request as bytes (simulators accept up to 3 MiB, as kube-apiserver does).
func bodyBytes(_ request: Request) async throws -> [UInt8] {
    var request = request
    let buffer = try await request.collectBody(upTo: 3 << 20)
    return Array(buffer.readableBytesView)
}

/// A JSON response.
func jsonResponse(_ status: HTTPResponse.Status, _ body: JSON, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body.data)))
}

/// A plain-text response.
func textResponse(_ status: HTTPResponse.Status, _ text: String, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "text/plain; charset=utf-8"
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Decodes `application/x-www-form-urlencoded` text.
func formFields(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for pair in text.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map {
            String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
        }
        if let key = parts.first { fields[key] = parts.count > 1 ? parts[1] : "" }
    }
    return fields
}

/// The query parameters of a request (last value wins).
func queryItems(_ request: Request) -> [String: String] {
    var items: [String: String] = [:]
    for (key, value) in request.uri.queryParameters {
        items[String(key)] = String(value)
    }
    return items
}

/// RFC 3339 with whole seconds, as Kubernetes writes timestamps.
func kubeTimestamp(_ date: Date = Date()) -> String {
    date.formatted(Date.ISO8601FormatStyle())
}

/// The admin paths both simulators share: the request log and the settings. Nil for other paths.
func commonAdmin<Settings: Codable & Sendable>(
    _ method: HTTPRequest.Method, _ path: String, body: [UInt8], log: SimRequestLog, current: Settings,
    apply: (Settings) -> Void
) -> Response? {
    func encode(_ value: some Encodable) -> JSON { JSON.parse((try? JSONEncoder().encode(value)) ?? Data()) ?? .null }
    switch (method, path) {
    case (.get, "requests"):
        return jsonResponse(.ok, encode(log.all.filter { !$0.path.hasPrefix("/_sim") }))
    case (.delete, "requests"):
        log.clear()
        return Response(status: .noContent)
    case (.get, "settings"):
        return jsonResponse(.ok, encode(current))
    case (.put, "settings"), (.patch, "settings"):
        guard let patch = JSON.parse(body), patch.object != nil else {
            return jsonResponse(.badRequest, ["error": "the body must be a JSON object of settings"])
        }
        guard let merged = try? JSONDecoder().decode(Settings.self, from: encode(current).mergePatched(with: patch).data) else {
            return jsonResponse(.badRequest, ["error": "unknown or mistyped settings; see GET /_sim/settings"])
        }
        apply(merged)
        return jsonResponse(.ok, encode(merged))
    default:
        return nil
    }
}

/// The body of a request for the request log (bodies are already buffered by then), without
/// secrets: form fields named like secrets or assertions are masked.
func loggedBody(_ request: Request) async -> String? {
    guard let bytes = try? await bodyBytes(request), !bytes.isEmpty else { return nil }
    var text = String(decoding: bytes.prefix(65_536), as: UTF8.self)
    if request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
        text = text.split(separator: "&").map { pair in
            let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return ["client_secret", "client_assertion"].contains(key) ? "\(key)=***" : String(pair)
        }.joined(separator: "&")
    }
    return text
}
