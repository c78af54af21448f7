import API
import Core

/// Assignment health: a binding's latest check and the roll-up.
extension Wire {
    /// Keys of a binding's health that are `null` before its first check.
    static let bindingHealthNullKeys = ["observedAt", "changedAt"]

    static func healthStatus(_ status: HealthStatus) -> Components.Schemas.HealthStatus {
        Components.Schemas.HealthStatus(rawValue: status.rawValue) ?? .unknown
    }

    static func healthCounts(_ counts: HealthCounts) -> Components.Schemas.HealthCounts {
        .init(status: healthStatus(counts.worst), healthy: counts.healthy, degraded: counts.degraded, unhealthy: counts.unhealthy,
              unknown: counts.unknown)
    }

    static func healthSummary(_ summary: HealthSummary) -> Components.Schemas.HealthSummary {
        .init(
            totals: healthCounts(summary.totals), teams: .init(additionalProperties: summary.teams.mapValues(healthCounts)),
            clusters: .init(additionalProperties: summary.clusters.mapValues(healthCounts)),
            identities: .init(additionalProperties: summary.identities.mapValues(healthCounts)))
    }

    static func bindingHealth(_ record: BindingHealth) -> Components.Schemas.BindingHealth {
        .init(team: record.team, identity: record.identity, binding: record.binding, cluster: record.cluster,
              status: healthStatus(record.status),
              findings: record.findings.map {
                  .init(code: $0.code, severity: Components.Schemas.Finding.SeverityPayload(rawValue: $0.severity.rawValue) ?? .unknown,
                        message: $0.message, pod: $0.pod, namespace: $0.namespace, hint: $0.hint, observedAt: $0.observedAt)
              },
              observedAt: record.observedAt, changedAt: record.changedAt)
    }
}
