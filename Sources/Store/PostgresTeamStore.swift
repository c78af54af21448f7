import Core
import Foundation
import PostgresNIO

/// Teams in PostgreSQL.
public struct PostgresTeamStore: TeamStore {
    let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) {
        self.database = database
    }

    static let columns = "name, display_name, contacts, policy::text, version, created_at, updated_at"

    static func decode(_ row: PostgresRow) throws -> Team {
        let (name, displayName, contacts, policy, version, createdAt, updatedAt) =
            try row.decode((String, String, [String], String, Int64, Date, Date).self)
        return Team(
            name: name, displayName: displayName, contacts: contacts,
            policy: try JSONDecoder().decode(TeamPolicy.self, from: Data(policy.utf8)),
            version: version, createdAt: createdAt, updatedAt: updatedAt)
    }

    static func policyText(_ policy: TeamPolicy) -> String {
        JSONValue.encoding(policy).canonicalText
    }

    public func insertTeam(_ team: Team, audit: AuditDraft) async throws -> Team {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO teams (name, display_name, contacts, policy, version, created_at, updated_at)
                VALUES (\(team.name), \(team.displayName), \(team.contacts), \(Self.policyText(team.policy))::jsonb,
                        1, now(), now())
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            let stored = try Self.decode(rows[0])
            var event = audit
            event.after = .encoding(stored)
            try await connection.insertAudit(event, logger: database.logger)
            return stored
        }
    }

    public func team(named name: String) async throws -> Team? {
        try await database.rows("SELECT \(unescaped: Self.columns) FROM teams WHERE name = \(name)")
            .first.map(Self.decode)
    }

    public func teams(page: PageRequest, only: String?) async throws -> [Team] {
        let after = page.after?.first ?? ""
        return try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM teams
            WHERE name > \(after) AND (\(only)::text IS NULL OR name = \(only))
            ORDER BY name LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    public func replaceTeam(_ team: Team, ifVersion: Int64, audit: @escaping @Sendable (Team) -> AuditDraft) async throws
        -> Team?
    {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE teams SET display_name = \(team.displayName), contacts = \(team.contacts),
                       policy = \(Self.policyText(team.policy))::jsonb, version = version + 1, updated_at = now()
                WHERE name = \(team.name) AND version = \(ifVersion)
                RETURNING \(unescaped: Self.columns)
                """, logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let stored = try Self.decode(row)
            try await connection.insertAudit(audit(stored), logger: database.logger)
            return stored
        }
    }

    public func deleteTeam(named name: String, ifVersion: Int64, audit: AuditDraft) async throws -> Bool {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM teams WHERE name = \(name) AND version = \(ifVersion) RETURNING name",
                logger: database.logger
            ).collect()
            guard !rows.isEmpty else { return false }
            try await connection.insertAudit(audit, logger: database.logger)
            return true
        }
    }
}
