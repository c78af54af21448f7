import Foundation
import Simulators
import Testing

@Suite("Azure simulator", .timeLimit(.minutes(5)))
struct AzureSimulatorTests {
    static let subscription = "00000000-0000-0000-0000-000000000000"
    static let tenant = "00000000-0000-0000-0000-000000000001"

    static func identityURL(_ base: String, _ name: String, group: String = "podid-dev", version: String? = "2023-01-31") -> String {
        "\(base)/subscriptions/\(subscription)/resourceGroups/\(group)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)"
            + (version.map { "?api-version=\($0)" } ?? "")
    }

    @Test("Entra token endpoint: client secret, federated assertion, and AADSTS errors")
    func entraTokens() async throws {
        try await withSimulators { sims in
            let url = "\(sims.azureURL)/\(Self.tenant)/oauth2/v2.0/token"
            let scope = "scope=https%3A%2F%2Fmanagement.azure.com%2F.default&grant_type=client_credentials"
            let ok = try await send("POST", url, body: "client_id=dev&client_secret=dev&\(scope)", contentType: "application/x-www-form-urlencoded", token: nil)
            #expect(ok.status == 200)
            #expect(ok.json["token_type"] == "Bearer")
            #expect(ok.json["expires_in"]?.int == 3599, "expires_in is a number here")
            let token = try #require(ok.json["access_token"]?.string)
            // The issued token works against ARM.
            #expect(try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/resourcegroups/podid-dev?api-version=2021-04-01", token: token).status == 200)

            let wrong = try await send("POST", url, body: "client_id=dev&client_secret=nope&\(scope)", contentType: "application/x-www-form-urlencoded", token: nil)
            #expect(wrong.status == 401)
            #expect(wrong.json["error"] == "invalid_client")
            #expect(wrong.json["error_description"]?.string?.hasPrefix("AADSTS7000215") == true)
            #expect(wrong.json["error_codes"] == [7000215])

            let missing = try await send("POST", url, body: "client_id=dev&\(scope)", contentType: "application/x-www-form-urlencoded", token: nil)
            #expect(missing.status == 400)
            #expect(missing.json["error_description"]?.string?.hasPrefix("AADSTS7000216") == true)
            let tenant = try await send("POST", "\(sims.azureURL)/not-a-tenant/oauth2/v2.0/token", body: "client_id=dev&client_secret=dev&\(scope)",
                                        contentType: "application/x-www-form-urlencoded", token: nil)
            #expect(tenant.json["error_description"]?.string?.hasPrefix("AADSTS90002") == true)
            let badScope = try await send("POST", url, body: "client_id=dev&client_secret=dev&grant_type=client_credentials&scope=https://management.azure.com",
                                          contentType: "application/x-www-form-urlencoded", token: nil)
            #expect(badScope.json["error"] == "invalid_scope")

            let federated = try await send(
                "POST", url,
                body: "client_id=dev&\(scope)&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=aaa.bbb.ccc",
                contentType: "application/x-www-form-urlencoded", token: nil)
            #expect(federated.status == 200)
        }
    }

    @Test("IMDS requires Metadata: true and answers every value as a string")
    func imds() async throws {
        try await withSimulators { sims in
            let url = "\(sims.azureURL)/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"
            let noHeader = try await send("GET", url, token: nil)
            #expect(noHeader.status == 400)
            #expect(noHeader.json["error_description"] == "Required metadata header not specified")
            let ok = try await send("GET", url, headers: ["Metadata": "true"], token: nil)
            #expect(ok.status == 200)
            #expect(ok.json["expires_in"]?.string == "3599")
            #expect(ok.json["expires_on"]?.string != nil)
            #expect(ok.json["resource"] == "https://management.azure.com/")
            let unknown = try await send("GET", url + "&client_id=22222222-2222-2222-2222-222222222222", headers: ["Metadata": "true"], token: nil)
            #expect(unknown.status == 400)
            #expect(unknown.json["error_description"] == "Identity not found")
        }
    }

    @Test("identities: PUT 201 then 200 with the same ids, lower-case resourcegroups, GET, PATCH tags, DELETE 200 then 204")
    func identityLifecycle() async throws {
        try await withSimulators { sims in
            let url = Self.identityURL(sims.azureURL, "payments-api")
            let created = try await send("PUT", url, body: #"{"location":"westeurope","tags":{"a":"1"}}"#)
            #expect(created.status == 201)
            #expect(created.header("x-ms-request-id") != nil)
            #expect(created.header("x-ms-correlation-request-id") != nil)
            let id = try #require(created.json["id"]?.string)
            #expect(id.contains("/resourcegroups/podid-dev/"))
            #expect(created.header("Location") == id, "the 201 Location is the resource path, not a polling URL")
            let clientId = try #require(created.json[["properties", "clientId"]]?.string)
            let principalId = try #require(created.json[["properties", "principalId"]]?.string)
            #expect(created.json[["properties", "tenantId"]] == .string(Self.tenant))

            let again = try await send("PUT", url, body: #"{"location":"westeurope","tags":{"b":"2"}}"#)
            #expect(again.status == 200)
            #expect(again.json[["properties", "clientId"]]?.string == clientId)
            #expect(again.json[["properties", "principalId"]]?.string == principalId)
            #expect(again.json["tags"] == ["b": "2"], "PUT replaces tags")

            let moved = try await send("PUT", url, body: #"{"location":"eastus"}"#)
            #expect(moved.status == 409)
            #expect(moved.json[["error", "code"]] == "InvalidResourceLocation")

            let upper = try await send("GET", Self.identityURL(sims.azureURL, "PAYMENTS-API"))
            #expect(upper.status == 200, "names compare case-insensitively")
            let patched = try await send("PATCH", url, body: #"{"tags":{"c":"3"}}"#)
            #expect(patched.status == 200)
            #expect(patched.json["tags"] == ["c": "3"])

            let deleted = try await send("DELETE", url)
            #expect(deleted.status == 200)
            #expect(deleted.body.isEmpty)
            #expect(try await send("DELETE", url).status == 204)
            let gone = try await send("GET", url)
            #expect(gone.status == 404)
            #expect(gone.json[["error", "code"]] == "ResourceNotFound")
        }
    }

    @Test("ARM errors: api-version, auth, names, locations, resource groups, subscriptions")
    func armErrors() async throws {
        try await withSimulators { sims in
            let url = Self.identityURL(sims.azureURL, "payments-api", version: nil)
            let missing = try await send("GET", url)
            #expect(missing.status == 400)
            #expect(missing.json[["error", "code"]] == "MissingApiVersionParameter")
            let wrongVersion = try await send("GET", url + "?api-version=2001-01-01")
            #expect(wrongVersion.json[["error", "code"]] == "InvalidApiVersionParameter")
            let noToken = try await send("GET", url + "?api-version=2023-01-31", token: nil)
            #expect(noToken.status == 401)
            #expect(noToken.json[["error", "code"]] == "InvalidAuthenticationToken")
            #expect(noToken.header("WWW-Authenticate") != nil)
            #expect(try await send("GET", url + "?api-version=2023-01-31", token: "forged").status == 401)

            let badName = try await send("PUT", Self.identityURL(sims.azureURL, "-x"), body: #"{"location":"westeurope"}"#)
            #expect(badName.status == 400)
            #expect(badName.json[["error", "code"]] == "InvalidResourceName")
            let badLocation = try await send("PUT", Self.identityURL(sims.azureURL, "abc"), body: #"{"location":"atlantis"}"#)
            #expect(badLocation.json[["error", "code"]] == "LocationNotAvailableForResourceType")
            let noGroup = try await send("PUT", Self.identityURL(sims.azureURL, "abc", group: "nope"), body: #"{"location":"westeurope"}"#)
            #expect(noGroup.status == 404)
            #expect(noGroup.json[["error", "code"]] == "ResourceGroupNotFound")
            #expect(noGroup.json[["error", "message"]] == "Resource group 'nope' could not be found.")
            let group = try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/resourcegroups/PODID-DEV?api-version=2021-04-01")
            #expect(group.status == 200)
            let otherSub = try await send("GET", "\(sims.azureURL)/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/x?api-version=2021-04-01")
            #expect(otherSub.json[["error", "code"]] == "SubscriptionNotFound")
        }
    }

    @Test("lists page with nextLink, per resource group and per subscription")
    func paging() async throws {
        try await withSimulators { sims in
            sims.azure.configure { $0.pageSize = 2; $0.identityWriteBurst = 100 }
            sims.azure.seedResourceGroup(subscription: Self.subscription, name: "other", location: "westeurope")
            for name in ["id-a", "id-b", "id-c"] {
                #expect(try await send("PUT", Self.identityURL(sims.azureURL, name), body: #"{"location":"westeurope"}"#).status == 201)
            }
            #expect(try await send("PUT", Self.identityURL(sims.azureURL, "id-d", group: "other"), body: #"{"location":"westeurope"}"#).status == 201)
            var names: [String] = []
            var next: String? = "\(sims.azureURL)/subscriptions/\(Self.subscription)/resourceGroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31"
            var pages = 0
            while let url = next {
                let page = try await send("GET", url)
                #expect(page.status == 200)
                names += (page.json["value"]?.array ?? []).compactMap { $0["name"]?.string }
                next = page.json["nextLink"]?.string
                pages += 1
            }
            #expect(names == ["id-a", "id-b", "id-c"])
            #expect(pages == 2)
            let all = try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31")
            #expect(all.json["value"]?.array?.count == 2)
            #expect(all.json["nextLink"] != nil)
        }
    }

    @Test("identity writes are throttled per subscription with Retry-After; fault rules inject 429, 500 and latency")
    func throttlingAndFaults() async throws {
        try await withSimulators { sims in
            // A token every 100 s: no loaded machine refills the bucket between the three writes.
            sims.azure.configure { $0.identityWritesPerSecond = 0.01; $0.identityWriteBurst = 2 }
            var statuses: [Int] = []
            var throttled: HTTPAnswer?
            for index in 0..<3 {
                let answer = try await send("PUT", Self.identityURL(sims.azureURL, "burst-\(index)"), body: #"{"location":"westeurope"}"#)
                statuses.append(answer.status)
                if answer.status == 429 { throttled = answer }
            }
            #expect(statuses == [201, 201, 429])
            #expect(throttled?.header("Retry-After") != nil)
            #expect(throttled?.header("x-ms-ratelimit-remaining-subscription-writes") == "0")
            #expect(throttled?.json[["error", "code"]] == "TooManyRequests")

            sims.azure.configure { $0.faults = [SimFaultRule(operation: "identity.get", throttleRate: 1, retryAfterSeconds: 7)] }
            let faulted = try await send("GET", Self.identityURL(sims.azureURL, "burst-0"))
            #expect(faulted.status == 429)
            #expect(faulted.header("Retry-After") == "7")
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "*", errorRate: 1)] }
            #expect(try await send("GET", Self.identityURL(sims.azureURL, "burst-0")).status == 500)
            sims.azure.configure { $0.faults = [] }
            #expect(try await send("GET", Self.identityURL(sims.azureURL, "burst-0")).status == 200)

            // The request log records what was answered, with operations.
            let log = try await send("GET", "\(sims.azureURL)/_sim/requests", token: nil)
            let operations = (log.json.array ?? []).compactMap { $0["operation"]?.string }
            #expect(operations.filter { $0 == "identity.put" }.count == 3)
            #expect((log.json.array ?? []).contains { $0["status"]?.int == 429 && $0["operation"] == "identity.get" })
        }
    }

    @Test("role assignments: PrincipalNotFound while the principal replicates, RoleAssignmentExists, GUID names, list by principal")
    func roleAssignments() async throws {
        try await withSimulators { sims in
            // A window no loaded machine outruns; closing it then stands for the time passing.
            sims.azure.configure { $0.principalNotFoundSeconds = 120 }
            let identity = try await send("PUT", Self.identityURL(sims.azureURL, "payments-api"), body: #"{"location":"westeurope"}"#)
            let principal = try #require(identity.json[["properties", "principalId"]]?.string)
            let scope = "/subscriptions/\(Self.subscription)/resourceGroups/podid-dev"
            let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
            let body = #"{"properties":{"roleDefinitionId":"/subscriptions/\#(Self.subscription)/providers/Microsoft.Authorization/roleDefinitions/\#(reader)","principalId":"\#(principal)","principalType":"ServicePrincipal"}}"#
            let name = "05c5a614-a7d6-4502-b150-c2fb455033ff"
            let url = "\(sims.azureURL)\(scope)/providers/Microsoft.Authorization/roleAssignments/\(name)?api-version=2022-04-01"
            let early = try await send("PUT", url, body: body)
            #expect(early.status == 400)
            #expect(early.json[["error", "code"]] == "PrincipalNotFound")
            sims.azure.configure { $0.principalNotFoundSeconds = 0 }
            let created = try await send("PUT", url, body: body)
            #expect(created.status == 201)
            #expect(created.json[["properties", "scope"]]?.string == scope)
            #expect(try await send("PUT", url, body: body).status == 200)

            let other = "\(sims.azureURL)\(scope)/providers/Microsoft.Authorization/roleAssignments/11111111-2222-3333-4444-555555555555?api-version=2022-04-01"
            let exists = try await send("PUT", other, body: body)
            #expect(exists.status == 409)
            #expect(exists.json[["error", "code"]] == "RoleAssignmentExists")
            #expect(exists.json[["error", "message"]]?.string?.contains(name.replacingOccurrences(of: "-", with: "")) == true)

            let notGuid = try await send("PUT", "\(sims.azureURL)\(scope)/providers/Microsoft.Authorization/roleAssignments/mine?api-version=2022-04-01", body: body)
            #expect(notGuid.json[["error", "code"]] == "InvalidRoleAssignmentId")
            let unknownPrincipal = body.replacingOccurrences(of: principal, with: "99999999-9999-9999-9999-999999999999")
            #expect(try await send("PUT", other, body: unknownPrincipal).json[["error", "code"]] == "PrincipalNotFound")

            let listed = try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'\(principal)'")
            #expect(listed.json["value"]?.array?.count == 1, "the principal filter finds assignments below the scope")
            #expect(try await send("GET", url).status == 200)
            #expect(try await send("DELETE", url).status == 200)
            #expect(try await send("DELETE", url).status == 204)
            #expect(try await send("GET", url).status == 404)

            let byName = try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%20eq%20'Managed%20Identity%20Operator'")
            #expect(byName.json["value"]?.array?.first?["name"] == "f1a07417-d97a-45cb-824c-7a7467783830")
        }
    }

    @Test("admin switches: an identity deleted behind podid's back, added latency, extra resource groups and principals")
    func adminSwitches() async throws {
        try await withSimulators { sims in
            #expect(try await send("PUT", Self.identityURL(sims.azureURL, "victim"), body: #"{"location":"westeurope"}"#).status == 201)
            let deleted = try await send("DELETE", "\(sims.azureURL)/_sim/identities/\(Self.subscription)/podid-dev/victim", token: nil)
            #expect(deleted.status == 204)
            #expect(try await send("GET", Self.identityURL(sims.azureURL, "victim")).status == 404)

            _ = try await send("PATCH", "\(sims.azureURL)/_sim/settings", body: #"{"faults":[{"operation":"resourceGroup.get","latencyMs":300}]}"#, token: nil)
            let started = ContinuousClock.now
            _ = try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/resourcegroups/podid-dev?api-version=2021-04-01")
            #expect(ContinuousClock.now - started >= .milliseconds(300))
            #expect(try await send("PATCH", "\(sims.azureURL)/_sim/settings", body: #"{"pageSize":"many"}"#, token: nil).status == 400)

            _ = try await send("POST", "\(sims.azureURL)/_sim/resourcegroups", body: #"{"subscription":"\#(Self.subscription)","name":"extra","location":"eastus"}"#, token: nil)
            #expect(try await send("GET", "\(sims.azureURL)/subscriptions/\(Self.subscription)/resourcegroups/extra?api-version=2021-04-01").json["location"] == "eastus")
            let kubelet = "33333333-3333-3333-3333-333333333333"
            _ = try await send("POST", "\(sims.azureURL)/_sim/principals", body: #"{"principalId":"\#(kubelet)"}"#, token: nil)
            let operatorRole = "f1a07417-d97a-45cb-824c-7a7467783830"
            let assignment = try await send(
                "PUT", "\(sims.azureURL)/subscriptions/\(Self.subscription)/resourceGroups/podid-dev/providers/Microsoft.Authorization/roleAssignments/\(UUID().uuidString.lowercased())?api-version=2022-04-01",
                body: #"{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/\#(operatorRole)","principalId":"\#(kubelet)"}}"#)
            #expect(assignment.status == 201)
        }
    }

    @Test("state is journalled: a new simulator on the same files has the identities, a torn last line is skipped")
    func journal() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let clientId = try await withSimulators(dataDirectory: directory) { sims in
            let created = try await send("PUT", Self.identityURL(sims.azureURL, "kept"), body: #"{"location":"westeurope"}"#)
            return created.json[["properties", "clientId"]]?.string
        }
        let journal = directory.appendingPathComponent("sim-azure.journal")
        let handle = try FileHandle(forWritingTo: journal)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"c":"identities","k":"torn"#.utf8))
        try handle.close()
        try await withSimulators(dataDirectory: directory) { sims in
            let again = try await send("GET", Self.identityURL(sims.azureURL, "kept"))
            #expect(again.status == 200)
            #expect(again.json[["properties", "clientId"]]?.string == clientId)
        }
    }
}
