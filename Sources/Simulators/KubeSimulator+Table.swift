import Foundation
import HTTPTypes
import Hummingbird

/// Server-side printing: `kubectl get` asks for `as=Table` and shows the columns the server chose —
/// for pods Ready, Status, Restarts and Age, for deployments, replica sets, config maps and secrets
/// kube-apiserver's columns (with its `-o wide` ones), for the aad-pod-identity kinds the CRDs'
/// printer columns.
extension KubeSimulator {
    /// Whether the client asked for a Table.
    static func wantsTable(_ request: Request) -> Bool {
        (request.headers[.accept] ?? "").contains("as=Table")
    }

    /// A `meta.k8s.io/v1` Table of `objects`.
    func table(_ resource: KubeResource, _ objects: [JSON], resourceVersion: String, continueToken: String?) -> Response {
        if resource.plural == "events" { return eventTable(objects, resourceVersion: resourceVersion, continueToken: continueToken) }
        var columns: [(String, String, String)] = [("Name", "string", "name")]
        // Columns after Age, shown by `-o wide` (priority 1).
        var wide: [(String, String, String)] = []
        switch resource.plural {
        case "pods":
            columns += [("Ready", "string", ""), ("Status", "string", ""), ("Restarts", "integer", "")]
        case "namespaces":
            columns += [("Status", "string", "")]
        case "deployments":
            columns += [("Ready", "string", ""), ("Up-to-date", "string", ""), ("Available", "string", "")]
            wide = [("Containers", "string", ""), ("Images", "string", ""), ("Selector", "string", "")]
        case "replicasets":
            columns += [("Desired", "integer", ""), ("Current", "integer", ""), ("Ready", "integer", "")]
            wide = [("Containers", "string", ""), ("Images", "string", ""), ("Selector", "string", "")]
        case "configmaps":
            columns += [("Data", "string", "")]
        case "secrets":
            columns += [("Type", "string", ""), ("Data", "string", "")]
        default:
            columns += resource.printerColumns.filter { $0.0 != "Age" }.map { ($0.0, $0.2 == "date" ? "string" : $0.2, "") }
        }
        columns.append(("Age", "string", ""))
        let priorities = Array(repeating: 0, count: columns.count) + Array(repeating: 1, count: wide.count)
        columns += wide
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
            case "deployments":
                let count = { (field: String) in object[["status", field]]?.int ?? 0 }
                cells += [.string("\(count("readyReplicas"))/\(object[["spec", "replicas"]]?.int ?? 0)"),
                          .int(count("updatedReplicas")), .int(count("availableReplicas"))]
            case "replicasets":
                cells += [.int(object[["spec", "replicas"]]?.int ?? 0), .int(object[["status", "replicas"]]?.int ?? 0),
                          .int(object[["status", "readyReplicas"]]?.int ?? 0)]
            case "configmaps":
                cells.append(.int(Int64((object["data"]?.object?.count ?? 0) + (object["binaryData"]?.object?.count ?? 0))))
            case "secrets":
                cells += [object["type"] ?? "", .int(Int64(object["data"]?.object?.count ?? 0))]
            default:
                for column in resource.printerColumns where column.0 != "Age" {
                    let path = column.1.split(separator: ".").map(String.init)
                    cells.append(object[path] ?? "")
                }
            }
            cells.append(.string(Self.age(object[["metadata", "creationTimestamp"]]?.string)))
            if resource.plural == "deployments" || resource.plural == "replicasets" {
                let containers = object[["spec", "template", "spec", "containers"]]?.array ?? []
                cells += [.string(containers.compactMap { $0["name"]?.string }.joined(separator: ",")),
                          .string(containers.compactMap { $0["image"]?.string }.joined(separator: ",")),
                          .string(Self.selectorString(object[["spec", "selector"]]).map { $0.isEmpty ? "<none>" : $0 } ?? "<none>")]
            }
            return Self.tableRow(cells, object)
        }
        return tableResponse(zip(columns, priorities).map { column, priority in
            ["name": .string(column.0), "type": .string(column.1), "format": .string(column.2), "description": .string(column.0),
             "priority": .int(Int64(priority))]
        }, rows, resourceVersion: resourceVersion, continueToken: continueToken)
    }

    /// Events as kube-apiserver prints them: no Name column first, the involved object as
    /// `kind/name`, the source, counts and first-seen ages for `-o wide`.
    func eventTable(_ objects: [JSON], resourceVersion: String, continueToken: String?) -> Response {
        let columns: [(String, Int)] = [
            ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1), ("Message", 0),
            ("First Seen", 1), ("Count", 1), ("Name", 1),
        ]
        let rows: [JSON] = objects.map { event in
            let first = Self.age(event["firstTimestamp"]?.string ?? event["eventTime"]?.string)
            let last = event["lastTimestamp"]?.string.map { Self.age($0) } ?? first
            let kind = (event[["involvedObject", "kind"]]?.string ?? "").lowercased()
            let name = event[["involvedObject", "name"]]?.string ?? ""
            let component = event[["source", "component"]]?.string ?? ""
            let host = event[["source", "host"]]?.string ?? ""
            let count = event["count"]?.int ?? 0
            let cells: [JSON] = [
                .string(last), event["type"] ?? "", event["reason"] ?? "", .string(name.isEmpty ? kind : "\(kind)/\(name)"),
                event[["involvedObject", "fieldPath"]] ?? "", .string(host.isEmpty ? component : "\(component), \(host)"),
                .string((event["message"]?.string ?? "").trimmingCharacters(in: .whitespacesAndNewlines)), .string(first),
                .int(count == 0 ? 1 : count), event[["metadata", "name"]] ?? "",
            ]
            return Self.tableRow(cells, event)
        }
        return tableResponse(columns.map { name, priority in
            ["name": .string(name), "type": "string", "format": .string(name == "Name" ? "name" : ""), "description": .string(name),
             "priority": .int(Int64(priority))]
        }, rows, resourceVersion: resourceVersion, continueToken: continueToken)
    }

    /// A Table row: its cells, and the object's metadata (without managedFields) as kube-apiserver sends it.
    static func tableRow(_ cells: [JSON], _ object: JSON) -> JSON {
        var metadata = object["metadata"] ?? .object([:])
        metadata["managedFields"] = nil
        return ["cells": .array(cells), "object": ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata]]
    }

    /// A `meta.k8s.io/v1` Table of `rows` with these column definitions.
    func tableResponse(_ columns: [JSON], _ rows: [JSON], resourceVersion: String, continueToken: String?) -> Response {
        var listMeta: JSON = ["resourceVersion": .string(resourceVersion)]
        if let continueToken { listMeta["continue"] = .string(continueToken) }
        return jsonResponse(.ok, [
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": listMeta,
            "columnDefinitions": .array(columns), "rows": .array(rows),
        ])
    }

    /// kubectl's ages, as `duration.HumanDuration` writes them: `42s`, `5m3s`, `3h20m`, `2d4h`, `3y`.
    static func age(_ timestamp: String?) -> String {
        guard let timestamp, let date = try? Date(timestamp, strategy: Date.ISO8601FormatStyle()) else { return "<unknown>" }
        let elapsed = Int(Date().timeIntervalSince(date).rounded(.down))
        if elapsed < -1 { return "<invalid>" }
        let seconds = max(0, elapsed)
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = seconds / 3600
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        if hours < 24 * 8 { return hours % 24 == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(hours % 24)h" }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        let days = hours / 24
        if hours < 24 * 365 * 8 { return days % 365 == 0 ? "\(days / 365)y" : "\(days / 365)y\(days % 365)d" }
        return "\(days / 365)y"
    }
}
