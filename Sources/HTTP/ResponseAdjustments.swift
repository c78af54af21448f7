import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// What a handler wants added to its response beyond what the generated code writes: header values
/// verbatim (the OpenAPI runtime percent-encodes header values, which would turn `"3"` into `%223%22`)
/// and top-level JSON keys that must be present as `null` (the generated encoders omit nil values,
/// while the contract promises `"nextCursor": null` on the last page).
public final class ResponseAdjustments: Sendable {
    struct State {
        var headers: [(HTTPField.Name, String)] = []
        var nullKeys: [String] = []
        var itemNullKeys: [String] = []
    }

    let state = Mutex(State())

    /// The adjustments of the request being handled by the current task.
    @TaskLocal public static var current: ResponseAdjustments?

    /// Sets a response header on the current request.
    public static func setHeader(_ name: HTTPField.Name, _ value: String) {
        current?.state.withLock { $0.headers.append((name, value)) }
    }

    /// Makes sure the current JSON response has `key` at its top level, as `null` when absent.
    public static func ensureKey(_ key: String) {
        current?.state.withLock { $0.nullKeys.append(key) }
    }

    /// Makes sure every object in the current JSON response's `items` has `key`, as `null` when absent.
    public static func ensureItemKey(_ key: String) {
        current?.state.withLock { $0.itemNullKeys.append(key) }
    }
}

/// Applies `ResponseAdjustments` to the handler's response; the innermost middleware.
public struct ResponseAdjustmentsMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let adjustments = ResponseAdjustments()
        var response = try await ResponseAdjustments.$current.withValue(adjustments) {
            try await next(request, context)
        }
        let state = adjustments.state.withLock { $0 }
        for (name, value) in state.headers { response.headers[name] = value }
        if !state.nullKeys.isEmpty || !state.itemNullKeys.isEmpty {
            let box = CollectedBody()
            try await response.body.write(CollectingWriter(box: box))
            var data = Data(box.buffer.readableBytesView)
            if var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
                for key in state.nullKeys where object[key] == nil { object[key] = NSNull() }
                if !state.itemNullKeys.isEmpty, let items = object["items"] as? [[String: Any]] {
                    object["items"] = items.map { item in
                        var item = item
                        for key in state.itemNullKeys where item[key] == nil { item[key] = NSNull() }
                        return item
                    }
                }
                if let patched = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                    data = patched
                }
            }
            response.body = .init(byteBuffer: ByteBuffer(bytes: data))
            response.headers[.contentLength] = String(data.count)
        }
        return response
    }
}
