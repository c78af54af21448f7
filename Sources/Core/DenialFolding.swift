import Foundation
import Synchronization

/// Folds repeated denials into one audit event: the first denial of a caller on an operation (with
/// one status) in a window is written at once and in full; the ones after it in the same window are
/// counted and written as one `auth.denied` event with `details.count` when the window ends. A loop
/// of forbidden requests then writes two events a minute, not one per request, whatever names it
/// varies; nothing is lost but the repetition (the folded event keeps up to ten of the teams and
/// resources it covers, and the first and last time).
public final class DenialFolder: Sendable {
    struct Fold {
        var opened: Date
        var count = 0
        var first: Date?
        var last: Date?
        var sample: AuditDraft
        var teams: [String] = []
        var resources: [String] = []
    }

    /// How long one fold collects.
    public let window: TimeInterval
    let folds = Mutex<[String: Fold]>([:])
    let maxFolds = 10_000
    let sampleSize = 10

    /// Creates a folder.
    public init(window: TimeInterval = 60) {
        self.window = window
    }

    /// The fold of a denial: its actor, operation and status (never names the caller chose).
    static func key(_ event: AuditDraft) -> String {
        let operation = event.details["operation"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? ""
        let status = event.details["status"].flatMap { if case .number(let value) = $0 { Int(value) } else { nil } } ?? 0
        return "\(event.actor)\u{0}\(operation)\u{0}\(status)"
    }

    /// What to write for a new denial: the event itself when it opens a fold (preceded by the
    /// summary of a fold of the same key that ended), nothing when an open fold takes it.
    public func record(_ event: AuditDraft, now: Date = Date()) -> [AuditDraft] {
        let key = Self.key(event)
        return folds.withLock { folds in
            var out: [AuditDraft] = []
            if let fold = folds[key] {
                if now.timeIntervalSince(fold.opened) < window {
                    var fold = fold
                    fold.count += 1
                    fold.first = fold.first ?? now
                    fold.last = now
                    if let team = event.team, !fold.teams.contains(team), fold.teams.count < sampleSize { fold.teams.append(team) }
                    let resource = "\(event.resourceType)/\(event.resourceName ?? "")"
                    if !fold.resources.contains(resource), fold.resources.count < sampleSize { fold.resources.append(resource) }
                    folds[key] = fold
                    return []
                }
                if let summary = Self.summary(fold) { out.append(summary) }
            }
            if folds.count >= maxFolds {
                // Too many callers at once to fold: close them all rather than grow.
                out += folds.values.compactMap(Self.summary)
                folds.removeAll(keepingCapacity: true)
            }
            folds[key] = Fold(opened: now, sample: event)
            out.append(event)
            return out
        }
    }

    /// The summaries of the folds whose window ended by `now` (all of them with `all`), which are closed.
    public func due(now: Date = Date(), all: Bool = false) -> [AuditDraft] {
        folds.withLock { folds in
            var out: [AuditDraft] = []
            for (key, fold) in folds where all || now.timeIntervalSince(fold.opened) >= window {
                if let summary = Self.summary(fold) { out.append(summary) }
                folds[key] = nil
            }
            return out
        }
    }

    /// The event of a fold that took denials, or nil.
    static func summary(_ fold: Fold) -> AuditDraft? {
        guard fold.count > 0, let first = fold.first, let last = fold.last else { return nil }
        var event = fold.sample
        let teams = Set(fold.teams)
        event.team = teams.count == 1 ? teams.first : (fold.teams.isEmpty ? fold.sample.team : nil)
        event.resourceName = fold.resources.count == 1 ? fold.sample.resourceName : nil
        event.requestId = nil
        event.details["count"] = .number(Double(fold.count))
        event.details["firstAt"] = .string(Timestamp.format(first))
        event.details["lastAt"] = .string(Timestamp.format(last))
        event.details["teams"] = .array(fold.teams.map(JSONValue.string))
        event.details["resources"] = .array(fold.resources.map(JSONValue.string))
        event.details["folded"] = .bool(true)
        return event
    }
}
