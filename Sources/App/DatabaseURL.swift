import Foundation
import NIOSSL
import PostgresNIO

/// A PostgreSQL connection URL: `postgres://user:password@host:port/database?sslmode=…`, or a Unix
/// socket with `?host=/socket/dir` (libpq's form).
public struct DatabaseURL: Sendable, CustomStringConvertible {
    /// Why a URL cannot be used.
    public struct ParseError: Error, CustomStringConvertible {
        /// What is wrong, without the password.
        public var message: String
        public var description: String { message }
    }

    /// The login role.
    public var username: String
    /// The password, if any. Secret.
    var password: String?
    /// The host name or address (TCP).
    public var host: String?
    /// The directory of the Unix socket.
    public var socketDirectory: String?
    /// The port.
    public var port: Int
    /// The database.
    public var database: String
    /// `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`; when the URL names
    /// none, `verify-full` for every host but the loopback ones (`prefer` there).
    public var sslMode: String
    /// `sslrootcert`: a PEM file of the certificate authorities `verify-*` trusts (default: the system's).
    public var sslRootCert: String?

    /// Parses a URL.
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text),
              let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw ParseError(message: "must be a URL such as postgres://user:password@host:5432/database")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ParseError(message: "names no user: use postgres://user:password@host:5432/database")
        }
        username = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        port = components.port ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty else { throw ParseError(message: "names no database: add /database after the host") }
        database = path.removingPercentEncoding ?? path
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { a, _ in a }
        if let socket = query["host"], socket.hasPrefix("/") {
            socketDirectory = socket
            host = nil
        } else {
            guard let host = components.host, !host.isEmpty else {
                throw ParseError(message: "names no host: use postgres://user@host:5432/database, or ?host=/socket/dir for a Unix socket")
            }
            self.host = host
        }
        sslMode = query["sslmode"] ?? (socketDirectory != nil || Self.isLoopback(host ?? "") ? "prefer" : "verify-full")
        if let root = query["sslrootcert"], !root.isEmpty {
            guard root.hasPrefix("/") else { throw ParseError(message: "has sslrootcert '\(root)'; use the absolute path of a PEM file") }
            sslRootCert = root
        }
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw ParseError(message: "has sslmode '\(sslMode)'; use disable, prefer, require, verify-ca or verify-full")
        }
    }

    /// Whether `host` names this machine: `localhost`, 127.0.0.0/8 or ::1.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" || bare == "::1" { return true }
        let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// The URL without its password, for logs.
    public var description: String {
        let location = socketDirectory.map { "?host=\($0)" } ?? ""
        return "postgres://\(username)@\(host ?? ""):\(port)/\(database)\(location)"
    }

    /// The PostgresNIO client configuration.
    public func clientConfiguration() -> PostgresClient.Configuration {
        if let socketDirectory {
            return PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password,
                database: database)
        }
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "require":
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(configuration)
        case "verify-ca", "verify-full":
            var configuration = TLSConfiguration.makeClientConfiguration()
            // verify-ca checks the chain, verify-full the chain and the host name (libpq's meaning).
            configuration.certificateVerification = sslMode == "verify-ca" ? .noHostnameVerification : .fullVerification
            if let sslRootCert { configuration.trustRoots = .file(sslRootCert) }
            tls = .require(configuration)
        default: tls = .prefer(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(
            host: host ?? "localhost", port: port, username: username, password: password, database: database, tls: tls)
    }
}
