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
            let original = Array(box.buffer.readableBytesView)
            // Spliced into the text rather than re-serialized: Foundation's JSONSerialization with
            // sorted keys compares keys through ICU and cost more than the rest of the request.
            let data = JSONNullSplicer.splice(original, keys: state.nullKeys, itemKeys: state.itemNullKeys) ?? original
            response.body = .init(byteBuffer: ByteBuffer(bytes: data))
            response.headers[.contentLength] = String(data.count)
        }
        return response
    }
}

/// Adds `"key":null` members to a JSON text without re-serializing it: to the top-level object for
/// each of `keys` it lacks, and to each object of its top-level `items` array for each of `itemKeys`.
enum JSONNullSplicer {
    struct Frame {
        var isObject: Bool
        var start: Int
        var expectKey = true
        var lastKey: [UInt8] = []
        var keys: Set<[UInt8]> = []
        var isItemsArray = false
        var isItem = false
    }

    /// The spliced text, or nil when `bytes` is not a JSON object.
    static func splice(_ bytes: [UInt8], keys: [String], itemKeys: [String]) -> [UInt8]? {
        var stack: [Frame] = []
        var insertions: [(at: Int, members: [String], empty: Bool)] = []
        var index = 0
        var sawTop = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                var end = index + 1
                while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                    end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard end < bytes.count else { return nil }
                if var frame = stack.last, frame.isObject, frame.expectKey {
                    let key = Array(bytes[(index + 1)..<end])
                    frame.keys.insert(key)
                    frame.lastKey = key
                    frame.expectKey = false
                    stack[stack.count - 1] = frame
                }
                index = end
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard sawTop || (byte == UInt8(ascii: "{") && stack.isEmpty) else { return nil }
                sawTop = true
                var frame = Frame(isObject: byte == UInt8(ascii: "{"), start: index)
                if let parent = stack.last {
                    frame.isItemsArray = !frame.isObject && stack.count == 1 && parent.lastKey == Array("items".utf8)
                    frame.isItem = frame.isObject && parent.isItemsArray
                }
                stack.append(frame)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard let frame = stack.popLast() else { return nil }
                let wanted = stack.isEmpty ? keys : frame.isItem ? itemKeys : []
                let missing = wanted.filter { !frame.keys.contains(Array($0.utf8)) }
                if frame.isObject && !missing.isEmpty {
                    insertions.append((frame.start + 1, Array(Set(missing)).sorted(), frame.keys.isEmpty))
                }
            case UInt8(ascii: ","):
                if var frame = stack.last, frame.isObject {
                    frame.expectKey = true
                    stack[stack.count - 1] = frame
                }
            default:
                break
            }
            index += 1
        }
        guard sawTop, stack.isEmpty else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + insertions.count * 24)
        var copied = 0
        for insertion in insertions.sorted(by: { $0.at < $1.at }) {
            result.append(contentsOf: bytes[copied..<insertion.at])
            let members = insertion.members.map { "\"\($0)\":null" }.joined(separator: ",")
            result.append(contentsOf: Array((members + (insertion.empty ? "" : ",")).utf8))
            copied = insertion.at
        }
        result.append(contentsOf: bytes[copied...])
        return result
    }
}
