import Core
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `Idempotency-Key` on POST: the same key and body within 24 hours replays the first response
/// (marked `Idempotent-Replayed: true`); the same key with another body is a 422; a key whose first
/// request is still running is a 409. Keys are per caller. Responses of 5xx and thrown errors are not
/// kept, so a retry runs again. Token secrets in a response are never kept: a replay of a token's
/// creation answers without its `token`.
public struct IdempotencyMiddleware<Context: RequestContext>: RouterMiddleware {
    let store: any IdempotencyStore

    /// Creates the middleware.
    public init(store: any IdempotencyStore) {
        self.store = store
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard request.method == .post, let key = request.headers[.idempotencyKey] else {
            return try await next(request, context)
        }
        guard !key.isEmpty, key.utf8.count <= 255, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw DomainError(.badRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                              fields: [FieldProblem("Idempotency-Key", "must be 1 to 255 visible ASCII characters")])
        }
        guard let principal = RequestInfo.current.principal else { return try await next(request, context) }
        let scope = principal.tokenId?.uuidString.lowercased() ?? "bootstrap-admin"
        var request = request
        let body = try await request.collectBody(upTo: BodyLimitMiddleware<Context>.limit)
        var hasher = SHA256()
        hasher.update(data: Array("\(request.method.rawValue) \(request.uri.path)\n".utf8))
        hasher.update(data: Array(body.readableBytesView))
        let fingerprint = hasher.finalize().map { String(format: "%02x", $0) }.joined()

        switch try await store.start(scope: scope, key: key, fingerprint: fingerprint) {
        case .mismatch:
            throw DomainError(.validation, "Idempotency-Key '\(key)' was used with a different request; use a new key for a new request.",
                              fields: [FieldProblem("Idempotency-Key", "was used with a different request body")])
        case .inProgress:
            throw DomainError(.conflict, "A request with Idempotency-Key '\(key)' is still being processed; retry shortly.")
        case .replay(let stored):
            var headers = HTTPFields()
            for (name, value) in stored.headers {
                if let name = HTTPField.Name(name) { headers[name] = value }
            }
            headers[.idempotentReplayed] = "true"
            return Response(status: .init(code: stored.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(bytes: stored.body)))
        case .started:
            let response: Response
            do {
                response = try await next(request, context)
            } catch {
                try? await store.abandon(scope: scope, key: key)
                throw error
            }
            if response.status.code >= 500 {
                try? await store.abandon(scope: scope, key: key)
                return response
            }
            let box = CollectedBody()
            try await response.body.write(CollectingWriter(box: box))
            let collected = box.buffer
            var headers: [String: String] = [:]
            for field in response.headers where keptHeaders.contains(field.name) {
                headers[field.name.canonicalName] = field.value
            }
            // A secret is shown once: the stored copy, which a replay answers with, has none.
            try await store.complete(
                scope: scope, key: key,
                response: StoredResponse(status: response.status.code, headers: headers,
                                         body: Self.withoutSecrets(Array(collected.readableBytesView))))
            var replayable = response
            replayable.body = .init(byteBuffer: collected)
            return replayable
        }
    }
}

extension IdempotencyMiddleware {
    /// `body` without the members whose value is a token secret (`TokenSecret.isSecret`), at any
    /// depth: what the idempotency store may keep. A body that is no JSON is kept as it is.
    static func withoutSecrets(_ body: [UInt8]) -> [UInt8] {
        guard let text = String(bytes: body, encoding: .utf8), text.contains(TokenSecret.prefix),
              let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        else { return body }
        func strip(_ value: Any) -> Any? {
            switch value {
            case let string as String: return TokenSecret.isSecret(string) ? nil : string
            case let object as [String: Any]: return object.compactMapValues(strip)
            case let array as [Any]: return array.compactMap(strip)
            default: return value
            }
        }
        guard let stripped = strip(value),
              let data = try? JSONSerialization.data(withJSONObject: stripped, options: [.fragmentsAllowed, .sortedKeys])
        else { return Array("{}".utf8) }
        return Array(data)
    }
}

/// The response headers an idempotent replay repeats.
private let keptHeaders: Set<HTTPField.Name> = [.contentType, .location, .eTag]

/// The buffer a `CollectingWriter` fills; a class because `ResponseBody.write` consumes its writer.
final class CollectedBody {
    var buffer = ByteBuffer()
}

/// Collects a response body into one buffer.
struct CollectingWriter: ResponseBodyWriter {
    let box: CollectedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        box.buffer.writeBuffer(&buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
