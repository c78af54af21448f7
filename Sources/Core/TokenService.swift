import Foundation

/// Bearer tokens: creation (secret shown once), listing, revocation and lookup.
public struct TokenService: Sendable {
    let database: any Database
    let authorizer: Authorizer
    /// How long a token created without `expiresAt` lives (nil: for ever).
    let defaultExpiry: TimeInterval?

    /// Creates the service; `defaultExpiry` is the lifetime of tokens created without `expiresAt`.
    public init(database: any Database, defaultExpiry: TimeInterval? = 90 * 86_400) {
        self.database = database
        self.authorizer = Authorizer(database: database)
        self.defaultExpiry = defaultExpiry
    }

    /// Creates a team token (`maintainer` or `viewer`); admin or a maintainer of the team.
    public func createTeamToken(team: String, _ request: NewToken, context: CallContext) async throws
        -> (TokenRecord, secret: String)
    {
        try await authorizer.requireManage(context, team: team, resourceType: "token", resourceName: request.name)
        guard try await database.teams.get(team, lock: .none) != nil else { throw DomainError.notFound("team", team) }
        var validator = Validator()
        validator.check(!request.role.isPlatformRole, "role",
                        "a team token's role is 'maintainer' or 'viewer'; 'admin' and 'auditor' tokens are created under /v1/tokens")
        check(request, &validator)
        try validator.throwIfInvalid()
        return try await insert(request, team: team, context: context)
    }

    /// Creates a platform token (`admin` or `auditor`); admin only.
    public func createPlatformToken(_ request: NewToken, context: CallContext) async throws
        -> (TokenRecord, secret: String)
    {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "token", resourceName: request.name)
        var validator = Validator()
        validator.check(request.role.isPlatformRole, "role",
                        "a platform token's role is 'admin' or 'auditor'; team tokens are created under /v1/teams/{team}/tokens")
        check(request, &validator)
        try validator.throwIfInvalid()
        return try await insert(request, team: nil, context: context)
    }

    /// Tokens of a team (admin or a maintainer of the team), oldest first.
    public func listTeamTokens(team: String, page: PageRequest, context: CallContext) async throws -> Page<TokenRecord> {
        try await authorizer.requireManage(context, team: team, resourceType: "token", resourceName: nil)
        guard try await database.teams.get(team, lock: .none) != nil else { throw DomainError.notFound("team", team) }
        return try await list(team: team, page: page)
    }

    /// Platform tokens (admin), oldest first.
    public func listPlatformTokens(page: PageRequest, context: CallContext) async throws -> Page<TokenRecord> {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "token", resourceName: nil)
        return try await list(team: nil, page: page)
    }

    /// Revokes a team token (admin or a maintainer of the team).
    public func deleteTeamToken(team: String, id: String, context: CallContext) async throws {
        try await authorizer.requireManage(context, team: team, resourceType: "token", resourceName: id)
        try await delete(team: team, id: id, context: context)
    }

    /// Revokes a platform token (admin).
    public func deletePlatformToken(id: String, context: CallContext) async throws {
        try await authorizer.requireAdmin(context, team: nil, resourceType: "token", resourceName: id)
        try await delete(team: nil, id: id, context: context)
    }

    private func check(_ request: NewToken, _ validator: inout Validator) {
        validator.check(Rules.isPlainText(request.name, maxLength: 100), "name",
                        "must be 1 to 100 characters without control characters")
        if let expiresAt = request.expiresAt {
            validator.check(expiresAt > Date(), "expiresAt", "must be in the future")
        }
    }

    private func insert(_ request: NewToken, team: String?, context: CallContext) async throws
        -> (TokenRecord, secret: String)
    {
        let secret = TokenSecret.generate()
        let now = Date()
        let record = TokenRecord(
            id: UUID(), name: request.name, role: request.role, team: team,
            expiresAt: request.expiresAt ?? defaultExpiry.map { now.addingTimeInterval($0) },
            createdAt: now, createdBy: context.principal.actor)
        let event = context.audit("token.created", team: team, resourceType: "token", resourceName: record.id.uuidString.lowercased(),
                                  after: .encoding(record))
        try await database.transaction { tx in
            try await tx.tokens.insert(record, secretHash: TokenSecret.hash(secret))
            try await tx.audit.append(event)
        }
        return (record, secret)
    }

    private func list(team: String?, page: PageRequest) async throws -> Page<TokenRecord> {
        _ = try TimeCursor.position(page)
        return try await Page.fetch(page, key: { TimeCursor.key(createdAt: $0.createdAt, id: $0.id) }) {
            try await database.tokens.list(team: team, page: $0)
        }
    }

    private func delete(team: String?, id: String, context: CallContext) async throws {
        guard let uuid = UUID(uuidString: id) else { throw DomainError.notFound("token", id) }
        try await database.transaction { tx in
            guard let record = try await tx.tokens.delete(id: uuid, team: team) else { throw DomainError.notFound("token", id) }
            try await tx.audit.append(context.audit("token.deleted", team: team, resourceType: "token", resourceName: uuid.uuidString.lowercased(),
                                                    before: .encoding(record)))
        }
    }
}
