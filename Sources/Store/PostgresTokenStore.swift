import Core
import Foundation
import PostgresNIO

/// Bearer tokens in PostgreSQL, stored by the SHA-256 of their secret.
public struct PostgresTokenStore: TokenStore {
    let database: PostgresDatabase

    /// Creates the store.
    public init(database: PostgresDatabase) {
        self.database = database
    }

    static let columns = "id, name, role, team, expires_at, created_at, created_by"

    static func decode(_ row: PostgresRow) throws -> TokenRecord {
        let (id, name, role, team, expiresAt, createdAt, createdBy) =
            try row.decode((UUID, String, String, String?, Date?, Date, String).self)
        return TokenRecord(
            id: id, name: name, role: Role(rawValue: role) ?? .viewer, team: team, expiresAt: expiresAt,
            createdAt: createdAt, createdBy: createdBy)
    }

    public func insertToken(_ token: TokenRecord, secretHash: [UInt8], audit: AuditDraft) async throws {
        try await database.transaction { connection in
            try await connection.query(
                """
                INSERT INTO tokens (id, name, role, team, secret_hash, expires_at, created_at, created_by)
                VALUES (\(token.id), \(token.name), \(token.role.rawValue), \(token.team), \(ByteBuffer(bytes: secretHash)),
                        \(token.expiresAt), \(token.createdAt), \(token.createdBy))
                """, logger: database.logger)
            try await connection.insertAudit(audit, logger: database.logger)
        }
    }

    public func tokens(team: String?, page: PageRequest) async throws -> [TokenRecord] {
        guard let after = page.after, after.count == 2, let afterMicros = Int64(after[0]), let afterID = UUID(uuidString: after[1])
        else {
            if page.after != nil { throw DomainError(.badRequest, "Invalid cursor.", fields: [FieldProblem("cursor", "is not a cursor this list returned; start again without it")]) }
            return try await database.rows(
                """
                SELECT \(unescaped: Self.columns) FROM tokens WHERE team IS NOT DISTINCT FROM \(team)
                ORDER BY created_at, id LIMIT \(page.limit)
                """
            ).map(Self.decode)
        }
        return try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM tokens
            WHERE team IS NOT DISTINCT FROM \(team)
              AND (created_at, id) > (timestamptz 'epoch' + \(afterMicros) * interval '1 microsecond', \(afterID))
            ORDER BY created_at, id LIMIT \(page.limit)
            """
        ).map(Self.decode)
    }

    public func deleteToken(id: UUID, team: String?, audit: @escaping @Sendable (TokenRecord) -> AuditDraft) async throws
        -> TokenRecord?
    {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM tokens WHERE id = \(id) AND team IS NOT DISTINCT FROM \(team) RETURNING \(unescaped: Self.columns)",
                logger: database.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let record = try Self.decode(row)
            try await connection.insertAudit(audit(record), logger: database.logger)
            return record
        }
    }

    public func token(secretHash: [UInt8], now: Date) async throws -> TokenRecord? {
        try await database.rows(
            """
            SELECT \(unescaped: Self.columns) FROM tokens
            WHERE secret_hash = \(ByteBuffer(bytes: secretHash)) AND (expires_at IS NULL OR expires_at > \(now))
            """
        ).first.map(Self.decode)
    }
}
