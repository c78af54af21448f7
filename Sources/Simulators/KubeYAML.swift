/// What kube-apiserver's YAML reader refuses in a body that Yams accepts.
///
/// kube-apiserver reads `application/apply-patch+yaml` (and YAML request bodies) with go-yaml v2, a
/// YAML 1.1 parser; Yams (libyaml, YAML 1.2) knows more escapes in double-quoted scalars, `\/` among
/// them — the escape `JSONEncoder` writes for every `/` by default. A body with such an escape gets
/// the real server's 400 here too, so that a client sending it fails against the simulator as it
/// would against a cluster.
enum GoYAML {
    /// The characters go-yaml v2 accepts after a backslash in a double-quoted scalar.
    static let knownEscapes: Set<UInt8> = Set("0abt\tnvfre \"'\\N_LPxuU".utf8)
    /// The bytes after which a scalar may start (a quote elsewhere is part of a plain scalar).
    static let scalarStarts: Set<UInt8> = Set(":[{,-?\n".utf8)

    /// go-yaml v2's error for the first unknown escape in `body`, or nil when there is none:
    /// `yaml: found unknown escape character`, with `line N: ` before the problem when it is not on
    /// the first line (as go-yaml reports scanner errors).
    static func unknownEscape(in body: [UInt8]) -> String? {
        enum State { case plain, doubleQuoted, singleQuoted, comment }
        var state = State.plain
        var line = 0
        // The last byte that was not a space or tab in the plain state: a quote opens a quoted
        // scalar only where a scalar may start (a quote inside a plain scalar is a plain character).
        var previous: UInt8 = UInt8(ascii: "\n")
        var index = 0
        while index < body.count {
            let byte = body[index]
            if byte == UInt8(ascii: "\n") { line += 1 }
            switch state {
            case .plain:
                let afterBlank = index == 0 || [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n")].contains(body[index - 1])
                if byte == UInt8(ascii: "#") && afterBlank {
                    state = .comment
                } else if (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")) && scalarStarts.contains(previous) {
                    state = byte == UInt8(ascii: "\"") ? .doubleQuoted : .singleQuoted
                }
                if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") { previous = byte }
            case .doubleQuoted:
                if byte == UInt8(ascii: "\\") {
                    guard index + 1 < body.count else { return nil }
                    let escaped = body[index + 1]
                    if !knownEscapes.contains(escaped) && escaped != UInt8(ascii: "\n") && escaped != UInt8(ascii: "\r") {
                        return line == 0 ? "yaml: found unknown escape character" : "yaml: line \(line + 1): found unknown escape character"
                    }
                    if escaped == UInt8(ascii: "\n") { line += 1 }
                    index += 1
                } else if byte == UInt8(ascii: "\"") {
                    state = .plain
                    previous = byte
                }
            case .singleQuoted:
                if byte == UInt8(ascii: "'") {
                    if index + 1 < body.count && body[index + 1] == UInt8(ascii: "'") {
                        index += 1
                    } else {
                        state = .plain
                        previous = byte
                    }
                }
            case .comment:
                if byte == UInt8(ascii: "\n") {
                    state = .plain
                    previous = byte
                }
            }
            index += 1
        }
        return nil
    }
}
