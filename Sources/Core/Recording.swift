import Foundation

/// How jobs record what they observed and did: one transaction that locks the row, applies the
/// lifecycle event and the job's changes, writes the row and the job's audit events.
extension Database {
    /// Records on identity `team`/`name`; nil (and nothing written) when it is gone.
    @discardableResult
    public func recordIdentity(team: String, name: String, _ event: LifecycleEvent? = nil, audit: [AuditDraft] = [],
                               change: @escaping @Sendable (inout Identity) -> Void = { _ in }) async throws -> Identity? {
        try await transaction { tx in
            guard var identity = try await tx.identities.get(team: team, name: name, lock: .update) else { return nil }
            if let event { ResourceLifecycle.apply(event, to: &identity) }
            change(&identity)
            let stored = try await tx.identities.update(identity)
            try await tx.append(audit)
            return stored
        }
    }

    /// Records on a binding; nil (and nothing written) when it is gone.
    @discardableResult
    public func recordBinding(_ binding: Binding, _ event: LifecycleEvent? = nil, audit: [AuditDraft] = [],
                              change: @escaping @Sendable (inout Binding) -> Void = { _ in }) async throws -> Binding? {
        try await transaction { tx in
            guard var current = try await tx.bindings.get(team: binding.team, identity: binding.identity, name: binding.name, lock: .update)
            else { return nil }
            if let event { ResourceLifecycle.apply(event, to: &current) }
            change(&current)
            let stored = try await tx.bindings.update(current)
            try await tx.append(audit)
            return stored
        }
    }

    /// Records a cluster's connection check.
    public func recordClusterStatus(_ name: String, _ status: ClusterStatus, audit event: AuditDraft) async throws {
        try await transaction { tx in
            guard var cluster = try await tx.clusters.get(name, lock: .update) else { return }
            cluster.status = status
            _ = try await tx.clusters.update(cluster)
            try await tx.audit.append(event)
        }
    }
}
