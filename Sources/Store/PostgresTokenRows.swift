import Core
import Foundation
import PostgresNIO

/// Bearer tokens in PostgreSQL, stored by the SHA-256 of their secret.
struct PostgresTokenRows: TokenRows {
    let executor: Executor

    static let columns = "id, name, role, team, expires_at, created_at, created_by"

    static func decode(_ row: PostgresRow) throws -> TokenRecord {
        let (id, name, role, team, expiresAt, createdAt, createdBy) =
            try row.decode((UUID, String, String, String?, Date?, Date, String).self)
        return TokenRecord(
            id: id, name: name, role: Role(rawValue: role) ?? .viewer, team: team, expiresAt: expiresAt,
            createdAt: createdAt, createdBy: createdBy)
    }

    func insert(_ token: TokenRecord, secretHash: [UInt8]) async throws {
        try await executor.rows(
            """
            INSERT INTO tokens (id, name, role, team, secret_hash, expires_at, created_at, created_by)
            VALUES (\(token.id), \(token.name), \(token.role.rawValue), \(token.team), \(ByteBuffer(bytes: secretHash)),
                    \(token.expiresAt), \(token.createdAt), \(token.createdBy))
            """)
    }

    func list(team: String?, page: PageRequest) async throws -> [TokenRecord] {
        guard let (afterMicros, afterID) = try TimeCursor.position(page) else {
            return try await executor.rows(
                """
                SELECT \(unescaped: Self.columns) FROM tokens WHERE team IS NOT DISTINCT FROM \(team)
                ORDER BY created_at, id LIMIT \(page.limit)
                """
            ).map(Self.decode)
        }
        return try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM tokens
            WHERE team IS NOT DISTINCT FROM \(team)
              AND (created_at, id) > (timestamptz 'epoch' + \(afterMicros) * interval '1 microsecond', \(afterID))
            ORDER BY created_at, id LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    func delete(id: UUID, team: String?) async throws -> TokenRecord? {
        try await executor.rows(
            "DELETE FROM tokens WHERE id = \(id) AND team IS NOT DISTINCT FROM \(team) RETURNING \(unescaped: Self.columns)"
        ).first.map(Self.decode)
    }

    func get(secretHash: [UInt8], now: Date) async throws -> TokenRecord? {
        try await executor.rows(
            """
            SELECT \(unescaped: Self.columns) FROM tokens
            WHERE secret_hash = \(ByteBuffer(bytes: secretHash)) AND (expires_at IS NULL OR expires_at > \(now))
            """
        ).first.map(Self.decode)
    }
}
