import Crypto
import Foundation

/// One forward-only migration file, `NNNN_description.sql`.
public struct Migration: Sendable, Equatable {
    /// The number at the start of the file name.
    public var version: Int
    /// The file name.
    public var fileName: String
    /// The file's text.
    public var sql: String
    /// The SHA-256 of the file's bytes, hex: an applied file must never change.
    public var checksum: String

    /// Creates a migration from a file name and its text.
    public init(fileName: String, sql: String) throws {
        let digits = fileName.prefix { $0.isNumber }
        guard !digits.isEmpty, let version = Int(digits), fileName.dropFirst(digits.count).hasPrefix("_"),
              fileName.hasSuffix(".sql")
        else {
            throw MigrationError.badFileName(fileName)
        }
        self.version = version
        self.fileName = fileName
        self.sql = sql
        self.checksum = SHA256.hash(data: Array(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The migrations shipped with podid, in order.
    public static func bundled() throws -> [Migration] {
        let urls = (Bundle.module.urls(forResourcesWithExtension: "sql", subdirectory: nil) ?? []).map { $0 as URL }
        return try load(urls)
    }

    /// The migrations in a directory, in order.
    public static func load(directory: URL) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return try load(names.filter { $0.hasSuffix(".sql") }.map { directory.appendingPathComponent($0) })
    }

    private static func load(_ urls: [URL]) throws -> [Migration] {
        let migrations = try urls.map { url in
            try Migration(fileName: url.lastPathComponent, sql: String(contentsOf: url, encoding: .utf8))
        }.sorted { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError.duplicateVersion(a.fileName, b.fileName)
        }
        return migrations
    }
}

/// What can be wrong with the migrations.
public enum MigrationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file is not named `NNNN_description.sql`.
    case badFileName(String)
    /// Two files share a version number.
    case duplicateVersion(String, String)
    /// An applied file has been edited since.
    case checksumMismatch(file: String, applied: String, onDisk: String)
    /// The database has a migration this podid does not know (a newer podid applied it).
    case unknownApplied(version: Int, file: String)
    /// A statement failed.
    case failed(file: String, statement: Int, message: String)
    /// Migrations are pending and the command does not apply them.
    case pending([String])

    public var description: String {
        switch self {
        case .badFileName(let name):
            return "migration file '\(name)' is not named NNNN_description.sql"
        case .duplicateVersion(let a, let b):
            return "migration files '\(a)' and '\(b)' have the same version number"
        case .checksumMismatch(let file, let applied, let onDisk):
            return "migration '\(file)' was edited after it was applied (applied checksum \(applied.prefix(12)), file \(onDisk.prefix(12))); migrations are forward only: restore the file and add a new migration"
        case .unknownApplied(let version, let file):
            return "the database has migration \(version) ('\(file)') that this podid does not ship; run a podid at least as new as the one that applied it"
        case .failed(let file, let statement, let message):
            return "migration '\(file)' failed at statement \(statement): \(message)"
        case .pending(let files):
            return "\(files.count) migration(s) pending: \(files.joined(separator: ", ")); run `podid migrate apply` with PODID_MIGRATION_DATABASE_URL"
        }
    }
}
