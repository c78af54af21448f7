import Crypto
import Foundation

/// The key of the audit chain (`PODID_AUDIT_KEY_FILE`). It lives outside PostgreSQL: whoever holds
/// the database's owner role can rewrite rows, but cannot compute a keyed seal, a signed pruning
/// anchor or a signed checkpoint without it.
public struct AuditKey: Sendable, Equatable {
    let key: SymmetricKey
    /// A short public id of the key (recorded with the chain and in checkpoints), never the key.
    public let id: String

    /// The least key length.
    public static let minimumBytes = 32

    /// A key from its secret bytes (at least 32).
    public init(secret: [UInt8]) throws {
        guard secret.count >= Self.minimumBytes else {
            throw DomainError(.validation, "The audit key must be at least \(Self.minimumBytes) bytes; it has \(secret.count). Generate one with `openssl rand -hex 32`.")
        }
        key = SymmetricKey(data: secret)
        id = SHA256.hash(data: Data("podid-audit-key-id\n".utf8) + secret).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// A key from a file's content: surrounding white space is not part of it.
    public init(fileContent: Data) throws {
        let text = String(decoding: fileContent, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        try self.init(secret: Array(text.utf8))
    }

    public static func == (lhs: AuditKey, rhs: AuditKey) -> Bool { lhs.id == rhs.id }

    /// HMAC-SHA256 of `text`, hex.
    public func mac(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }
}

/// The rules of the chain's versions. Version 1 (events sealed before podid had a key): SHA-256 of
/// the previous hash and the canonical event. Version 2 (from the position recorded when the first
/// keyed seal was made): HMAC-SHA256 under the audit key of the same text. Each seal records its
/// version, so older events verify under the rule they were sealed with.
public enum AuditChainRules {
    /// The seal of an event after `previous` under `version`; nil when version 2 has no key.
    public static func seal(version: Int, previous: String, canonical: String, key: AuditKey?) -> String? {
        switch version {
        case 1: return AuditChain.hash(previous: previous, canonical: canonical)
        case 2: return key?.mac(previous + "\n" + canonical)
        default: return nil
        }
    }

    /// The version a seal at `position` must have: 2 from `keyedFrom` on.
    public static func requiredVersion(position: Int64, keyedFrom: Int64?) -> Int {
        guard let keyedFrom, position >= keyedFrom else { return 1 }
        return 2
    }

    /// The signed text of a pruning anchor.
    public static func anchorText(position: Int64, hash: String, prunedEvents: Int64) -> String {
        "podid-audit-anchor\n\(position)\n\(hash)\n\(prunedEvents)"
    }
}

/// A signed record of the chain's head, written outside the database by the sealer
/// (`PODID_AUDIT_CHECKPOINTS`): deleting the newest events, or rewriting any event up to a
/// checkpoint, no longer verifies against it.
public struct AuditCheckpoint: Sendable, Equatable, Codable {
    /// The chain position of the head.
    public var position: Int64
    /// Its seal.
    public var hash: String
    /// Where the chain is keyed from (nil: not keyed).
    public var keyedFrom: Int64?
    /// The key's id.
    public var keyId: String
    /// When it was written (ISO 8601).
    public var writtenAt: String
    /// HMAC-SHA256 of the fields above under the audit key.
    public var mac: String

    /// A signed checkpoint.
    public init(position: Int64, hash: String, keyedFrom: Int64?, writtenAt: Date, key: AuditKey) {
        self.position = position
        self.hash = hash
        self.keyedFrom = keyedFrom
        self.keyId = key.id
        self.writtenAt = Timestamp.format(writtenAt)
        self.mac = ""
        self.mac = key.mac(signedText)
    }

    var signedText: String {
        "podid-audit-checkpoint\n\(position)\n\(hash)\n\(keyedFrom.map(String.init) ?? "-")\n\(keyId)\n\(writtenAt)"
    }

    /// Whether `key` signed it.
    public func isSigned(by key: AuditKey) -> Bool {
        keyId == key.id && mac == key.mac(signedText)
    }
}

/// Where checkpoints are kept, shared by the replicas' sealers and `verify`.
public protocol AuditCheckpointStore: Sendable {
    /// Writes one (atomically: a reader never sees half of it).
    func write(_ checkpoint: AuditCheckpoint) async throws
    /// The newest `limit` checkpoints by position (and any that cannot be read, as problems).
    func latest(_ limit: Int) async throws -> (checkpoints: [AuditCheckpoint], unreadable: [String])
}
