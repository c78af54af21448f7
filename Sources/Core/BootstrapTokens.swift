import Foundation

/// The bootstrap admin tokens from configuration: `PODID_ADMIN_TOKEN`, and the lines of
/// `PODID_ADMIN_TOKEN_FILE`, which podid reads again at most a second after a request needs it, so
/// that rotating the token is editing the file (add the new line, move clients, remove the old one).
public struct BootstrapTokens: Sendable {
    /// Why the token file cannot be used.
    public struct FileError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The fixed token (`PODID_ADMIN_TOKEN`).
    public var token: String?
    /// The token file (`PODID_ADMIN_TOKEN_FILE`).
    public var file: String?

    /// Creates the set.
    public init(token: String?, file: String? = nil) {
        self.token = token
        self.file = file
    }

    /// Whether `token` may be a bootstrap or metrics token: 32 to 512 visible ASCII characters.
    public static func isValid(_ token: String) -> Bool {
        (32...512).contains(token.utf8.count) && token.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }
    }

    /// The tokens in `file`: one per non-empty line (`#` starts a comment line); at least one, each
    /// valid. The error names the line, never its content.
    public static func read(file: String) throws -> [String] {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw FileError(message: "cannot read '\(file)': it must be a readable UTF-8 file with one token per line")
        }
        var tokens: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard isValid(trimmed) else {
                throw FileError(message: "line \(number + 1) of '\(file)' is not a token: each line must be 32 to 512 visible ASCII characters")
            }
            tokens.append(trimmed)
        }
        guard !tokens.isEmpty else { throw FileError(message: "'\(file)' holds no token: write one token per line") }
        return tokens
    }
}
