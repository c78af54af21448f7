import Foundation
import HTTPTypes
import Hummingbird

/// Server-side printing: `kubectl get` asks for `as=Table` and shows the columns the server chose —
/// for pods Ready, Status, Restarts and Age, for the aad-pod-identity kinds the CRDs' printer columns.
extension KubeSimulator {
    /// Whether the client asked for a Table.
    static func wantsTable(_ request: Request) -> Bool {
        (request.headers[.accept] ?? "").contains("as=Table")
    }

    /// A `meta.k8s.io/v1` Table of `objects`.
    func table(_ resource: KubeResource, _ objects: [JSON], resourceVersion: String, continueToken: String?) -> Response {
        var columns: [(String, String, String)] = [("Name", "string", "name")]
        switch resource.plural {
        case "pods":
            columns += [("Ready", "string", ""), ("Status", "string", ""), ("Restarts", "integer", "")]
        case "namespaces":
            columns += [("Status", "string", "")]
        default:
            columns += resource.printerColumns.filter { $0.0 != "Age" }.map { ($0.0, $0.2 == "date" ? "string" : $0.2, "") }
        }
        columns.append(("Age", "string", ""))
        let rows: [JSON] = objects.map { object in
            var cells: [JSON] = [object[["metadata", "name"]] ?? ""]
            switch resource.plural {
            case "pods":
                let statuses = object[["status", "containerStatuses"]]?.array ?? []
                let ready = statuses.filter { $0["ready"] == true }.count
                cells += [.string("\(ready)/\(max(statuses.count, object[["spec", "containers"]]?.array?.count ?? 0))"),
                          object[["status", "phase"]] ?? "", .int(0)]
            case "namespaces":
                cells.append(object[["status", "phase"]] ?? "Active")
            default:
                for column in resource.printerColumns where column.0 != "Age" {
                    let path = column.1.split(separator: ".").map(String.init)
                    cells.append(object[path] ?? "")
                }
            }
            cells.append(.string(Self.age(object[["metadata", "creationTimestamp"]]?.string)))
            var metadata = object["metadata"] ?? .object([:])
            metadata["managedFields"] = nil
            return ["cells": .array(cells), "object": ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata]]
        }
        var listMeta: JSON = ["resourceVersion": .string(resourceVersion)]
        if let continueToken { listMeta["continue"] = .string(continueToken) }
        return jsonResponse(.ok, [
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": listMeta,
            "columnDefinitions": .array(columns.map { name, type, format in
                ["name": .string(name), "type": .string(type), "format": .string(format), "description": .string(name), "priority": .int(0)]
            }),
            "rows": .array(rows),
        ])
    }

    /// kubectl's short ages: `42s`, `5m`, `3h`, `2d`.
    static func age(_ timestamp: String?) -> String {
        guard let timestamp, let date = try? Date(timestamp, strategy: Date.ISO8601FormatStyle()) else { return "<unknown>" }
        let seconds = max(0, Int(Date().timeIntervalSince(date)))
        switch seconds {
        case ..<120: return "\(seconds)s"
        case ..<(120 * 60): return "\(seconds / 60)m"
        case ..<(48 * 3600): return "\(seconds / 3600)h"
        default: return "\(seconds / 86400)d"
        }
    }
}
