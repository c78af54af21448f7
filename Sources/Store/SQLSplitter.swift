/// Splits a SQL file into statements, because PostgresNIO's extended protocol runs one statement per
/// query. Semicolons inside quoted strings, quoted identifiers, dollar-quoted bodies and comments do
/// not split.
public enum SQLSplitter {
    /// The statements of `sql`, trimmed, without empty ones or ones that hold only comments.
    public static func split(_ sql: String) -> [String] {
        let chars = Array(sql.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var hasCode = false
        var index = 0

        func flush() {
            let text = String(current).trimmingWhitespace()
            if hasCode && !text.isEmpty { statements.append(text) }
            current = String.UnicodeScalarView()
            hasCode = false
        }
        func append(_ from: Int, _ to: Int) {
            current.append(contentsOf: chars[from..<min(to, chars.count)])
        }

        while index < chars.count {
            let c = chars[index]
            let next: Unicode.Scalar? = index + 1 < chars.count ? chars[index + 1] : nil
            switch c {
            case "-" where next == "-":
                let end = chars[index...].firstIndex(of: "\n") ?? chars.count
                append(index, end)
                index = end
            case "/" where next == "*":
                // Block comments nest in PostgreSQL.
                var depth = 1
                var j = index + 2
                while j < chars.count && depth > 0 {
                    if chars[j] == "/" && j + 1 < chars.count && chars[j + 1] == "*" { depth += 1; j += 2 }
                    else if chars[j] == "*" && j + 1 < chars.count && chars[j + 1] == "/" { depth -= 1; j += 2 }
                    else { j += 1 }
                }
                append(index, j)
                index = j
            case "'", "\"":
                // E'...' strings allow backslash escapes; doubled quotes escape in all forms.
                let escapes = c == "'" && index > 0 && (chars[index - 1] == "E" || chars[index - 1] == "e")
                    && (index < 2 || !isIdentifierChar(chars[index - 2]))
                var j = index + 1
                while j < chars.count {
                    if escapes && chars[j] == "\\" { j += 2; continue }
                    if chars[j] == c {
                        if j + 1 < chars.count && chars[j + 1] == c { j += 2; continue }
                        break
                    }
                    j += 1
                }
                append(index, j + 1)
                hasCode = true
                index = j + 1
            case "$":
                if let tagEnd = dollarTagEnd(chars, index), index == 0 || !isIdentifierChar(chars[index - 1]) {
                    let tag = Array(chars[index...tagEnd])
                    var j = tagEnd + 1
                    var close = chars.count
                    while j + tag.count <= chars.count {
                        if chars[j] == "$" && Array(chars[j..<(j + tag.count)]) == tag { close = j + tag.count; break }
                        j += 1
                    }
                    append(index, close)
                    hasCode = true
                    index = close
                } else {
                    current.append(c)
                    hasCode = true
                    index += 1
                }
            case ";":
                flush()
                index += 1
            default:
                current.append(c)
                if !c.properties.isWhitespace { hasCode = true }
                index += 1
            }
        }
        flush()
        return statements
    }

    /// The index of the closing `$` of a dollar-quote tag starting at `start` (`$$` or `$tag$`).
    private static func dollarTagEnd(_ chars: [Unicode.Scalar], _ start: Int) -> Int? {
        var j = start + 1
        while j < chars.count {
            let c = chars[j]
            if c == "$" { return j }
            // A tag is an identifier that does not start with a digit; `$1` is a parameter.
            if !isIdentifierChar(c) || (j == start + 1 && c.properties.numericType != nil) { return nil }
            j += 1
        }
        return nil
    }

    private static func isIdentifierChar(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || ("0"..."9").contains(c)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
