import Core
import Foundation
import Yams

/// The manifests export as multi-document YAML: per cluster and namespace the AzureIdentity, then
/// each binding's AzureIdentityBinding, then a commented Deployment snippet that shows where the
/// pod label goes. Strings are double-quoted (no type surprises such as `no` or `0755`), keys in a
/// stable order (`apiVersion`, `kind`, `metadata`, `spec` first).
enum ManifestsYAML {
    static func render(_ export: BindingManifests) -> String {
        let identity = export.identity
        var documents: [String] = []
        var seen = Set<String>()
        let sorted = export.bindings.sorted { ($0.cluster, $0.namespace, $0.name) < ($1.cluster, $1.namespace, $1.name) }
        for binding in sorted {
            let place = "\(binding.cluster)/\(binding.namespace)"
            if seen.insert(place).inserted {
                documents.append("# cluster \(binding.cluster): the AzureIdentity of \(identity.team)/\(identity.name)\n"
                    + document(binding.azureIdentityObject(resourceID: export.resourceId, clientID: export.clientId).json))
            }
            documents.append("# cluster \(binding.cluster): binding \(binding.name); pods labelled aadpodidbinding=\(binding.selector) receive the identity\n"
                + document(binding.bindingObject.json))
        }
        var text = "# podid manifests for identity \(identity.team)/\(identity.name) (clientId \(export.clientId))\n"
        if documents.isEmpty {
            text += "# It has no bindings yet: POST /v1/teams/\(identity.team)/identities/\(identity.name)/bindings creates one.\n"
        } else {
            text += "---\n" + documents.joined(separator: "---\n")
        }
        let selectors = Array(Set(sorted.map(\.selector))).sorted()
        let selector = selectors.first ?? "<the selector of your binding>"
        text += """
            # Where the label goes: on the pod template of your Deployment (not on the Deployment itself).
            #
            # apiVersion: apps/v1
            # kind: Deployment
            # metadata:
            #   name: my-app
            # spec:
            #   template:
            #     metadata:
            #       labels:
            #         aadpodidbinding: \(selector)

            """
        if selectors.count > 1 {
            text += "# This identity's bindings use several selectors: \(selectors.joined(separator: ", ")).\n"
        }
        return text
    }

    /// One object as a YAML document body (Yams writes it; the objects hold only JSON values, which
    /// always serialize).
    static func document(_ value: JSONValue) -> String {
        (try? Yams.serialize(node: node(value), indent: 2, width: -1, allowUnicode: true)) ?? "{}\n"
    }

    static let leading = ["apiVersion", "kind", "metadata", "name", "namespace", "labels", "spec"]

    static func node(_ value: JSONValue) -> Node {
        switch value {
        case .null:
            return Node("null", .implicit, .plain)
        case .bool(let flag):
            return Node(flag ? "true" : "false", .implicit, .plain)
        case .number(let number):
            let text = number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            return Node(text, .implicit, .plain)
        case .string(let text):
            return Node(text, .implicit, .doubleQuoted)
        case .array(let items):
            return Node(items.map(node), .implicit, items.isEmpty ? .flow : .block)
        case .object(let members):
            let first = leading.filter { members[$0] != nil }
            let keys = first + members.keys.filter { !leading.contains($0) }.sorted()
            let pairs = keys.map { (Node($0, .implicit, .plain), node(members[$0] ?? .null)) }
            return Node(pairs, .implicit, members.isEmpty ? .flow : .block)
        }
    }
}
