import Crypto
import Foundation

/// A bearer token as stored: never the secret, only its SHA-256.
public struct TokenRecord: Sendable, Equatable, Codable {
    /// The token's id.
    public var id: UUID
    /// A name such as `ci-deploy`.
    public var name: String
    /// What the token may do.
    public var role: Role
    /// The team, for `maintainer` and `viewer`.
    public var team: String?
    /// When the token stops working.
    public var expiresAt: Date?
    /// When the token was created.
    public var createdAt: Date
    /// The actor name of the token that created this one.
    public var createdBy: String

    /// Creates a token record.
    public init(id: UUID, name: String, role: Role, team: String?, expiresAt: Date?, createdAt: Date, createdBy: String) {
        self.id = id
        self.name = name
        self.role = role
        self.team = team
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.createdBy = createdBy
    }

    /// The principal this token authenticates as.
    public var principal: Principal {
        Principal(tokenId: id, tokenName: name, role: role, team: team, expiresAt: expiresAt)
    }
}

/// Token secrets: generation and hashing.
public enum TokenSecret {
    /// The prefix of every secret podid issues, so that leaked tokens are easy to recognise.
    public static let prefix = "podid_"

    /// A new secret: the prefix and 32 random bytes, base64url-encoded.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return prefix + Base64URL.encode(bytes)
    }

    /// Whether `text` has the form of a secret podid issues (the prefix and 43 base64url
    /// characters): what nothing may store in plain text.
    public static func isSecret(_ text: String) -> Bool {
        guard text.hasPrefix(prefix), text.utf8.count == prefix.utf8.count + 43 else { return false }
        return text.utf8.dropFirst(prefix.utf8.count).allSatisfy { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
        }
    }

    /// The SHA-256 of a secret: what the database stores and looks tokens up by.
    public static func hash(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }
}

/// Base64url without padding (RFC 4648 §5).
public enum Base64URL {
    /// Encodes bytes.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes text; nil when it is not base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") else { return nil }
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }
}

/// A request to create a token.
public struct NewToken: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var expiresAt: Date?

    /// Creates a token request.
    public init(name: String, role: Role, expiresAt: Date?) {
        self.name = name
        self.role = role
        self.expiresAt = expiresAt
    }
}
