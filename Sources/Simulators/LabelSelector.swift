/// A Kubernetes label selector: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
/// comma meaning AND.
struct LabelSelector: Sendable {
    enum Requirement: Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case notExists(String)
    }

    var requirements: [Requirement] = []

    /// Parses a selector; throws with kube-apiserver's wording.
    init(_ text: String) throws {
        for part in Self.split(text) {
            let term = part.trimmingCharacters(in: .whitespaces)
            if term.isEmpty { continue }
            if term.hasPrefix("!") {
                let key = String(term.dropFirst()).trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key, term)
                requirements.append(.notExists(key))
            } else if let range = term.range(of: " notin ") ?? term.range(of: " in ") {
                let key = term[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let rest = term[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard rest.hasPrefix("("), rest.hasSuffix(")") else {
                    throw SelectorError("unable to parse requirement: found '\(rest)', expected: '('")
                }
                let values = Set(rest.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                try Self.checkKey(key, term)
                for value in values { try Self.checkValue(value) }
                requirements.append(term[range].contains("notin") ? .notIn(key, values) : .isIn(key, values))
            } else if let range = term.range(of: "!=") {
                let key = term[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let value = term[range.upperBound...].trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key, term)
                try Self.checkValue(value)
                requirements.append(.notEquals(key, value))
            } else if let range = term.range(of: "==") ?? term.range(of: "=") {
                let key = term[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let value = term[range.upperBound...].trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key, term)
                try Self.checkValue(value)
                requirements.append(.equals(key, value))
            } else {
                try Self.checkKey(term, term)
                requirements.append(.exists(term))
            }
        }
    }

    /// Whether `labels` satisfy every requirement.
    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): return labels[key] == value
            case .notEquals(let key, let value): return labels[key] != value
            case .isIn(let key, let values): return labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): return !(labels[key].map(values.contains) ?? false)
            case .exists(let key): return labels[key] != nil
            case .notExists(let key): return labels[key] == nil
            }
        }
    }

    /// Splits on commas outside parentheses.
    static func split(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == "," && depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    static func checkKey(_ key: String, _ term: String) throws {
        let name = key.split(separator: "/").last.map(String.init) ?? key
        guard !key.isEmpty, name.count <= 63, isQualifiedName(name) else {
            throw SelectorError("unable to parse requirement: invalid label key \"\(key)\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
        }
    }

    static func checkValue(_ value: String) throws {
        guard value.isEmpty || (value.count <= 63 && isQualifiedName(value)) else {
            throw SelectorError("unable to parse requirement: invalid label value: \"\(value)\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
        }
    }

    /// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
    static func isQualifiedName(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last, first.isASCII && (first.isLetter || first.isNumber),
              last.isASCII && (last.isLetter || last.isNumber)
        else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }
}

/// A field selector: `a=b`, `a==b`, `a!=b`, comma meaning AND, on the fields a kind supports.
struct FieldSelector: Sendable {
    var terms: [(field: String, value: String, equal: Bool)] = []

    init(_ text: String, supported: Set<String>) throws {
        for part in text.split(separator: ",").map(String.init) where !part.isEmpty {
            let (field, value, equal): (String, String, Bool)
            if let range = part.range(of: "!=") {
                (field, value, equal) = (String(part[..<range.lowerBound]), String(part[range.upperBound...]), false)
            } else if let range = part.range(of: "==") ?? part.range(of: "=") {
                (field, value, equal) = (String(part[..<range.lowerBound]), String(part[range.upperBound...]), true)
            } else {
                throw SelectorError("invalid field selector: '\(part)'")
            }
            guard supported.contains(field) else { throw SelectorError("field label not supported: \(field)") }
            terms.append((field, value, equal))
        }
    }

    func matches(_ object: JSON) -> Bool {
        terms.allSatisfy { term in
            let actual: String
            switch object[term.field.split(separator: ".").map(String.init)] {
            case .string(let text)?: actual = text
            case .bool(let flag)?: actual = flag ? "true" : "false"
            case .int(let number)?: actual = String(number)
            default: actual = ""
            }
            return (actual == term.value) == term.equal
        }
    }
}

/// A selector that cannot be parsed (400 BadRequest).
struct SelectorError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
