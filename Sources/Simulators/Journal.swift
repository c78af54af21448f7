import Foundation
import Synchronization

/// The simulators' state: collections of JSON documents by key, written through to a journal file
/// (one JSON line per change) so that a restarted or killed dev environment keeps what it had.
/// Without a file it is memory only (tests).
public final class SimStore: Sendable {
    struct Change: Codable {
        /// Collection.
        var c: String
        /// Key.
        var k: String
        /// The new value, or nil for a removal.
        var v: JSON?
    }

    let file: URL?
    let state: Mutex<[String: [String: JSON]]>

    /// A store journalling to `file`, replaying what the file already holds; memory only when nil.
    /// A journal with more lines than the state has documents is compacted first.
    public init(file: URL?) throws {
        self.file = file
        var collections: [String: [String: JSON]] = [:]
        var lines = 0
        if let file, let data = try? Data(contentsOf: file) {
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                // A torn last line (a kill mid-write) is skipped; every earlier line is whole.
                guard let change = try? JSONDecoder().decode(Change.self, from: Data(line)) else { continue }
                lines += 1
                collections[change.c, default: [:]][change.k] = change.v
            }
        }
        state = Mutex(collections)
        if let file {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            let documents = collections.values.reduce(0) { $0 + $1.count }
            if lines > 2 * documents + 100 || !FileManager.default.fileExists(atPath: file.path) {
                try compact(collections, to: file)
            }
        }
    }

    /// Rewrites the journal as one line per live document.
    func compact(_ collections: [String: [String: JSON]], to file: URL) throws {
        var data = Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (collection, documents) in collections.sorted(by: { $0.key < $1.key }) {
            for (key, value) in documents.sorted(by: { $0.key < $1.key }) {
                data.append(try encoder.encode(Change(c: collection, k: key, v: value)))
                data.append(UInt8(ascii: "\n"))
            }
        }
        try data.write(to: file, options: .atomic)
    }

    /// The document at `key` in `collection`.
    public func get(_ collection: String, _ key: String) -> JSON? {
        state.withLock { $0[collection]?[key] }
    }

    /// Every document of `collection`.
    public func all(_ collection: String) -> [String: JSON] {
        state.withLock { $0[collection] ?? [:] }
    }

    /// Sets (or removes, with nil) a document and journals the change.
    public func set(_ collection: String, _ key: String, _ value: JSON?) {
        state.withLock { collections in
            collections[collection, default: [:]][key] = value
            append(Change(c: collection, k: key, v: value))
        }
    }

    /// Runs `body` on the state under the lock; the changes it returns (collection, key, new value)
    /// are applied and journalled together, so a read-check-write is atomic.
    public func update<Result>(_ body: ([String: [String: JSON]]) throws -> (Result, [(String, String, JSON?)]))
        rethrows -> Result
    {
        try state.withLock { collections in
            let (result, changes) = try body(collections)
            for (collection, key, value) in changes {
                collections[collection, default: [:]][key] = value
                append(Change(c: collection, k: key, v: value))
            }
            return result
        }
    }

    private func append(_ change: Change) {
        guard let file else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var line = try? encoder.encode(change) else { return }
        line.append(UInt8(ascii: "\n"))
        if let handle = try? FileHandle(forWritingTo: file) {
            defer { try? handle.close() }
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: line)
        } else {
            try? line.write(to: file)
        }
    }
}
