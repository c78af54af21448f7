import Foundation

/// Who may share a cluster. In MIC's `cluster` mode an AzureIdentityBinding matches labelled pods in
/// every namespace: any team that can run a pod there can label it with another team's selector and
/// receive that team's tokens. So a `cluster`-mode cluster is in at most one team's policy, unless an
/// admin marks it single-team (its teams are one tenant); a cluster shared by teams runs MIC
/// namespaced (`--forceNamespaced`), where a binding matches only pods in its own namespace.
public enum ClusterSharing {
    /// Whether `cluster` may be in the policies of `teams` (distinct names).
    public static func allows(_ cluster: Cluster, teams: Int) -> Bool {
        cluster.micMode == .namespaced || cluster.singleTeam || teams <= 1
    }

    /// The fix, for messages: switch to namespaced or mark single-team.
    static func fix(_ name: String) -> String {
        "run MIC with --forceNamespaced and PATCH /v1/clusters/\(name) {\"micMode\":\"namespaced\"}, or, if the teams are one tenant, PATCH /v1/clusters/\(name) {\"singleTeam\":true}"
    }

    /// The names of the teams whose policies list `cluster`, other than `excluding`.
    public static func teams(listing cluster: String, excluding: String?, in records: any Records) async throws -> [String] {
        var found: [String] = []
        var page = PageRequest(limit: PageRequest.maxLimit, after: nil)
        while true {
            let teams = try await records.teams.list(page: page, only: nil)
            found += teams.filter { $0.name != excluding && $0.policy.clusters.contains(cluster) }.map(\.name)
            guard teams.count == page.limit, let last = teams.last else { return found }
            page = PageRequest(limit: page.limit, after: [last.name])
        }
    }

    /// Checks the clusters a team's new policy adds: each `cluster`-mode cluster that another team
    /// lists already is a 422 on `policy.clusters[i]` naming the fix. The caller runs it in the
    /// transaction that writes the policy; the clusters' row locks order concurrent changes.
    public static func checkPolicy(team: String, adding clusters: [String], all: [String], in tx: any Records) async throws {
        var validator = Validator()
        // Locked in name order, so that two policy changes never wait on each other's locks.
        for name in Set(clusters).sorted() {
            guard let cluster = try await tx.clusters.get(name, lock: .update) else { continue }
            let others = try await teams(listing: name, excluding: team, in: tx)
            let index = all.firstIndex(of: name) ?? 0
            validator.check(allows(cluster, teams: others.count + 1), "policy.clusters[\(index)]",
                            "cluster \(name) runs MIC in cluster mode, where a binding matches labelled pods in every namespace, and \(others.count == 1 ? "another team's policy lists it" : "other teams' policies list it"): \(fix(name))")
        }
        try validator.throwIfInvalid()
    }

    /// Checks a cluster's registration or change against the teams that list it: 422 on `micMode`
    /// (or `singleTeam`) naming the fix.
    public static func checkCluster(_ cluster: Cluster, field: String, in tx: any Records) async throws {
        guard !allows(cluster, teams: 2) else { return }
        let listing = try await teams(listing: cluster.name, excluding: nil, in: tx)
        guard !allows(cluster, teams: listing.count) else { return }
        throw DomainError.invalid([FieldProblem(
            field,
            "cluster mode with \(listing.count) teams' policies listing cluster \(cluster.name) would let each team's pods take the others' identities: keep micMode namespaced, or set singleTeam if the teams are one tenant (or remove the cluster from all but one team's policy)")])
    }
}
