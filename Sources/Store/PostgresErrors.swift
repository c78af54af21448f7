import Core
import PostgresNIO

/// Maps PostgreSQL errors to domain errors, and extracts messages for logs.
public enum PostgresErrors {
    /// Messages for the named unique and foreign-key constraints a user can run into.
    static let constraintMessages: [String: (DomainError.Kind, String)] = [
        "teams_pkey": (.conflict, "A team with this name already exists."),
        "identities_team_fkey": (.conflict, "The team still owns identities; delete them first."),
        "identities_pkey": (.conflict, "This team already has an identity with this name; choose another name, or PUT to change it."),
        "identities_azure_key": (.conflict, "Another podid identity already uses the Azure identity with this subscription, resource group and name (Azure names ignore case); choose another name."),
        "clusters_pkey": (.conflict, "A cluster with this name already exists."),
        "bindings_pkey": (.conflict, "This identity already has a binding with this name."),
        "bindings_cluster_fkey": (.conflict, "The cluster still has bindings; delete them first."),
        "bindings_identity_fkey": (.conflict, "The identity still has bindings; delete them first."),
        "jobs_dedupe_queued_key": (.conflict, "A newer job for this resource is already queued; it will apply the current state."),
    ]

    /// The error unwrapped from a transaction wrapper.
    public static func unwrap(_ error: any Error) -> any Error {
        if let error = error as? PostgresTransactionError {
            return error.closureError ?? error.commitError ?? error.beginError ?? error
        }
        return error
    }

    /// The domain error for a PostgreSQL failure a user can cause or that makes the database
    /// unavailable; other errors are returned as they are (they are bugs, answered as 500).
    public static func map(_ error: any Error) -> any Error {
        let error = unwrap(error)
        if error is DomainError { return error }
        // The pool's own errors (its type lives in PostgresNIO's internal pool module): connections
        // that could not be created for a while (its circuit breaker), a wait that was cancelled.
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            return DomainError(.unavailable, "The database is unavailable; retry shortly.")
        }
        guard let psql = error as? PSQLError else { return error }
        if psql.code == .server, let state = psql.serverInfo?[.sqlState] {
            let constraint = psql.serverInfo?[.constraintName] ?? ""
            if let (kind, message) = constraintMessages[constraint] {
                return DomainError(kind, message)
            }
            switch state {
            case "23505", "23503":
                return DomainError(.conflict, "The change conflicts with existing data (\(constraint)).")
            case "22021", "22P05":
                // A NUL character (or another PostgreSQL cannot store) in a value a user sent.
                return DomainError(.badRequest, "A value contains a character that cannot be stored (such as U+0000, NUL); remove it and send the request again.")
            case "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300":
                return DomainError(.unavailable, "The database is busy or restarting; retry shortly.")
            default:
                return error
            }
        }
        switch psql.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown,
             .sslUnsupported, .failedToAddSSLHandler:
            return DomainError(.unavailable, "The database is unavailable; retry shortly.")
        default:
            return error
        }
    }

    /// The server's message (and detail) for a PostgreSQL error, for logs and operator messages.
    public static func serverMessage(_ error: any Error) -> String {
        let error = unwrap(error)
        if let psql = error as? PSQLError, let message = psql.serverInfo?[.message] {
            let detail = psql.serverInfo?[.detail].map { " (\($0))" } ?? ""
            return message + detail
        }
        return String(reflecting: error)
    }
}
