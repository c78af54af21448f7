import Foundation

/// A JSON document as the simulators store objects: Kubernetes objects and ARM resources are kept
/// as the JSON they were given (after pruning), the way the real servers keep them.
public enum JSON: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON bytes; nil when they are not JSON.
    public static func parse(_ data: some Collection<UInt8>) -> JSON? {
        try? JSONDecoder().decode(JSON.self, from: Data(data))
    }

    /// Compact JSON with sorted keys.
    public var data: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("null".utf8)
    }

    /// The value at `key` of an object (nil otherwise); setting on a non-object makes it one.
    public subscript(key: String) -> JSON? {
        get {
            if case .object(let object) = self { return object[key] }
            return nil
        }
        set {
            var object: [String: JSON]
            if case .object(let existing) = self { object = existing } else { object = [:] }
            object[key] = newValue
            self = .object(object)
        }
    }

    /// The value at a path of object keys.
    public subscript(path: [String]) -> JSON? {
        get {
            var current: JSON? = self
            for key in path { current = current?[key] }
            return current
        }
        set {
            guard let first = path.first else {
                self = newValue ?? .null
                return
            }
            if path.count == 1 {
                self[first] = newValue
            } else {
                var child = self[first] ?? .object([:])
                child[Array(path.dropFirst())] = newValue
                self[first] = child
            }
        }
    }

    /// The string value, if this is a string.
    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer value, if this is a whole number.
    public var int: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value == value.rounded(): return Int64(value)
        default: return nil
        }
    }

    /// The members, if this is an object.
    public var object: [String: JSON]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The elements, if this is an array.
    public var array: [JSON]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// A string-to-string map (labels, annotations, tags); nil values and non-strings are skipped.
    public var stringMap: [String: String] {
        var map: [String: String] = [:]
        for (key, value) in object ?? [:] { if let text = value.string { map[key] = text } }
        return map
    }

    /// JSON from a string map.
    public static func map(_ map: [String: String]) -> JSON {
        .object(map.mapValues { .string($0) })
    }

    /// RFC 7386 merge patch: objects merge key by key, `null` removes a key, anything else replaces.
    public func mergePatched(with patch: JSON) -> JSON {
        guard case .object(let patchMembers) = patch else { return patch }
        var result = object ?? [:]
        for (key, value) in patchMembers {
            if value == .null {
                result[key] = nil
            } else if let existing = result[key], case .object = value {
                result[key] = existing.mergePatched(with: value)
            } else {
                result[key] = JSON.null.mergePatched(with: value)
            }
        }
        return .object(result)
    }
}

extension JSON: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }

    public init(integerLiteral value: Int64) {
        self = .int(value)
    }

    public init(arrayLiteral elements: JSON...) {
        self = .array(elements)
    }
}
