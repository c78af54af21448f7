import Crypto
import Foundation

/// The names podid gives role assignments: a UUIDv5 of (scope, role, principal), so that a retried
/// PUT targets the same assignment and podid can recognise the assignments it made.
public enum RoleAssignmentNaming {
    /// podid's name for the assignment of `roleDefinitionId` to `principalId` on `scope`.
    public static func name(scope: String, roleDefinitionId: String, principalId: String) -> String {
        let role = String(roleDefinitionId.split(separator: "/").last ?? "").lowercased()
        return UUIDv5.make(namespace: UUIDv5.podidNamespace, name: "\(scope.lowercased())|\(role)|\(principalId.lowercased())")
    }

    /// Whether podid made `assignment` (its name is podid's name for it).
    public static func isPodids(_ assignment: RoleAssignmentInfo) -> Bool {
        let scope = assignment.scope.isEmpty ? scopeOf(assignmentId: assignment.id) : assignment.scope
        return assignment.name.lowercased()
            == name(scope: scope, roleDefinitionId: assignment.roleDefinitionId, principalId: assignment.principalId)
    }

    /// The scope part of a role assignment id.
    public static func scopeOf(assignmentId: String) -> String {
        guard let range = assignmentId.range(of: "/providers/Microsoft.Authorization/roleAssignments/", options: [.caseInsensitive, .backwards])
        else { return assignmentId }
        return String(assignmentId[..<range.lowerBound])
    }
}

/// Name-based UUIDs (RFC 4122 version 5, SHA-1).
public enum UUIDv5 {
    /// podid's namespace for role-assignment names.
    public static let podidNamespace = UUID(uuidString: "6f1c3a52-7d0e-4b7e-9a51-0c2b8d9e4f10")!

    /// The version-5 UUID of `name` in `namespace`, lower case.
    public static func make(namespace: UUID, name: String) -> String {
        var bytes = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        bytes += Array(name.utf8)
        var digest = Array(Insecure.SHA1.hash(data: bytes).prefix(16))
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.joined(separator: "-")
    }
}
