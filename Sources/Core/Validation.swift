import Foundation

/// Name and value rules shared by every resource: Kubernetes (DNS-1123) and Azure.
public enum Rules {
    /// Whether `text` is a DNS-1123 label: lower-case letters, digits and `-`, starting and ending
    /// with a letter or digit, at most `maxLength` characters.
    public static func isDNS1123Label(_ text: String, maxLength: Int = 63) -> Bool {
        guard !text.isEmpty, text.utf8.count <= maxLength else { return false }
        let bytes = Array(text.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == 0x2D }
    }

    /// Whether `text` is a GUID in its canonical 8-4-4-4-12 form (subscription and tenant ids).
    public static func isGUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// Whether `text` follows Azure's resource group name rules: 1 to 90 characters of letters,
    /// digits, `_`, `-`, `.`, `(`, `)`, not ending in `.`.
    public static func isResourceGroupName(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 90, !text.hasSuffix(".") else { return false }
        return text.unicodeScalars.allSatisfy { scalar in
            CharacterSet.letters.contains(scalar) || CharacterSet.decimalDigits.contains(scalar)
                || "_-.()".unicodeScalars.contains(scalar)
        }
    }

    /// Whether `text` is an ARM scope podid accepts as a grant or a grant prefix: a subscription,
    /// something under one, or a management group. Each segment uses only the characters of ARM
    /// resource names (letters, digits, `-`, `_`, `.`, `(`, `)`) and none is a dot segment (`.`,
    /// `..`), since any hop that normalises the path would move a grant on
    /// `…/storageAccounts/data/../..` up to the resource group; percent escapes, `?`, `#`, `\` and
    /// spaces are refused for the same reason.
    public static func isARMScope(_ text: String) -> Bool {
        let segments = text.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count >= 3, segments[0].isEmpty else { return false }
        for segment in segments.dropFirst() {
            guard isARMSegment(segment) else { return false }
        }
        if segments[1].lowercased() == "subscriptions" { return isGUID(String(segments[2])) }
        return segments.count >= 5 && segments[1].lowercased() == "providers"
            && segments[2].lowercased() == "microsoft.management"
            && segments[3].lowercased() == "managementgroups"
    }

    /// One segment of an ARM id: not empty, not made of dots only, and only ARM's name characters.
    static func isARMSegment(_ segment: Substring) -> Bool {
        guard !segment.isEmpty, !segment.allSatisfy({ $0 == "." }) else { return false }
        return segment.unicodeScalars.allSatisfy { scalar in
            switch scalar.properties.generalCategory {
            // .NET's Char.IsLetterOrDigit, which ARM's name rules cite: letters and decimal digits, no marks.
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber: true
            default: "-_.()".unicodeScalars.contains(scalar)
            }
        }
    }

    /// Whether `text` is printable text of 1 to `maxLength` characters without control characters.
    public static func isPlainText(_ text: String, maxLength: Int) -> Bool {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty, text.count <= maxLength else { return false }
        return !text.unicodeScalars.contains { CharacterSet.controlCharacters.contains($0) }
    }
}

/// Collects field problems while validating one request.
public struct Validator: Sendable {
    /// The problems found so far.
    public private(set) var problems: [FieldProblem] = []

    /// Creates an empty validator.
    public init() {}

    /// Records a problem with `field` unless `condition` holds.
    public mutating func check(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String) {
        if !condition { problems.append(FieldProblem(field, message())) }
    }

    /// Records a problem for each entry of `list` listed more than once.
    public mutating func checkUnique(_ list: [String], _ field: String) {
        var seen = Set<String>()
        for (index, item) in list.enumerated() where !seen.insert(item).inserted {
            problems.append(FieldProblem("\(field)[\(index)]", "'\(item)' is listed twice."))
        }
    }

    /// Throws a 422 naming every problem, if there are any.
    public func throwIfInvalid() throws {
        if !problems.isEmpty { throw DomainError.invalid(problems) }
    }
}

extension Validator {
    /// Checks a team name.
    public mutating func checkTeamName(_ name: String, field: String = "name") {
        check(
            Rules.isDNS1123Label(name, maxLength: 40), field,
            "must be a DNS-1123 label: 1 to 40 lower-case letters, digits or '-', starting and ending with a letter or digit")
    }

    /// Checks a team's display name and contacts.
    public mutating func checkTeamDetails(displayName: String?, contacts: [String]?) {
        if let displayName {
            check(Rules.isPlainText(displayName, maxLength: 200), "displayName",
                  "must be 1 to 200 characters without control characters")
        }
        if let contacts {
            check(contacts.count <= 20, "contacts", "at most 20 contacts are allowed")
            for (index, contact) in contacts.enumerated() {
                check(Rules.isPlainText(contact, maxLength: 200), "contacts[\(index)]",
                      "must be 1 to 200 characters without control characters")
            }
            checkUnique(contacts, "contacts")
        }
    }

    /// Checks the parts of a team policy that are present.
    public mutating func checkPolicy(_ policy: TeamPolicyPatch, field: String = "policy") {
        if let subscriptions = policy.subscriptions {
            for (index, id) in subscriptions.enumerated() {
                check(Rules.isGUID(id), "\(field).subscriptions[\(index)]",
                      "must be a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)")
            }
            checkUnique(subscriptions.map { $0.lowercased() }, "\(field).subscriptions")
        }
        if let groups = policy.resourceGroups {
            for (index, group) in groups.enumerated() {
                check(Rules.isResourceGroupName(group), "\(field).resourceGroups[\(index)]",
                      "must be a resource group name: 1 to 90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'")
            }
            checkUnique(groups.map { $0.lowercased() }, "\(field).resourceGroups")
        }
        if let grants = policy.grants {
            for (index, grant) in grants.enumerated() {
                check(Rules.isPlainText(grant.role, maxLength: 128), "\(field).grants[\(index)].role",
                      "must be an Azure role name such as 'Reader' (1 to 128 characters)")
                check(Rules.isARMScope(grant.scopePrefix), "\(field).grants[\(index)].scopePrefix",
                      "must be an ARM scope such as /subscriptions/<id>/resourceGroups/<group>, without a trailing '/'")
            }
        }
        if let clusters = policy.clusters {
            for (index, cluster) in clusters.enumerated() {
                check(Rules.isDNS1123Label(cluster), "\(field).clusters[\(index)]", "must be a cluster name (a DNS-1123 label)")
            }
            checkUnique(clusters, "\(field).clusters")
        }
        if let namespaces = policy.namespaces {
            for (index, namespace) in namespaces.enumerated() {
                check(Rules.isDNS1123Label(namespace), "\(field).namespaces[\(index)]",
                      "must be a Kubernetes namespace name (a DNS-1123 label of at most 63 characters)")
            }
            checkUnique(namespaces, "\(field).namespaces")
        }
        if let maxIdentities = policy.maxIdentities {
            check((0...10_000).contains(maxIdentities), "\(field).maxIdentities", "must be between 0 and 10000")
        }
    }
}
