import Foundation

/// An error from Azure or a Kubernetes API server, classified once for every caller: retryable
/// (throttling, 5xx, timeouts, connection errors, replication delays) or permanent, always with the
/// upstream request ids for the audit log.
public struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which service answered.
    public enum Service: String, Sendable { case azure, entra, kubernetes }

    /// The service.
    public var service: Service
    /// The HTTP status, if an answer came.
    public var status: Int?
    /// The service's error code (`PrincipalNotFound`, `Conflict`…), or a transport failure name.
    public var code: String
    /// What went wrong, for people: names the permission and scope on a 403.
    public var message: String
    /// Whether trying again later may succeed.
    public var retryable: Bool
    /// How long the service asked to wait (`Retry-After`).
    public var retryAfter: Duration?
    /// `x-ms-request-id`, or the Kubernetes audit id.
    public var requestId: String?
    /// `x-ms-correlation-request-id`.
    public var correlationId: String?

    /// Creates an upstream error.
    public init(service: Service, status: Int?, code: String, message: String, retryable: Bool,
                retryAfter: Duration? = nil, requestId: String? = nil, correlationId: String? = nil) {
        self.service = service
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retryAfter = retryAfter
        self.requestId = requestId
        self.correlationId = correlationId
    }

    public var description: String {
        let status = self.status.map { " \($0)" } ?? ""
        let ids = [requestId.map { "request id \($0)" }, correlationId.map { "correlation id \($0)" }].compactMap { $0 }
        return "\(service.rawValue)\(status) \(code): \(message)\(ids.isEmpty ? "" : " (\(ids.joined(separator: ", ")))")"
    }
}

/// Where a user-assigned identity lives.
public struct AzureIdentityRef: Sendable, Hashable {
    public var subscriptionId: String
    public var resourceGroup: String
    public var name: String

    /// Creates a reference.
    public init(subscriptionId: String, resourceGroup: String, name: String) {
        self.subscriptionId = subscriptionId
        self.resourceGroup = resourceGroup
        self.name = name
    }

    /// Parses an ARM id (`resourceGroups` or `resourcegroups`, any case).
    public init?(resourceId: String) {
        let parts = resourceId.split(separator: "/").map(String.init)
        guard parts.count == 8, parts[0].lowercased() == "subscriptions", parts[2].lowercased() == "resourcegroups",
              parts[4].lowercased() == "providers", parts[5].lowercased() == "microsoft.managedidentity",
              parts[6].lowercased() == "userassignedidentities"
        else { return nil }
        self.init(subscriptionId: parts[1], resourceGroup: parts[3], name: parts[7])
    }

    /// The ARM id.
    public var resourceId: String {
        "/subscriptions/\(subscriptionId)/resourceGroups/\(resourceGroup)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)"
    }
}

/// A user-assigned identity as Azure describes it.
public struct AzureIdentityInfo: Sendable, Equatable {
    public var resourceId: String
    public var name: String
    public var location: String
    public var tags: [String: String]
    public var clientId: String
    public var principalId: String
    public var tenantId: String
    /// The `x-ms-request-id` of the answer.
    public var requestId: String?

    /// Creates an identity description.
    public init(resourceId: String, name: String, location: String, tags: [String: String], clientId: String,
                principalId: String, tenantId: String, requestId: String?) {
        self.resourceId = resourceId
        self.name = name
        self.location = location
        self.tags = tags
        self.clientId = clientId
        self.principalId = principalId
        self.tenantId = tenantId
        self.requestId = requestId
    }
}

/// A role assignment as Azure describes it.
public struct RoleAssignmentInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    public var scope: String
    public var roleDefinitionId: String
    public var principalId: String
    /// The `x-ms-request-id` of the answer.
    public var requestId: String?

    /// Creates a role assignment description.
    public init(id: String, name: String, scope: String, roleDefinitionId: String, principalId: String, requestId: String?) {
        self.id = id
        self.name = name
        self.scope = scope
        self.roleDefinitionId = roleDefinitionId
        self.principalId = principalId
        self.requestId = requestId
    }

    /// The role definition's GUID (ARM returns the id with or without the subscription prefix).
    public var roleDefinitionGuid: String {
        String(roleDefinitionId.split(separator: "/").last ?? "").lowercased()
    }
}

/// What a delete found.
public struct DeleteOutcome: Sendable, Equatable {
    /// Whether the thing existed (and is now gone).
    public var existed: Bool
    /// The upstream request id.
    public var requestId: String?

    /// Creates an outcome.
    public init(existed: Bool, requestId: String?) {
        self.existed = existed
        self.requestId = requestId
    }
}

/// The Azure calls podid makes; implemented by `ARMClient` in the Cloud target.
public protocol AzureGateway: Sendable {
    /// PUT: creates (or updates) an identity with a location and tags.
    func createOrUpdateIdentity(_ ref: AzureIdentityRef, location: String, tags: [String: String]) async throws -> AzureIdentityInfo
    /// GET: the identity, or nil when it does not exist.
    func identity(_ ref: AzureIdentityRef) async throws -> AzureIdentityInfo?
    /// The identities of a resource group (following `nextLink`); empty when the group does not exist.
    func identities(subscriptionId: String, resourceGroup: String) async throws -> [AzureIdentityInfo]
    /// PATCH: replaces the tags.
    func updateIdentityTags(_ ref: AzureIdentityRef, tags: [String: String]) async throws -> AzureIdentityInfo
    /// DELETE.
    func deleteIdentity(_ ref: AzureIdentityRef) async throws -> DeleteOutcome
    /// PUT of a role assignment named deterministically from scope, role and principal (a retry
    /// targets the same name); an existing equal assignment counts as success.
    func assignRole(scope: String, roleDefinitionId: String, principalId: String) async throws -> RoleAssignmentInfo
    /// A role assignment by id, or nil when it does not exist.
    func roleAssignment(id: String) async throws -> RoleAssignmentInfo?
    /// The role assignments of a principal at, above or below a scope.
    func roleAssignments(scope: String, principalId: String) async throws -> [RoleAssignmentInfo]
    /// Every role assignment at, above or below a scope (all of a subscription's, for its scope).
    func roleAssignments(scope: String) async throws -> [RoleAssignmentInfo]
    /// DELETE of a role assignment by id.
    func deleteRoleAssignment(id: String) async throws -> DeleteOutcome
    /// The full id of a built-in or custom role by name, at a scope.
    func roleDefinitionId(roleName: String, scope: String) async throws -> String
    /// Whether a resource group exists.
    func resourceGroupExists(subscriptionId: String, name: String) async throws -> Bool
}
