import Core
import Foundation

/// Audit checkpoints as files in a directory that every replica and `podid audit verify` share (a
/// volume the database's administrators cannot write): `checkpoint-<position>.json`, written to a
/// temporary name and renamed, so that a reader never sees half a file. The newest `keep` stay.
public struct DirectoryCheckpoints: AuditCheckpointStore {
    /// The directory.
    public let directory: URL
    /// How many files are kept.
    public let keep: Int

    /// Checkpoints in `path` (created when missing).
    public init(path: String, keep: Int = 1000) throws {
        directory = URL(fileURLWithPath: path, isDirectory: true)
        self.keep = keep
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    static let prefix = "checkpoint-"

    static func name(_ position: Int64) -> String {
        let digits = String(position)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".json"
    }

    public func write(_ checkpoint: AuditCheckpoint) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(checkpoint)
        let temporary = directory.appendingPathComponent(".tmp-\(UUID().uuidString)")
        try data.write(to: temporary)
        let target = directory.appendingPathComponent(Self.name(checkpoint.position))
        if rename(temporary.path, target.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw DomainError(.unavailable, "Writing the audit checkpoint \(target.path) failed: \(String(cString: strerror(code))).")
        }
        let names = try files()
        if names.count > keep {
            for old in names.prefix(names.count - keep) { try? FileManager.default.removeItem(at: directory.appendingPathComponent(old)) }
        }
    }

    public func latest(_ limit: Int) async throws -> (checkpoints: [AuditCheckpoint], unreadable: [String]) {
        var checkpoints: [AuditCheckpoint] = []
        var unreadable: [String] = []
        for name in try files().suffix(limit).reversed() {
            let url = directory.appendingPathComponent(name)
            if let data = try? Data(contentsOf: url), let checkpoint = try? JSONDecoder().decode(AuditCheckpoint.self, from: data),
               Self.name(checkpoint.position) == name {
                checkpoints.append(checkpoint)
            } else {
                unreadable.append(url.path)
            }
        }
        return (checkpoints, unreadable)
    }

    /// The checkpoint files, oldest first (names sort by position).
    func files() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(Self.prefix) && $0.hasSuffix(".json") }.sorted()
    }
}
