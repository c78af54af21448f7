import Foundation

/// How an audited action ended.
public enum AuditOutcome: String, Sendable, Codable {
    /// The change was made.
    case success
    /// The change was attempted and failed (an upstream error, say).
    case failure
    /// An authenticated caller was not allowed.
    case denied
}

/// An audit event before the store gives it its id and time; written in the same transaction as
/// the change it records.
public struct AuditDraft: Sendable, Equatable {
    /// Who acted: a token's actor name, or `podid` for background work.
    public var actor: String
    /// The actor's team, for team tokens.
    public var actorTeam: String?
    /// What happened, such as `team.created` or `auth.denied`.
    public var action: String
    /// How it ended.
    public var outcome: AuditOutcome
    /// The team the resource belongs to.
    public var team: String?
    /// The kind of resource, such as `team` or `token`.
    public var resourceType: String
    /// The resource's name (or id for tokens).
    public var resourceName: String?
    /// The API request that caused the event.
    public var requestId: String?
    /// The background job that caused the event.
    public var jobId: UUID?
    /// Anything else worth keeping: the request's method and path, upstream request ids, reasons.
    public var details: [String: JSONValue]
    /// The resource before the change.
    public var before: JSONValue?
    /// The resource after the change.
    public var after: JSONValue?

    /// Creates an audit draft.
    public init(
        actor: String, actorTeam: String?, action: String, outcome: AuditOutcome, team: String?,
        resourceType: String, resourceName: String?, requestId: String?, jobId: UUID? = nil,
        details: [String: JSONValue] = [:], before: JSONValue? = nil, after: JSONValue? = nil
    ) {
        self.actor = actor
        self.actorTeam = actorTeam
        self.action = action
        self.outcome = outcome
        self.team = team
        self.resourceType = resourceType
        self.resourceName = resourceName
        self.requestId = requestId
        self.jobId = jobId
        self.details = details
        self.before = before
        self.after = after
    }
}

/// A stored audit event.
public struct AuditEvent: Sendable, Equatable {
    /// Increases with every event; the keyset order.
    public var id: Int64
    /// When the event was written.
    public var time: Date
    /// The event's content.
    public var draft: AuditDraft

    /// Creates a stored event.
    public init(id: Int64, time: Date, draft: AuditDraft) {
        self.id = id
        self.time = time
        self.draft = draft
    }
}
