import Core
import Foundation
import Logging
import ServiceLifecycle

/// A background service that runs `work` every `interval` until graceful shutdown, logging (not
/// stopping on) failures, and runs `final` once on the way out.
public struct Periodic: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void
    let final: (@Sendable () async -> Void)?

    /// Creates the service; `name` says what failed in the log.
    public init(_ name: String, every interval: Duration, logger: Logger, final: (@Sendable () async -> Void)? = nil,
                _ work: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.logger = logger
        self.work = work
        self.final = final
    }

    /// One run of the work, now (tests, and callers that need it done before going on).
    public func runOnce() async throws {
        try await work()
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await work()
            } catch {
                logger.warning("\(name) failed; retrying", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        await final?()
    }
}

/// The periodic housekeeping of the system of record.
public enum Housekeeping {
    /// Seals committed audit events into the hash chain, a few times a second. Several replicas may
    /// run it: an advisory lock lets one seal at a time. A last pass at shutdown seals what was
    /// written before it, rather than leaving it to the next start.
    public static func auditSealer(_ sealer: any AuditSealing, logger: Logger, interval: Duration = .milliseconds(200)) -> Periodic {
        Periodic("sealing audit events", every: interval, logger: logger, final: {
            _ = try? await sealer.sealPending()
            try? await sealer.writeCheckpoint()
        }) {
            // Seal everything pending, in batches, before resting.
            while try await sealer.sealPending() > 0 {}
        }
    }

    /// Runs `work` once, retrying every 5 seconds until it succeeds or podid shuts down.
    public static func once(_ name: String, logger: Logger, _ work: @escaping @Sendable () async throws -> Void) -> some Service {
        OneShot(name: name, logger: logger, work: work)
    }

    /// Writes the summaries of folded denials whose window ended, every five seconds, and all of them
    /// at shutdown. A summary that cannot be written (the database is down) is logged with its count.
    public static func denialFlusher(_ denials: DenialFolder, audit: any AuditRows, logger: Logger, every interval: Duration = .seconds(5)) -> Periodic {
        @Sendable func write(_ drafts: [AuditDraft]) async throws {
            for (index, draft) in drafts.enumerated() {
                do {
                    try await audit.append(draft)
                } catch {
                    for lost in drafts[index...] {
                        logger.warning("a folded denial summary could not be audited", metadata: [
                            "actor": "\(lost.actor)", "operation": "\(lost.details["operation"] ?? .null)", "count": "\(lost.details["count"] ?? .null)",
                        ])
                    }
                    throw error
                }
            }
        }
        return Periodic("auditing folded denials", every: interval, logger: logger, final: { try? await write(denials.due(all: true)) }) {
            try await write(denials.due())
        }
    }

    /// Retention, every `interval`: finished jobs older than `jobRetentionDays`, health history
    /// older than `healthHistoryDays` and idempotency keys older than 24 hours are deleted, and each
    /// deletion is audited as a count (`housekeeping.pruned`), so that dashboards show where old
    /// records went. Every replica may run it: the deletes do not overlap.
    public static func retention(jobs: any JobQueue, health: (any HealthStore)?, idempotency: any IdempotencyStore, audit: any AuditRows,
                                 jobRetentionDays: Int, healthHistoryDays: Int, logger: Logger,
                                 every interval: Duration = .seconds(600), now: @escaping @Sendable () -> Date = Date.init) -> Periodic {
        Periodic("pruning old jobs, health history and idempotency keys", every: interval, logger: logger) {
            let current = now()
            let jobsBefore = current.addingTimeInterval(-Double(jobRetentionDays) * 86_400)
            try await pruned("jobs", before: jobsBefore, count: try await jobs.pruneFinished(before: jobsBefore), audit: audit, logger: logger)
            if let health {
                let historyBefore = current.addingTimeInterval(-Double(healthHistoryDays) * 86_400)
                try await pruned("healthHistory", before: historyBefore, count: try await health.pruneHistory(before: historyBefore),
                                 audit: audit, logger: logger)
            }
            try await pruned("idempotencyKeys", before: current.addingTimeInterval(-86_400), count: try await idempotency.prune(),
                             audit: audit, logger: logger)
        }
    }

    static func pruned(_ what: String, before: Date, count: Int, audit: any AuditRows, logger: Logger) async throws {
        guard count > 0 else { return }
        logger.info("pruned old records", metadata: ["what": "\(what)", "count": "\(count)"])
        try await audit.append(AuditDraft(
            actor: "podid", actorTeam: nil, action: "housekeeping.pruned", outcome: .success, team: nil, resourceType: "housekeeping",
            resourceName: what, requestId: nil,
            details: ["what": .string(what), "count": .number(Double(count)), "before": .string(Timestamp.format(before))]))
    }
}

/// A task that runs once at start-up, retried until it succeeds; then the service ends quietly
/// while the others go on.
struct OneShot: Service {
    let name: String
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await work()
                break
            } catch {
                logger.warning("\(name) failed; retrying", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
        }
        // A service that returns ends the group unless it says otherwise; wait for shutdown.
        try? await gracefulShutdown()
    }
}
