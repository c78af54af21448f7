import Core
import Testing

@Suite("Identity rules and team policy", .timeLimit(.minutes(5)))
struct IdentityRulesTests {
    static let subscription = "00000000-0000-0000-0000-000000000000"
    static let policy = TeamPolicy(
        subscriptions: [subscription], resourceGroups: ["podid-dev"],
        grants: [GrantRule(role: "Reader", scopePrefix: "/subscriptions/\(subscription)/resourceGroups/podid-dev")],
        clusters: [], namespaces: [], maxIdentities: 5)

    static func spec(_ change: (inout IdentitySpec) -> Void = { _ in }) -> IdentitySpec {
        var spec = IdentitySpec(name: "payments-api", subscriptionId: subscription, resourceGroup: "podid-dev", location: "West Europe",
                                tags: ["owner": "payments"],
                                grants: [IdentityGrant(role: "Reader", scope: "/subscriptions/\(subscription)/resourceGroups/podid-dev/providers/Microsoft.Sql/servers/db")])
        change(&spec)
        return spec
    }

    static func fields(_ spec: IdentitySpec) -> [String] {
        do {
            try IdentityRules.validate(spec, policy: policy)
            return []
        } catch let error as DomainError {
            return error.fields.map(\.field)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test("ARM scopes: only ARM's name characters, no dot segments, escapes, queries or fragments")
    func armScopes() throws {
        let account = "/subscriptions/\(Self.subscription)/resourceGroups/podid-dev/providers/Microsoft.Storage/storageAccounts/data"
        for good in [account, "/subscriptions/\(Self.subscription)", "/subscriptions/\(Self.subscription)/resourceGroups/rg.(test)_1",
                     "/providers/Microsoft.Management/managementGroups/platform", account + "/blobServices/default/containers/raw-v1.2"] {
            #expect(Rules.isARMScope(good), "\(good)")
        }
        for bad in [account + "/../../../..", account + "/..", account + "/.", account + "/./x", account + "/%2e%2e", account + "/%2E%2E/x",
                    account + "/..%2f..", account + "?api-version=1", account + "#x", account + "/", account + "//x", account + "/a b",
                    account + "\\..", account + "/...", "subscriptions/\(Self.subscription)", "/subscriptions/not-a-guid",
                    "/subscriptions/\(Self.subscription)/resourceGroups/x\u{0}y", "/subscriptions/\(Self.subscription)/\u{301}x", "/subscriptions/\(Self.subscription)/e\u{301}"] {
            #expect(!Rules.isARMScope(bad), "\(bad)")
        }
        // A scope that slips past the first check (recorded by an older podid) is refused again
        // before the role assignment is made, and after it when Azure answers with another scope.
        #expect(throws: DomainError.self) {
            try IdentityRules.checkAssignmentScope(role: "Reader", requested: "/subscriptions/\(Self.subscription)/resourceGroups/podid-dev/x/..", policy: Self.policy)
        }
        #expect(throws: DomainError.self) {
            try IdentityRules.checkAssignmentScope(role: "Reader", requested: "/subscriptions/\(Self.subscription)/resourceGroups/other", policy: Self.policy)
        }
        #expect(throws: DomainError.self) {
            try IdentityRules.checkAssignmentScope(role: "Reader", requested: account.replacingOccurrences(of: "podid-dev", with: "podid-dev/providers/x/y"),
                                                   landed: "/subscriptions/\(Self.subscription)", policy: Self.policy)
        }
        try IdentityRules.checkAssignmentScope(role: "reader", requested: account, landed: account.lowercased(), policy: Self.policy)
    }

    @Test("a valid spec within the policy passes; locations normalise")
    func valid() throws {
        try IdentityRules.validate(Self.spec(), policy: Self.policy)
        #expect(IdentityRules.normalizedLocation("West Europe") == "westeurope")
    }

    @Test("names follow Azure's rule and aad-pod-identity's 24-character limit")
    func names() {
        #expect(IdentityRules.isIdentityName("abc"))
        #expect(IdentityRules.isIdentityName(String(repeating: "a", count: 24)))
        #expect(!IdentityRules.isIdentityName(String(repeating: "a", count: 25)))
        #expect(!IdentityRules.isIdentityName("ab"))
        #expect(!IdentityRules.isIdentityName("-abc"))
        #expect(!IdentityRules.isIdentityName("a.b.c"))
        #expect(!IdentityRules.isIdentityName("abc-"), "it ends a Kubernetes object name")
        #expect(IdentityRules.isIdentityName("orders_api-2"))
        #expect(Self.fields(Self.spec { $0.name = String(repeating: "x", count: 25) }) == ["name"])
    }

    @Test("field problems: subscription, resource group, location, reserved and long tags, grants, adoption ids")
    func fieldProblems() {
        #expect(Self.fields(Self.spec { $0.subscriptionId = "sub" }) == ["subscriptionId"])
        #expect(Self.fields(Self.spec { $0.resourceGroup = "bad/group" }) == ["resourceGroup"])
        #expect(Self.fields(Self.spec { $0.location = "west-europe!" }) == ["location"])
        #expect(Self.fields(Self.spec { $0.tags = ["podid-team": "x"] }) == ["tags.podid-team"])
        #expect(Self.fields(Self.spec { $0.tags = ["k": String(repeating: "v", count: 257)] }) == ["tags.k"])
        #expect(Self.fields(Self.spec { $0.grants = [IdentityGrant(role: "Reader", scope: "subscriptions/x")] }) == ["grants[0].scope"])
        #expect(Self.fields(Self.spec { $0.grants += $0.grants }) == ["grants[1]"])
        #expect(Self.fields(Self.spec { $0.adoptResourceId = "/not/an/id" }) == ["resourceId"])
        #expect(Self.fields(Self.spec {
            $0.adoptResourceId = "/subscriptions/\(Self.subscription)/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other"
        }) == ["resourceId"])
        #expect(Self.fields(Self.spec {
            $0.adoptResourceId = "/subscriptions/\(Self.subscription)/resourcegroups/PODID-DEV/providers/Microsoft.ManagedIdentity/userAssignedIdentities/payments-api"
        }).isEmpty, "ids compare case-insensitively")
    }

    @Test("the policy: subscription, resource group and every grant's role and scope; the 422 says what is allowed")
    func policy() throws {
        #expect(Self.fields(Self.spec { $0.subscriptionId = "11111111-1111-1111-1111-111111111111" }) == ["subscriptionId"])
        #expect(Self.fields(Self.spec { $0.resourceGroup = "other" }) == ["resourceGroup"])
        // No team can grant its identity Owner on the subscription.
        let owner = Self.spec { $0.grants = [IdentityGrant(role: "Owner", scope: "/subscriptions/\(Self.subscription)")] }
        #expect(Self.fields(owner) == ["grants[0]"])
        #expect {
            try IdentityRules.validate(owner, policy: Self.policy)
        } throws: { error in
            guard let error = error as? DomainError else { return false }
            return error.kind == .validation
                && error.fields.first?.message.contains("allowed: Reader on /subscriptions/\(Self.subscription)/resourceGroups/podid-dev and below") == true
        }
        // A scope that merely starts with the same characters is not below the prefix.
        #expect(Self.fields(Self.spec { $0.grants = [IdentityGrant(role: "Reader", scope: "/subscriptions/\(Self.subscription)/resourceGroups/podid-dev2")] }) == ["grants[0]"])
        #expect(Self.fields(Self.spec { $0.grants = [IdentityGrant(role: "reader", scope: "/SUBSCRIPTIONS/\(Self.subscription)/resourcegroups/PODID-DEV")] }).isEmpty)
        #expect {
            try IdentityRules.validate(Self.spec(), policy: .empty)
        } throws: { error in
            guard let error = error as? DomainError else { return false }
            return error.fields.map(\.field) == ["subscriptionId", "resourceGroup", "grants[0]"]
                && error.fields.first?.message.contains("nothing") == true
        }
    }
}
