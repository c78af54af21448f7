import Foundation
import Yams

/// One kind the Kubernetes simulator serves.
struct KubeResource: Sendable {
    var group: String
    var version: String
    var plural: String
    var singular: String
    var kind: String
    var listKind: String
    var namespaced: Bool
    var shortNames: [String] = []
    /// The structural schema (openAPIV3Schema) of a custom resource; nil for core kinds.
    var schema: JSON?
    var verbs: [String] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    /// Printer columns of a CRD: (name, JSON path, type).
    var printerColumns: [(String, String, String)] = []
    /// Categories discovery lists (`all`, which `kubectl get all` expands).
    var categories: [String] = []
    /// Subresources discovery lists as `<plural>/<name>`: name → (group, version, kind, verbs).
    var subresources: [(name: String, group: String, version: String, kind: String, verbs: [String])] = []

    var isCustom: Bool { schema != nil }
    /// Whether writes to the object leave `status` alone (it has a `/status` subresource), as for
    /// Deployments and ReplicaSets.
    var hasStatusSubresource: Bool { subresources.contains { $0.name == "status" } }
    /// Whether the object has a `metadata.generation` (ConfigMaps and Secrets have none).
    var hasGeneration: Bool { !["configmaps", "secrets"].contains(plural) }
    var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `pods`, or `azureidentities.aadpodidentity.k8s.io` in messages.
    var qualifiedName: String { group.isEmpty ? plural : "\(plural).\(group)" }
}

/// The kinds the simulator serves: core namespaces, pods, service accounts, events, config maps and
/// secrets, `apps/v1` deployments and replica sets, and the aad-pod-identity custom resources from
/// the v1.8.17 CRDs shipped with podid.
enum KubeSchema {
    static let podIdentityGroup = "aadpodidentity.k8s.io"

    /// The `scale` and `status` subresources of a workload kind, as kube-apiserver lists them.
    static func workloadSubresources(_ kind: String) -> [(name: String, group: String, version: String, kind: String, verbs: [String])] {
        [("scale", "autoscaling", "v1", "Scale", ["get", "patch", "update"]), ("status", "apps", "v1", kind, ["get", "patch", "update"])]
    }

    static let core: [KubeResource] = [
        KubeResource(group: "", version: "v1", plural: "namespaces", singular: "", kind: "Namespace", listKind: "NamespaceList",
                     namespaced: false, shortNames: ["ns"], verbs: ["create", "delete", "get", "list", "patch", "update", "watch"]),
        KubeResource(group: "", version: "v1", plural: "pods", singular: "", kind: "Pod", listKind: "PodList", namespaced: true,
                     shortNames: ["po"], categories: ["all"]),
        KubeResource(group: "", version: "v1", plural: "serviceaccounts", singular: "", kind: "ServiceAccount",
                     listKind: "ServiceAccountList", namespaced: true, shortNames: ["sa"]),
        KubeResource(group: "", version: "v1", plural: "events", singular: "", kind: "Event", listKind: "EventList",
                     namespaced: true, shortNames: ["ev"]),
        KubeResource(group: "", version: "v1", plural: "configmaps", singular: "", kind: "ConfigMap", listKind: "ConfigMapList",
                     namespaced: true, shortNames: ["cm"]),
        KubeResource(group: "", version: "v1", plural: "secrets", singular: "", kind: "Secret", listKind: "SecretList",
                     namespaced: true),
        KubeResource(group: "apps", version: "v1", plural: "deployments", singular: "", kind: "Deployment", listKind: "DeploymentList",
                     namespaced: true, shortNames: ["deploy"], categories: ["all"], subresources: workloadSubresources("Deployment")),
        KubeResource(group: "apps", version: "v1", plural: "replicasets", singular: "", kind: "ReplicaSet", listKind: "ReplicaSetList",
                     namespaced: true, shortNames: ["rs"], categories: ["all"], subresources: workloadSubresources("ReplicaSet")),
    ]

    /// The custom resources of the bundled CRD file.
    static func customResources() throws -> [KubeResource] {
        guard let url = Bundle.module.url(forResource: "crd", withExtension: "yaml", subdirectory: "Resources/aad-pod-identity")
            ?? Bundle.module.url(forResource: "crd", withExtension: "yaml")
        else { throw SimulatorError("the aad-pod-identity CRD file is missing from the simulator's resources") }
        let text = try String(contentsOf: url, encoding: .utf8)
        var resources: [KubeResource] = []
        for document in try Yams.load_all(yaml: text) {
            let crd = JSON.from(any: document)
            guard crd["kind"]?.string == "CustomResourceDefinition", let names = crd[["spec", "names"]],
                  let version = crd[["spec", "versions"]]?.array?.first
            else { continue }
            let columns = (version["additionalPrinterColumns"]?.array ?? []).compactMap { column -> (String, String, String)? in
                guard let name = column["name"]?.string, let path = column["jsonPath"]?.string else { return nil }
                return (name, path, column["type"]?.string ?? "string")
            }
            resources.append(KubeResource(
                group: crd[["spec", "group"]]?.string ?? podIdentityGroup, version: version["name"]?.string ?? "v1",
                plural: names["plural"]?.string ?? "", singular: names["singular"]?.string ?? "",
                kind: names["kind"]?.string ?? "", listKind: names["listKind"]?.string ?? "",
                namespaced: crd[["spec", "scope"]]?.string != "Cluster",
                schema: version[["schema", "openAPIV3Schema"]] ?? .object([:]), printerColumns: columns))
        }
        return resources
    }

    /// Drops every field the structural schema does not declare, as kube-apiserver does for
    /// custom resources; `metadata` keeps only ObjectMeta fields.
    static func prune(_ value: JSON, schema: JSON, root: Bool = false) -> JSON {
        if schema["x-kubernetes-preserve-unknown-fields"] == .bool(true) { return value }
        switch value {
        case .object(let members):
            let properties = schema["properties"]?.object
            let additional = schema["additionalProperties"]
            let embedded = schema["x-kubernetes-embedded-resource"] == .bool(true)
            var kept: [String: JSON] = [:]
            for (key, member) in members {
                if (root || embedded) && (key == "apiVersion" || key == "kind") {
                    kept[key] = member
                } else if (root || embedded) && key == "metadata" {
                    kept[key] = pruneMetadata(member)
                } else if let property = properties?[key] {
                    kept[key] = prune(member, schema: property)
                } else if let additional, additional.object != nil {
                    kept[key] = prune(member, schema: additional)
                } else if additional == .bool(true) {
                    kept[key] = member
                }
            }
            return .object(kept)
        case .array(let items):
            guard let itemSchema = schema["items"] else { return value }
            return .array(items.map { prune($0, schema: itemSchema) })
        default:
            return value
        }
    }

    static let objectMetaFields: Set<String> = [
        "name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
        "managedFields", "selfLink",
    ]

    static func pruneMetadata(_ metadata: JSON) -> JSON {
        guard let members = metadata.object else { return metadata }
        return .object(members.filter { objectMetaFields.contains($0.key) })
    }

    /// Type errors against the schema, as `(field path, message)`, like kube-apiserver's
    /// `spec.type in body must be of type integer: "string"`.
    static func typeErrors(_ value: JSON, schema: JSON, path: String = "") -> [(String, String)] {
        var errors: [(String, String)] = []
        if let type = schema["type"]?.string, value != .null {
            let actual: String
            switch value {
            case .string: actual = "string"
            case .int: actual = "integer"
            case .double: actual = "number"
            case .bool: actual = "boolean"
            case .array: actual = "array"
            case .object: actual = "object"
            case .null: actual = "null"
            }
            let matches = actual == type || (type == "number" && actual == "integer")
            if !matches {
                errors.append((path, "Invalid value: \"\(actual)\": \(path) in body must be of type \(type): \"\(actual)\""))
                return errors
            }
        } else if value == .null, schema["type"]?.string != nil, schema["nullable"] != .bool(true) {
            errors.append((path, "Invalid value: \"null\": \(path) in body must be of type \(schema["type"]?.string ?? ""): \"null\""))
            return errors
        }
        if case .object(let members) = value, let properties = schema["properties"]?.object {
            for (key, member) in members.sorted(by: { $0.key < $1.key }) where key != "metadata" || !path.isEmpty {
                if let property = properties[key] {
                    errors += typeErrors(member, schema: property, path: path.isEmpty ? key : "\(path).\(key)")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() { errors += typeErrors(item, schema: itemSchema, path: "\(path)[\(index)]") }
        }
        return errors
    }
}

extension JSON {
    /// JSON from what Yams or JSONSerialization produce.
    static func from(any value: Any?) -> JSON {
        switch value {
        case nil, is NSNull: return .null
        case let value as Bool: return .bool(value)
        case let value as Int: return .int(Int64(value))
        case let value as Int64: return .int(value)
        case let value as Double: return value == value.rounded() && abs(value) < 1e15 ? .int(Int64(value)) : .double(value)
        case let value as String: return .string(value)
        case let value as [Any]: return .array(value.map { from(any: $0) })
        case let value as [String: Any]: return .object(value.mapValues { from(any: $0) })
        case let value as [AnyHashable: Any]:
            return .object(Dictionary(value.map { ("\($0.key)", from(any: $0.value)) }) { a, _ in a })
        default: return .string("\(value!)")
        }
    }
}

/// A simulator could not start.
public struct SimulatorError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
