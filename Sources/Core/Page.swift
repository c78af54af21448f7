import Foundation

/// A page request: how many items, and where the previous page ended.
public struct PageRequest: Sendable, Equatable {
    /// The default page size.
    public static let defaultLimit = 50
    /// The largest page size.
    public static let maxLimit = 500

    /// How many items to return.
    public var limit: Int
    /// The keyset position after which to continue, as decoded from the cursor.
    public var after: [String]?

    /// Creates a page request, validating `limit` and decoding `cursor` (400 naming the parameter).
    public init(limit: Int?, cursor: String?) throws {
        var problems: [FieldProblem] = []
        let limit = limit ?? Self.defaultLimit
        if !(1...Self.maxLimit).contains(limit) {
            problems.append(FieldProblem("limit", "must be between 1 and \(Self.maxLimit)"))
        }
        var after: [String]?
        if let cursor {
            after = Cursor.decode(cursor)
            if after == nil {
                problems.append(FieldProblem("cursor", "is not a cursor this list returned; start again without it"))
            }
        }
        if !problems.isEmpty {
            throw DomainError(.badRequest, "Invalid paging parameters.", fields: problems)
        }
        self.limit = limit
        self.after = after
    }

    /// 400: a cursor this list did not return.
    public static let invalidCursor = DomainError(
        .badRequest, "Invalid paging parameters.",
        fields: [FieldProblem("cursor", "is not a cursor this list returned; start again without it")])

    /// A page request from already-valid values.
    public init(limit: Int, after: [String]?) {
        self.limit = limit
        self.after = after
    }
}

/// The keyset of lists ordered by creation time: `[microseconds since 1970, id]`.
public enum TimeCursor {
    /// The cursor key of an item created at `createdAt` with `id`.
    public static func key(createdAt: Date, id: UUID) -> [String] {
        [String(Int64((createdAt.timeIntervalSince1970 * 1_000_000).rounded())), id.uuidString.lowercased()]
    }

    /// The position a page continues after; 400 when the cursor is not one such a list returned.
    public static func position(_ page: PageRequest) throws -> (micros: Int64, id: UUID)? {
        guard let after = page.after else { return nil }
        guard after.count == 2, let micros = Int64(after[0]), let id = UUID(uuidString: after[1]) else { throw PageRequest.invalidCursor }
        return (micros, id)
    }
}

/// A page of results.
public struct Page<Item: Sendable>: Sendable {
    /// Fetches one item more than the page holds (the extra one only says there is more) and makes
    /// the page, with cursors from `key`.
    public static func fetch(_ page: PageRequest, key: (Item) -> [String],
                             _ fetch: (PageRequest) async throws -> [Item]) async throws -> Page {
        Page(fetched: try await fetch(PageRequest(limit: page.limit + 1, after: page.after)), limit: page.limit, key: key)
    }

    /// The items of this page.
    public var items: [Item]
    /// The cursor of the next page, nil on the last page.
    public var nextCursor: String?

    /// Creates a page from up to `limit + 1` fetched items: the extra one only says there is more.
    public init(fetched: [Item], limit: Int, key: (Item) -> [String]) {
        if fetched.count > limit {
            items = Array(fetched.prefix(limit))
            nextCursor = Cursor.encode(key(items[items.count - 1]))
        } else {
            items = fetched
            nextCursor = nil
        }
    }
}

/// Opaque cursors: the keyset position of the last item, as base64url JSON.
public enum Cursor {
    /// Encodes a keyset position.
    public static func encode(_ key: [String]) -> String {
        let data = (try? JSONEncoder().encode(key)) ?? Data()
        return Base64URL.encode(data)
    }

    /// Decodes a cursor; nil when it is not one.
    public static func decode(_ cursor: String) -> [String]? {
        guard cursor.count <= 2048, let bytes = Base64URL.decode(cursor),
              let key = try? JSONDecoder().decode([String].self, from: Data(bytes)), !key.isEmpty
        else { return nil }
        return key
    }
}
