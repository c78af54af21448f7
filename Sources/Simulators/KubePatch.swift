import Foundation

/// Patch algorithms the Kubernetes simulator applies: strategic merge (core kinds), JSON Patch
/// (RFC 6902), server-side apply's merge, and field-path bookkeeping for field managers.
enum KubePatch {
    /// Merge keys of the Pod lists that strategic merge patch merges by key.
    static let mergeKeys: [String: String] = [
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
        "env": "name", "ports": "containerPort", "volumeMounts": "mountPath", "imagePullSecrets": "name",
        "readinessGates": "conditionType", "hostAliases": "ip", "conditions": "type",
    ]

    /// Applies a strategic merge patch, with the `$patch`, `$setElementOrder`, `$retainKeys` and
    /// `$deleteFromPrimitiveList` directives.
    static func strategicMerge(_ original: JSON, _ patch: JSON) -> JSON {
        guard case .object(let patchMembers) = patch else { return patch }
        if patchMembers["$patch"]?.string == "replace" {
            var replaced = patchMembers
            replaced["$patch"] = nil
            return .object(replaced)
        }
        if patchMembers["$patch"]?.string == "delete" { return .null }
        var result = original.object ?? [:]
        if let retain = patchMembers["$retainKeys"]?.array?.compactMap(\.string) {
            result = result.filter { retain.contains($0.key) }
        }
        for (key, value) in patchMembers {
            if key == "$patch" || key == "$retainKeys" || key.hasPrefix("$setElementOrder/") { continue }
            if key.hasPrefix("$deleteFromPrimitiveList/") {
                let field = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                let remove = value.array ?? []
                if let list = result[field]?.array { result[field] = .array(list.filter { !remove.contains($0) }) }
                continue
            }
            if value == .null {
                result[key] = nil
            } else if case .object = value {
                let merged = strategicMerge(result[key] ?? .object([:]), value)
                result[key] = merged == .null ? nil : merged
            } else if case .array(let items) = value, let mergeKey = mergeKeys[key], let existing = result[key]?.array {
                result[key] = .array(mergeList(existing, items, key: mergeKey))
            } else {
                result[key] = value
            }
        }
        return .object(result)
    }

    static func mergeList(_ existing: [JSON], _ patch: [JSON], key: String) -> [JSON] {
        var list = existing
        for item in patch {
            guard let id = item[key] else { continue }
            let index = list.firstIndex { $0[key] == id }
            if item["$patch"]?.string == "delete" {
                if let index { list.remove(at: index) }
            } else if let index {
                list[index] = strategicMerge(list[index], item)
            } else {
                var added = item.object ?? [:]
                added["$patch"] = nil
                list.append(.object(added))
            }
        }
        return list
    }

    /// A JSON Patch operation failed (kube-apiserver answers 422).
    struct JSONPatchError: Error {
        var message: String
    }

    /// Applies RFC 6902 operations: add, remove, replace, test, move, copy.
    static func jsonPatch(_ document: JSON, _ operations: JSON) throws -> JSON {
        guard let list = operations.array else { throw JSONPatchError(message: "the patch is not a JSON array of operations") }
        var current = document
        for operation in list {
            guard let op = operation["op"]?.string, let path = operation["path"]?.string else {
                throw JSONPatchError(message: "an operation lacks op or path")
            }
            let pointer = try parsePointer(path)
            switch op {
            case "add": current = try set(current, pointer, operation["value"] ?? .null, insert: true)
            case "replace":
                guard get(current, pointer) != nil else { throw JSONPatchError(message: "replace operation does not apply: doc is missing path: \(path)") }
                current = try set(current, pointer, operation["value"] ?? .null, insert: false)
            case "remove":
                guard get(current, pointer) != nil else { throw JSONPatchError(message: "remove operation does not apply: doc is missing path: \(path)") }
                current = try remove(current, pointer)
            case "test":
                guard get(current, pointer) == (operation["value"] ?? .null) else { throw JSONPatchError(message: "testing value \(path) failed") }
            case "move", "copy":
                guard let from = operation["from"]?.string, let value = get(current, try parsePointer(from)) else {
                    throw JSONPatchError(message: "\(op) operation does not apply: missing from")
                }
                if op == "move" { current = try remove(current, try parsePointer(from)) }
                current = try set(current, pointer, value, insert: true)
            default:
                throw JSONPatchError(message: "unexpected operation \(op)")
            }
        }
        return current
    }

    static func parsePointer(_ path: String) throws -> [String] {
        guard path.hasPrefix("/") else { throw JSONPatchError(message: "invalid path \(path)") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    static func get(_ document: JSON, _ pointer: [String]) -> JSON? {
        var current: JSON? = document
        for token in pointer {
            if let array = current?.array, let index = Int(token), array.indices.contains(index) {
                current = array[index]
            } else {
                current = current?[token]
            }
        }
        return current
    }

    static func set(_ document: JSON, _ pointer: [String], _ value: JSON, insert: Bool) throws -> JSON {
        guard let token = pointer.first else { return value }
        if pointer.count == 1 {
            if case .array(var array) = document {
                if token == "-" { array.append(value); return .array(array) }
                guard let index = Int(token), index >= 0, index <= array.count else { throw JSONPatchError(message: "invalid index \(token)") }
                if insert { array.insert(value, at: index) } else if index < array.count { array[index] = value }
                return .array(array)
            }
            guard document.object != nil else { throw JSONPatchError(message: "path parent is not an object") }
            var copy = document
            copy[token] = value
            return copy
        }
        if case .array(var array) = document {
            guard let index = Int(token), array.indices.contains(index) else { throw JSONPatchError(message: "invalid index \(token)") }
            array[index] = try set(array[index], Array(pointer.dropFirst()), value, insert: insert)
            return .array(array)
        }
        guard let child = document[token] else { throw JSONPatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))") }
        var copy = document
        copy[token] = try set(child, Array(pointer.dropFirst()), value, insert: insert)
        return copy
    }

    static func remove(_ document: JSON, _ pointer: [String]) throws -> JSON {
        guard let token = pointer.first else { return .null }
        if pointer.count == 1 {
            if case .array(var array) = document, let index = Int(token), array.indices.contains(index) {
                array.remove(at: index)
                return .array(array)
            }
            guard var members = document.object else { throw JSONPatchError(message: "path parent is not an object") }
            members[token] = nil
            return .object(members)
        }
        if case .array(var array) = document, let index = Int(token), array.indices.contains(index) {
            array[index] = try remove(array[index], Array(pointer.dropFirst()))
            return .array(array)
        }
        guard let child = document[token] else { throw JSONPatchError(message: "doc is missing path") }
        var copy = document
        copy[token] = try remove(child, Array(pointer.dropFirst()))
        return copy
    }

    // MARK: server-side apply

    /// Deep merge for apply: objects merge key by key, lists and scalars are replaced.
    static func applyMerge(_ current: JSON, _ applied: JSON) -> JSON {
        guard case .object(let appliedMembers) = applied, case .object(var result) = current else { return applied }
        for (key, value) in appliedMembers {
            result[key] = result[key].map { applyMerge($0, value) } ?? value
        }
        return .object(result)
    }

    /// The separator of field paths (keys may contain `.` and `/`).
    static let separator = "\u{1F}"

    /// The leaf fields an object sets, as paths: objects are walked, lists and scalars are leaves.
    /// Of `metadata` only labels and annotations count.
    static func leafPaths(_ object: JSON) -> Set<String> {
        var paths = Set<String>()
        func walk(_ value: JSON, _ prefix: [String]) {
            if case .object(let members) = value, !members.isEmpty {
                for (key, member) in members { walk(member, prefix + [key]) }
            } else if !prefix.isEmpty {
                paths.insert(prefix.joined(separator: separator))
            }
        }
        for (key, value) in object.object ?? [:] where key != "apiVersion" && key != "kind" {
            if key == "metadata" {
                for metaKey in ["labels", "annotations"] {
                    if let map = value[metaKey] { walk(map, ["metadata", metaKey]) }
                }
            } else {
                walk(value, [key])
            }
        }
        return paths
    }

    static func value(_ object: JSON, _ path: String) -> JSON? {
        object[path.components(separatedBy: separator)]
    }

    static func removing(_ object: JSON, _ path: String) -> JSON {
        var copy = object
        copy[path.components(separatedBy: separator)] = nil
        return copy
    }

    /// The paths whose values differ between two versions of an object.
    static func changedPaths(_ old: JSON?, _ new: JSON) -> Set<String> {
        let newPaths = leafPaths(new)
        guard let old else { return newPaths }
        return newPaths.filter { value(old, $0) != value(new, $0) }
    }

    /// `managedFields` in the FieldsV1 form kubectl shows.
    static func managedFields(_ owners: [String: (operation: String, paths: Set<String>, time: String)], apiVersion: String) -> JSON {
        .array(owners.sorted { $0.key < $1.key }.map { manager, entry in
            var fields = JSON.object([:])
            for path in entry.paths.sorted() {
                let keys = path.components(separatedBy: separator).map { "f:\($0)" }
                fields[keys] = fields[keys] ?? .object([:])
            }
            return [
                "manager": .string(manager), "operation": .string(entry.operation), "apiVersion": .string(apiVersion),
                "time": .string(entry.time), "fieldsType": "FieldsV1", "fieldsV1": fields,
            ]
        })
    }
}
