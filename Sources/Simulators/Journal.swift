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
    /// The keys written to followed collections (see `follow`).
    let feed = Mutex(ChangeFeed())

    /// The keys written to followed collections, in order, for consumers that act on changes
    /// (the simulated controllers) instead of rescanning every document.
    struct ChangeFeed: Sendable {
        /// The collections whose changes are recorded; none until someone follows one.
        var collections: Set<String> = []
        /// The position of `entries[0]`.
        var base: UInt64 = 0
        var entries: [(collection: String, key: String)] = []
        /// Entries kept; a consumer that falls further behind rescans.
        var limit = 100_000

        mutating func record(_ collection: String, _ key: String) {
            guard collections.contains(collection) else { return }
            entries.append((collection, key))
            if entries.count > limit {
                let dropped = entries.count - limit / 2
                entries.removeFirst(dropped)
                base += UInt64(dropped)
            }
        }

        var end: UInt64 { base + UInt64(entries.count) }
    }

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

    /// Starts recording the keys written to `collection` (if not yet) and returns the position from
    /// which `changes(since:)` reports them.
    public func follow(_ collection: String) -> UInt64 {
        feed.withLock { feed in
            feed.collections.insert(collection)
            return feed.end
        }
    }

    /// The (collection, key) pairs written since `position` and the position after them; nil when
    /// the store no longer holds that far back (the consumer must rescan).
    public func changes(since position: UInt64) -> (changes: [(collection: String, key: String)], next: UInt64)? {
        feed.withLock { feed in
            guard position >= feed.base, position <= feed.end else { return nil }
            return (Array(feed.entries[Int(position - feed.base)...]), feed.end)
        }
    }

    /// The position after the last change recorded: equal before and after some work when that
    /// work wrote nothing to a followed collection.
    public var followedPosition: UInt64 { feed.withLock { $0.end } }

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
            feed.withLock { $0.record(collection, key) }
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
            if !changes.isEmpty {
                feed.withLock { feed in
                    for (collection, key, _) in changes { feed.record(collection, key) }
                }
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
