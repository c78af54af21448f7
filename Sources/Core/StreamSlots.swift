import Foundation
import Synchronization

/// Bounds on responses that hold resources for as long as the client reads: audit streams (SSE)
/// and exports (CSV/NDJSON). Each token may hold `perToken` at once and the process `total`; an
/// export also ends at its `deadline`, so that a client reading slowly cannot keep a database
/// connection for ever.
public final class StreamSlots: Sendable {
    /// What a slot is for, in messages.
    public let noun: String
    /// Slots one token may hold at once (0: no per-token limit).
    public let perToken: Int
    /// Slots the process serves at once (0: no limit).
    public let total: Int
    let state = Mutex<(total: Int, byToken: [String: Int])>((0, [:]))

    /// Creates limits for `noun` (such as "audit streams").
    public init(_ noun: String, perToken: Int, total: Int) {
        self.noun = noun
        self.perToken = perToken
        self.total = total
    }

    /// How many slots are held (for tests and metrics).
    public var held: Int { state.withLock { $0.total } }

    /// Takes a slot for `principal`, or refuses: 429 when the token holds its share, 503 when the
    /// process serves its maximum. The slot is given back by `release()` or when it is freed.
    public func acquire(for principal: Principal) throws -> StreamSlot {
        let key = principal.tokenId?.uuidString ?? "bootstrap:\(principal.tokenName)"
        try state.withLock { state in
            if perToken > 0, state.byToken[key, default: 0] >= perToken {
                throw DomainError(.tooManyRequests, "This token already has \(perToken) \(noun) open, the most one token may hold at once; close one (or wait for it to end) and retry.",
                                  retryAfterSeconds: 5)
            }
            if total > 0, state.total >= total {
                throw DomainError(.unavailable, "podid is serving its maximum of \(total) \(noun) at once; retry shortly.", retryAfterSeconds: 5)
            }
            state.total += 1
            state.byToken[key, default: 0] += 1
        }
        return StreamSlot { [self] in
            state.withLock { state in
                state.total -= 1
                let left = state.byToken[key, default: 1] - 1
                state.byToken[key] = left > 0 ? left : nil
            }
        }
    }
}

/// A held slot: given back once, by `release()` or when the response that held it is dropped.
public final class StreamSlot: Sendable {
    let give: @Sendable () -> Void
    let released = Mutex(false)

    init(give: @escaping @Sendable () -> Void) {
        self.give = give
    }

    /// Gives the slot back (again: nothing).
    public func release() {
        let first = released.withLock { done in
            defer { done = true }
            return !done
        }
        if first { give() }
    }

    deinit {
        release()
    }
}
