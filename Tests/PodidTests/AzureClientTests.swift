import AsyncHTTPClient
@testable import Cloud
import Core
import Foundation
import Simulators
import Testing

/// The Azure client against the Azure simulator and the real example payloads.
@Suite("Azure client", .timeLimit(.minutes(5)))
struct AzureClientTests {
    static let subscription = "00000000-0000-0000-0000-000000000000"
    static let tenant = "00000000-0000-0000-0000-000000000001"

    static func withARM<R: Sendable>(
        secret: String = "dev", writesPerSecond: Double = 100, _ body: @Sendable (RunningSimulators, ARMClient, CachedCredential) async throws -> R
    ) async throws -> R {
        try await withSimulators { sims in
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let credential = CachedCredential(ClientSecretCredential(
                client: http, authorityHost: sims.azureURL, tenantId: tenant, clientId: "dev", secret: .value(secret)))
            let arm = ARMClient(client: http, endpoint: sims.azureURL, credential: credential, identityWritesPerSecond: writesPerSecond)
            let result: Result<R, any Error>
            do { result = .success(try await body(sims, arm, credential)) } catch { result = .failure(error) }
            try await http.shutdown()
            return try result.get()
        }
    }

    @Test("token providers: client secret, federated token file re-read on every request, IMDS, and the chain's order")
    func credentials() async throws {
        try await withSimulators { sims in
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { Task { try? await http.shutdown() } }
            let secret = ClientSecretCredential(client: http, authorityHost: sims.azureURL, tenantId: Self.tenant, clientId: "dev", secret: .value("dev"))
            let token = try await secret.fetchToken()
            #expect(token.expiresAt.timeIntervalSinceNow > 3000)

            let wrong = ClientSecretCredential(client: http, authorityHost: sims.azureURL, tenantId: Self.tenant, clientId: "dev", secret: .value("nope"))
            await #expect {
                try await wrong.fetchToken()
            } throws: { error in
                guard let error = error as? UpstreamError else { return false }
                return error.status == 401 && !error.retryable && error.message.contains("AADSTS7000215")
            }

            let file = FileManager.default.temporaryDirectory.appendingPathComponent("federated-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: file) }
            try "aaa.bbb.ccc".write(to: file, atomically: true, encoding: .utf8)
            let workload = WorkloadIdentityCredential(client: http, authorityHost: sims.azureURL, tenantId: Self.tenant, clientId: "dev", tokenFile: file.path)
            _ = try await workload.fetchToken()
            try "not-a-jwt".write(to: file, atomically: true, encoding: .utf8)
            await #expect(throws: UpstreamError.self, "the rotated file is read again") { try await workload.fetchToken() }
            let sent = sims.azure.requestLog.all.filter { $0.operation == "token.entra" }.compactMap(\.body)
            #expect(sent.allSatisfy { !$0.contains("aaa.bbb.ccc") }, "the request log masks assertions")
            #expect(sent.contains { $0.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer") })

            let imds = ManagedIdentityCredential(client: http, endpoint: sims.azureURL, clientId: nil)
            #expect(try await imds.fetchToken().expiresAt.timeIntervalSinceNow > 3000)

            let base = CredentialChain.Settings(tenantId: Self.tenant, clientId: "dev", clientSecret: nil, clientSecretFile: nil,
                                                federatedTokenFile: nil, authorityHost: sims.azureURL, imdsEndpoint: sims.azureURL)
            var withSecret = base
            withSecret.clientSecret = "dev"
            withSecret.federatedTokenFile = file.path
            #expect(try CredentialChain.credential(withSecret, client: http).kind == "client secret")
            var withFile = base
            withFile.federatedTokenFile = file.path
            #expect(try CredentialChain.credential(withFile, client: http).kind == "workload identity")
            #expect(try CredentialChain.credential(base, client: http).kind == "managed identity (IMDS)")
            var incomplete = base
            incomplete.clientSecret = "dev"
            incomplete.tenantId = nil
            #expect(throws: UpstreamError.self) { try CredentialChain.credential(incomplete, client: http) }
        }
    }

    @Test("tokens are cached, and concurrent callers share one refresh")
    func tokenCache() async throws {
        try await Self.withARM { sims, _, credential in
            sims.azure.requestLog.clear()
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await credential.token() } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(tokens.count == 1)
            #expect(sims.azure.requestLog.all.filter { $0.operation == "token.entra" }.count == 1)
            _ = try await credential.token()
            #expect(sims.azure.requestLog.all.filter { $0.operation == "token.entra" }.count == 1)
            await credential.invalidate()
            _ = try await credential.token()
            #expect(sims.azure.requestLog.all.filter { $0.operation == "token.entra" }.count == 2)
        }
    }

    @Test("identity PUT, GET, PATCH tags, DELETE; a missing identity is nil; the request matches the example's shape")
    func identities() async throws {
        try await Self.withARM { sims, arm, _ in
            let ref = AzureIdentityRef(subscriptionId: Self.subscription, resourceGroup: "podid-dev", name: "payments-api")
            let created = try await arm.createOrUpdateIdentity(ref, location: "westeurope", tags: ["podid-team": "payments"])
            #expect(created.resourceId.lowercased() == ref.resourceId.lowercased())
            #expect(created.tags == ["podid-team": "payments"])
            #expect(created.requestId != nil)
            let again = try await arm.createOrUpdateIdentity(ref, location: "westeurope", tags: ["podid-team": "payments"])
            #expect(again.clientId == created.clientId)
            #expect(try await arm.identity(ref)?.principalId == created.principalId)
            #expect(try await arm.updateIdentityTags(ref, tags: ["a": "b"]).tags == ["a": "b"])
            #expect(AzureIdentityRef(resourceId: created.resourceId) == ref, "ids parse back, lower-case resourcegroups included")

            let put = try #require(sims.azure.requestLog.all.first { $0.operation == "identity.put" })
            #expect(put.query.contains("api-version=2023-01-31"))
            let example = try Self.example("managedidentity/2023-01-31/IdentityCreate.json")
            let exampleKeys = Set(example.at("parameters", "parameters")?.members.keys.map { $0 } ?? [])
            let sentKeys = Set(JSONValue.parse(put.body ?? "")?.members.keys.map { $0 } ?? [])
            #expect(!sentKeys.isEmpty && sentKeys.isSubset(of: exampleKeys), "sent \(sentKeys), example has \(exampleKeys)")

            let patch = try #require(sims.azure.requestLog.all.first { $0.operation == "identity.patch" })
            let updateExample = try Self.example("managedidentity/2023-01-31/IdentityUpdate.json")
            let updateKeys = Set(updateExample.at("parameters", "parameters")?.members.keys.map { $0 } ?? [])
            let patchKeys = Set(JSONValue.parse(patch.body ?? "")?.members.keys.map { $0 } ?? [])
            #expect(patchKeys == ["tags"] && patchKeys.isSubset(of: updateKeys), "PATCH sends only tags, as the example does")

            #expect(try await arm.deleteIdentity(ref).existed)
            #expect(try await arm.deleteIdentity(ref).existed == false)
            #expect(try await arm.identity(ref) == nil)
            #expect(try await arm.resourceGroupExists(subscriptionId: Self.subscription, name: "podid-dev"))
            #expect(try await arm.resourceGroupExists(subscriptionId: Self.subscription, name: "nope") == false)
        }
    }

    @Test("role assignments: deterministic names make retries idempotent; RoleAssignmentExists is success; PrincipalNotFound is retryable")
    func roleAssignments() async throws {
        try await Self.withARM { sims, arm, _ in
            sims.azure.configure { $0.principalNotFoundSeconds = 60 }
            let identity = try await arm.createOrUpdateIdentity(
                AzureIdentityRef(subscriptionId: Self.subscription, resourceGroup: "podid-dev", name: "app"), location: "westeurope", tags: [:])
            let scope = "/subscriptions/\(Self.subscription)/resourceGroups/podid-dev"
            let reader = try await arm.roleDefinitionId(roleName: "Reader", scope: "/subscriptions/\(Self.subscription)")
            #expect(reader.hasSuffix("acdd72a7-3385-48ef-bd42-f606fba81ae7"))
            await #expect {
                try await arm.assignRole(scope: scope, roleDefinitionId: reader, principalId: identity.principalId)
            } throws: { error in
                (error as? UpstreamError).map { $0.code == "PrincipalNotFound" && $0.retryable } ?? false
            }
            sims.azure.configure { $0.principalNotFoundSeconds = 0 }
            let first = try await arm.assignRole(scope: scope, roleDefinitionId: reader, principalId: identity.principalId)
            let second = try await arm.assignRole(scope: scope, roleDefinitionId: reader, principalId: identity.principalId)
            #expect(first.name == second.name)
            #expect(first.name == ARMClient.roleAssignmentName(scope: scope, roleDefinitionId: reader, principalId: identity.principalId))
            let put = try #require(sims.azure.requestLog.all.last { $0.operation == "roleAssignment.put" })
            let example = try Self.example("authorization/2022-04-01/RoleAssignments_CreateForResourceGroup.json")
            let exampleKeys = Set(example.at("parameters", "parameters", "properties")?.members.keys.map { $0 } ?? [])
            let sentKeys = Set(JSONValue.parse(put.body ?? "")?.at("properties")?.members.keys.map { $0 } ?? [])
            #expect(sentKeys.isSubset(of: exampleKeys.union(["principalType"])) && sentKeys.contains("principalType"))

            // Someone else made the same grant under another name: still a success, naming theirs.
            let contributor = try await arm.roleDefinitionId(roleName: "Contributor", scope: "/subscriptions/\(Self.subscription)")
            let theirs = "11111111-2222-3333-4444-555555555555"
            let body = #"{"properties":{"roleDefinitionId":"\#(contributor)","principalId":"\#(identity.principalId)"}}"#
            #expect(try await send("PUT", "\(sims.azureURL)\(scope)/providers/Microsoft.Authorization/roleAssignments/\(theirs)?api-version=2022-04-01", body: body).status == 201)
            let existing = try await arm.assignRole(scope: scope, roleDefinitionId: contributor, principalId: identity.principalId)
            #expect(existing.name == theirs)

            let listed = try await arm.roleAssignments(scope: "/subscriptions/\(Self.subscription)", principalId: identity.principalId)
            #expect(Set(listed.map(\.roleDefinitionGuid)) == ["acdd72a7-3385-48ef-bd42-f606fba81ae7", "b24988ac-6180-42a0-ab88-20f7382dd24c"])
            #expect(try await arm.roleAssignment(id: first.id)?.principalId == identity.principalId)
            #expect(try await arm.deleteRoleAssignment(id: first.id).existed)
            #expect(try await arm.deleteRoleAssignment(id: first.id).existed == false)
            #expect(try await arm.roleAssignment(id: first.id) == nil)
        }
    }

    @Test("errors are classified: 429 with Retry-After and 5xx retryable, 404 and 401 permanent, 403 names the permission")
    func errorClassification() async throws {
        try await Self.withARM { sims, arm, _ in
            let ref = AzureIdentityRef(subscriptionId: Self.subscription, resourceGroup: "podid-dev", name: "x")
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "identity.get", throttleRate: 1, retryAfterSeconds: 9)] }
            await #expect {
                try await arm.identity(ref)
            } throws: { error in
                guard let error = error as? UpstreamError else { return false }
                return error.status == 429 && error.retryable && error.retryAfter == .seconds(9) && error.requestId != nil
                    && error.correlationId != nil
            }
            sims.azure.configure { $0.faults = [SimFaultRule(operation: "identity.get", errorRate: 1)] }
            await #expect { try await arm.identity(ref) } throws: { ($0 as? UpstreamError)?.retryable == true }
            sims.azure.configure { $0.faults = [] }
            let missingGroup = AzureIdentityRef(subscriptionId: Self.subscription, resourceGroup: "nope", name: "x")
            await #expect {
                try await arm.createOrUpdateIdentity(missingGroup, location: "westeurope", tags: [:])
            } throws: { error in
                (error as? UpstreamError).map { $0.code == "ResourceGroupNotFound" && !$0.retryable } ?? false
            }

            sims.azure.configure { $0.faults = [SimFaultRule(operation: "identity.put", forbiddenRate: 1)] }
            await #expect {
                try await arm.createOrUpdateIdentity(ref, location: "westeurope", tags: [:])
            } throws: { error in
                guard let error = error as? UpstreamError else { return false }
                return error.status == 403 && !error.retryable && error.code == "AuthorizationFailed"
                    && error.message.contains("userAssignedIdentities/write") && error.message.contains("Managed Identity Contributor")
            }
            sims.azure.configure { $0.faults = [] }

            let forbidden = ARMErrors.classify(
                HTTPExchange(status: 403, headers: [("x-ms-request-id", "r1")],
                             body: Array(#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/write' over scope '/subscriptions/s/resourceGroups/rg'."}}"#.utf8)),
                method: .PUT, url: "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x?api-version=2023-01-31")
            #expect(!forbidden.retryable)
            #expect(forbidden.message.contains("userAssignedIdentities/write"))
            #expect(forbidden.message.contains("Managed Identity Contributor"))
            #expect(forbidden.requestId == "r1")
        }
        // A token ARM does not accept: one refresh, then a permanent 401.
        try await withSimulators { sims in
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { Task { try? await http.shutdown() } }
            let arm = ARMClient(client: http, endpoint: sims.azureURL, credential: CachedCredential(ForgedCredential()))
            await #expect {
                try await arm.resourceGroupExists(subscriptionId: Self.subscription, name: "podid-dev")
            } throws: { error in
                (error as? UpstreamError).map { $0.status == 401 && $0.code == "InvalidAuthenticationToken" && !$0.retryable } ?? false
            }
        }
    }

    @Test("the client-side limit keeps identity writes under Azure's per-subscription limit: no 429")
    func rateLimit() async throws {
        try await Self.withARM(writesPerSecond: 4) { sims, arm, _ in
            // Azure allows small bursts; a burst of 2 absorbs network jitter between client pacing and arrival.
            sims.azure.configure { $0.identityWritesPerSecond = 4; $0.identityWriteBurst = 2 }
            // Without the client's limit, 8 writes at once would exceed the simulator's bucket.
            for index in 0..<8 {
                _ = try await arm.createOrUpdateIdentity(
                    AzureIdentityRef(subscriptionId: Self.subscription, resourceGroup: "podid-dev", name: "limited-\(index)"),
                    location: "westeurope", tags: [:])
            }
            #expect(!sims.azure.requestLog.all.contains { $0.status == 429 })
        }
    }

    @Test("every saved example response decodes with podid's decoders")
    func examplesDecode() throws {
        let identities = ["IdentityCreate.json", "IdentityGet.json", "IdentityUpdate.json"]
        for version in ["2023-01-31", "2024-11-30"] {
            for file in identities {
                let example = try Self.example("managedidentity/\(version)/\(file)")
                for (status, response) in example.at("responses")?.members ?? [:] {
                    guard let body = response.at("body") else { continue }
                    let info = try ARMClient.identity(HTTPExchange(status: Int(status) ?? 200, headers: [], body: Array(try JSONEncoder().encode(body))))
                    #expect(!info.clientId.isEmpty && !info.principalId.isEmpty, "\(version)/\(file)")
                }
            }
            let list = try Self.example("managedidentity/\(version)/IdentityListByResourceGroup.json")
            if case .array(let items)? = list.at("responses", "200", "body", "value") {
                for item in items {
                    #expect(throws: Never.self) { try ARMClient.identity(HTTPExchange(status: 200, headers: [], body: Array(try JSONEncoder().encode(item)))) }
                }
            }
        }
        for file in ["RoleAssignments_CreateForResourceGroup.json", "RoleAssignments_Get.json", "RoleAssignments_CreateById.json"] {
            let example = try Self.example("authorization/2022-04-01/\(file)")
            for (_, response) in example.at("responses")?.members ?? [:] {
                guard let body = response.at("body") else { continue }
                let info = try ARMClient.roleAssignment(HTTPExchange(status: 200, headers: [], body: Array(try JSONEncoder().encode(body))))
                #expect(info.roleDefinitionGuid.count == 36, "\(file)")
            }
        }
    }

    @Test("with PODID_LOOPBACK_ONLY no request leaves loopback: IMDS at 169.254.169.254 is refused before sending")
    func loopbackOnly() throws {
        let environment = ["PODID_LOOPBACK_ONLY": "1"]
        #expect(throws: UpstreamError.self) {
            try HTTPTransport.checkLoopback("http://169.254.169.254/metadata/identity/oauth2/token", environment: environment)
        }
        #expect(throws: UpstreamError.self) { try HTTPTransport.checkLoopback("https://management.azure.com/subscriptions", environment: environment) }
        #expect(throws: Never.self) { try HTTPTransport.checkLoopback("http://127.0.0.1:8081/x", environment: environment) }
        #expect(throws: Never.self) { try HTTPTransport.checkLoopback("http://[::1]:8081/x", environment: environment) }
        #expect(throws: Never.self) { try HTTPTransport.checkLoopback("https://management.azure.com", environment: [:]) }
        if ProcessInfo.processInfo.environment["CI"] != nil || ProcessInfo.processInfo.environment["PODID_TEST_BIN"] != nil {
            #expect(ProcessInfo.processInfo.environment["PODID_LOOPBACK_ONLY"] != nil, "make test sets PODID_LOOPBACK_ONLY")
        }
    }

    static func example(_ path: String) throws -> JSONValue {
        guard let url = Bundle.module.url(forResource: "Fixtures/azure-examples/\(path)", withExtension: nil),
              let data = FileManager.default.contents(atPath: url.path)
        else { throw TestSetupError("missing fixture \(path)") }
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }
}

/// A credential whose token ARM does not accept.
struct ForgedCredential: AzureCredential {
    var kind: String { "forged" }
    func fetchToken() async throws -> AccessToken { AccessToken(token: "forged", expiresAt: Date().addingTimeInterval(3600)) }
}
