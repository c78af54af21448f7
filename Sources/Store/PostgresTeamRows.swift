import Core
import Foundation
import PostgresNIO

/// Teams in PostgreSQL.
struct PostgresTeamRows: TeamRows {
    let executor: Executor

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

    func get(_ name: String, lock: RowLock) async throws -> Team? {
        try await executor.rows("SELECT \(unescaped: Self.columns) FROM teams WHERE name = \(name)\(unescaped: Executor.clause(lock))")
            .first.map(Self.decode)
    }

    func list(page: PageRequest, only: String?) async throws -> [Team] {
        let after = page.after?.first ?? ""
        return try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM teams
            WHERE name > \(after) AND (\(only)::text IS NULL OR name = \(only))
            ORDER BY name LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    func insert(_ team: Team) async throws -> Team {
        let rows = try await executor.rows(
            """
            INSERT INTO teams (name, display_name, contacts, policy, version, created_at, updated_at)
            VALUES (\(team.name), \(team.displayName), \(team.contacts), \(Self.policyText(team.policy))::jsonb,
                    1, now(), now())
            RETURNING \(unescaped: Self.columns)
            """)
        return try Self.decode(rows[0])
    }

    func update(_ team: Team) async throws -> Team {
        let rows = try await executor.rows(
            """
            UPDATE teams SET display_name = \(team.displayName), contacts = \(team.contacts),
                   policy = \(Self.policyText(team.policy))::jsonb, version = \(team.version), updated_at = now()
            WHERE name = \(team.name)
            RETURNING \(unescaped: Self.columns)
            """)
        guard let row = rows.first else { throw DomainError.notFound("team", team.name) }
        return try Self.decode(row)
    }

    func delete(_ name: String) async throws {
        try await executor.rows("DELETE FROM teams WHERE name = \(name)")
    }
}
