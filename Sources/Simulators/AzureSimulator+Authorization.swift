import Foundation
import HTTPTypes
import Hummingbird

extension AzureSimulator {
    static func isGUID(_ text: String) -> Bool { UUID(uuidString: text) != nil }

    /// The principals role assignments may name: the identities' service principals and seeded ones,
    /// with when each appeared.
    func principalCreatedAt(_ principalId: String) -> Double? {
        let id = principalId.lowercased()
        if store.get("principals", id) != nil { return 0 }
        for identity in store.all("identities").values where identity[["properties", "principalId"]]?.string == id {
            if case .double(let created) = identity["createdAt"] { return created }
            return 0
        }
        return nil
    }

    func roleAssignment(_ method: HTTPRequest.Method, scope: String, name: String, body: [UInt8]) -> Response {
        guard Self.isGUID(name) else {
            return armError(.badRequest, "InvalidRoleAssignmentId",
                            "The role assignment ID '\(name)' is not valid. The role assignment ID must be a GUID.")
        }
        if let problem = scopeProblem(scope) { return problem }
        let id = "\(scope)/providers/Microsoft.Authorization/roleAssignments/\(name.lowercased())"
        let key = id.lowercased()
        switch method {
        case .get:
            guard let stored = store.get("roleAssignments", key) else { return roleAssignmentNotFound() }
            return jsonResponse(.ok, stored, headers: readHeaders())
        case .delete:
            return store.update { collections in
                guard let stored = collections["roleAssignments"]?[key] else { return (Response(status: .noContent), []) }
                return (jsonResponse(.ok, stored), [("roleAssignments", key, nil)])
            }
        case .put:
            guard let request = JSON.parse(body), let properties = request["properties"], properties.object != nil else {
                return armError(.badRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'properties' is required.")
            }
            guard let roleDefinitionId = properties["roleDefinitionId"]?.string, let principalId = properties["principalId"]?.string else {
                return armError(.badRequest, "InvalidRequestContent", "The request content was invalid: 'properties.roleDefinitionId' and 'properties.principalId' are required.")
            }
            let roleGuid = String(roleDefinitionId.split(separator: "/").last ?? "").lowercased()
            guard Self.builtInRoles.values.contains(roleGuid) else {
                return armError(.badRequest, "RoleDefinitionDoesNotExist", "The specified role definition with ID '\(roleGuid)' does not exist.")
            }
            let principalType = properties["principalType"]?.string
            let window = settings.withLock { $0.principalNotFoundSeconds }
            guard let created = principalCreatedAt(principalId), Date().timeIntervalSince1970 - created >= window else {
                return armError(.badRequest, "PrincipalNotFound",
                                "Principal \(principalId.replacingOccurrences(of: "-", with: "")) does not exist in the directory \(tenantId). Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype")
            }
            if let principalType, principalType != "ServicePrincipal" {
                return armError(.badRequest, "UnmatchedPrincipalType",
                                "The PrincipalId '\(principalId.replacingOccurrences(of: "-", with: ""))' has type 'ServicePrincipal' , which is different from specified PrincipalType '\(principalType)'.")
            }
            return store.update { collections in
                let assignments = collections["roleAssignments"] ?? [:]
                let now = kubeTimestamp()
                if let existing = assignments[key] {
                    let same = existing[["properties", "principalId"]]?.string == principalId.lowercased()
                        && existing[["properties", "roleDefinitionId"]]?.string?.lowercased().hasSuffix(roleGuid) == true
                    guard same else {
                        return (armError(.conflict, "RoleAssignmentUpdateNotPermitted",
                                         "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."), [])
                    }
                    return (jsonResponse(.ok, existing), [])
                }
                if let other = assignments.values.first(where: {
                    $0[["properties", "scope"]]?.string?.lowercased() == scope.lowercased()
                        && $0[["properties", "principalId"]]?.string == principalId.lowercased()
                        && $0[["properties", "roleDefinitionId"]]?.string?.lowercased().hasSuffix(roleGuid) == true
                }) {
                    let otherName = (other["name"]?.string ?? "").replacingOccurrences(of: "-", with: "")
                    return (armError(.conflict, "RoleAssignmentExists",
                                     "The role assignment already exists. The ID of the existing role assignment is \(otherName)."), [])
                }
                let subscriptionId = scope.split(separator: "/").dropFirst().first.map(String.init) ?? ""
                let assignment: JSON = [
                    "id": .string(id), "name": .string(name.lowercased()), "type": "Microsoft.Authorization/roleAssignments",
                    "properties": [
                        "roleDefinitionId": .string("/subscriptions/\(subscriptionId)/providers/Microsoft.Authorization/roleDefinitions/\(roleGuid)"),
                        "principalId": .string(principalId.lowercased()), "principalType": .string(principalType ?? "ServicePrincipal"),
                        "scope": .string(scope), "createdOn": .string(now), "updatedOn": .string(now), "createdBy": .null,
                        "updatedBy": .string(clientId),
                    ],
                ]
                return (jsonResponse(.created, assignment, headers: [HTTPField.Name("x-ms-ratelimit-remaining-subscription-writes")!: "199"]),
                        [("roleAssignments", key, assignment)])
            }
        default:
            return armError(.methodNotAllowed, "MethodNotAllowed", "The requested method \(method.rawValue) is not allowed.")
        }
    }

    func roleAssignmentNotFound() -> Response {
        armError(.notFound, "RoleAssignmentNotFound", "The role assignment '' is not found.")
    }

    /// A scope under a subscription that does not exist, or under a resource group that does not.
    func scopeProblem(_ scope: String) -> Response? {
        let parts = scope.split(separator: "/").map(String.init)
        guard parts.count >= 2, parts[0].lowercased() == "subscriptions" else {
            return armError(.badRequest, "InvalidScope", "The scope '\(scope)' is not valid: it must start with /subscriptions/<id>.")
        }
        guard subscriptionExists(parts[1]) else { return subscriptionNotFound(parts[1]) }
        if parts.count >= 4, parts[2].lowercased() == "resourcegroups", resourceGroup(parts[1], parts[3]) == nil {
            return resourceGroupNotFound(parts[3])
        }
        return nil
    }

    func listRoleAssignments(scope: String, query: [String: String], request: Request) -> Response {
        if let problem = scopeProblem(scope) { return problem }
        let lowerScope = scope.lowercased()
        let filter = query["$filter"] ?? ""
        var principal: String?
        var atScopeOnly = false
        if filter.hasPrefix("principalId eq ") {
            principal = filter.dropFirst("principalId eq ".count).trimmingCharacters(in: CharacterSet(charactersIn: "' ")).lowercased()
        } else if filter == "atScope()" {
            atScopeOnly = true
        } else if !filter.isEmpty {
            return armError(.badRequest, "InvalidFilter", "The filter '\(filter)' is not supported; use principalId eq '{id}' or atScope().")
        }
        let items = store.all("roleAssignments").values.filter { assignment in
            let assignmentScope = (assignment[["properties", "scope"]]?.string ?? "").lowercased()
            let above = lowerScope.hasPrefix(assignmentScope + "/") || lowerScope == assignmentScope
            let below = assignmentScope.hasPrefix(lowerScope + "/")
            if atScopeOnly { return above }
            if let principal, assignment[["properties", "principalId"]]?.string != principal { return false }
            return above || below
        }.sorted { ($0["id"]?.string ?? "") < ($1["id"]?.string ?? "") }
        return page(items, query: query, request: request)
    }

    func roleDefinitions(scope: String, id: String?, query: [String: String]) -> Response {
        func definition(_ name: String, _ guid: String) -> JSON {
            [
                "id": .string("\(scope)/providers/Microsoft.Authorization/roleDefinitions/\(guid)"), "name": .string(guid),
                "type": "Microsoft.Authorization/roleDefinitions",
                "properties": [
                    "roleName": .string(name), "type": "BuiltInRole", "description": .string("Built-in role \(name)."),
                    "assignableScopes": .array(["/"]),
                    "permissions": .array([["actions": .array([]), "notActions": .array([]), "dataActions": .array([]), "notDataActions": .array([])]]),
                ],
            ]
        }
        if let id {
            guard let (name, guid) = Self.builtInRoles.first(where: { $0.value == id.lowercased() }) else {
                return armError(.notFound, "RoleDefinitionDoesNotExist", "The specified role definition with ID '\(id)' does not exist.")
            }
            return jsonResponse(.ok, definition(name, guid))
        }
        let filter = query["$filter"] ?? ""
        var roles = Self.builtInRoles.sorted { $0.key < $1.key }
        if filter.hasPrefix("roleName eq ") {
            let wanted = filter.dropFirst("roleName eq ".count).trimmingCharacters(in: CharacterSet(charactersIn: "' "))
            roles = roles.filter { $0.key.lowercased() == wanted.lowercased() }
        }
        return jsonResponse(.ok, ["value": .array(roles.map { definition($0.key, $0.value) })])
    }
}
