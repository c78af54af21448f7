import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

extension KubeSimulator {
    /// The field selectors a kind supports.
    func supportedFields(_ resource: KubeResource) -> Set<String> {
        var fields: Set<String> = ["metadata.name", "metadata.namespace"]
        if resource.plural == "pods" {
            fields.formUnion(["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                              "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"])
        }
        if resource.plural == "events" {
            fields.formUnion(["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                              "reason", "source", "type"])
        }
        if resource.plural == "namespaces" { fields.insert("status.phase") }
        return fields
    }

    /// The objects a list or watch selects.
    func selected(_ resource: KubeResource, namespace: String?, query: [String: String]) throws -> [(String, JSON)] {
        let labels = try LabelSelector(query["labelSelector"] ?? "")
        let fields = try FieldSelector(query["fieldSelector"] ?? "", supported: supportedFields(resource))
        let prefix = namespace.map { "\(resource.plural)|\($0)|" } ?? "\(resource.plural)|"
        return store.all("objects").filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.filter { _, object in
            labels.matches(object[["metadata", "labels"]]?.stringMap ?? [:]) && fields.matches(object)
        }
    }

    /// The selected objects, or the 400 a bad selector deserves.
    func selectedOrError(_ resource: KubeResource, namespace: String?, query: [String: String]) -> Result<[(String, JSON)], ErrorResponse> {
        do {
            return .success(try selected(resource, namespace: namespace, query: query))
        } catch let error as SelectorError {
            return .failure(ErrorResponse(badRequest(error.message)))
        } catch {
            return .failure(ErrorResponse(badRequest("\(error)")))
        }
    }

    func list(_ resource: KubeResource, namespace: String?, query: [String: String], table: Bool = false) -> Response {
        var items: [(String, JSON)]
        switch selectedOrError(resource, namespace: namespace, query: query) {
        case .failure(let error): return error.response
        case .success(let selected): items = selected
        }
        var listRV = currentResourceVersion
        if let token = query["continue"], !token.isEmpty {
            guard let bytes = Data(base64Encoded: token), let state = JSON.parse(bytes), let start = state["start"]?.string,
                  let issued = state["issued"]?.int, let rv = state["rv"]?.string
            else {
                return badRequest("invalid continue token: the token is not one this server issued")
            }
            let ttl = Int64(settings.withLock { $0.continueTTLSeconds })
            if Int64(Date().timeIntervalSince1970) - issued > ttl {
                return status(.gone, reason: "Expired",
                              message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
            }
            items = items.filter { $0.0 > start }
            listRV = rv
        }
        var metadata: JSON = ["resourceVersion": .string(listRV)]
        if let limit = query["limit"].flatMap(Int.init), limit > 0, items.count > limit {
            let page = Array(items.prefix(limit))
            let token: JSON = ["start": .string(page.last!.0), "rv": .string(listRV), "issued": .int(Int64(Date().timeIntervalSince1970))]
            metadata["continue"] = .string(token.data.base64EncodedString())
            metadata["remainingItemCount"] = .int(Int64(items.count - limit))
            items = page
        } else if resource.isCustom {
            metadata["continue"] = ""
        }
        if table {
            return self.table(resource, items.map(\.1), resourceVersion: listRV, continueToken: metadata["continue"]?.string)
        }
        let rendered = items.map { _, object -> JSON in
            guard !resource.isCustom else { return object }
            var item = object
            item["apiVersion"] = nil
            item["kind"] = nil
            return item
        }
        return jsonResponse(.ok, [
            "kind": .string(resource.listKind), "apiVersion": .string(resource.apiVersion), "metadata": metadata,
            "items": .array(rendered),
        ])
    }

    /// A watch: `ADDED` for what exists (unless a resourceVersion is given), then the changes seen
    /// by polling the store every 100 ms, until `timeoutSeconds` (default 60) or the client leaves.
    func watch(_ resource: KubeResource, namespace: String?, query: [String: String]) -> Response {
        if case .failure(let error) = selectedOrError(resource, namespace: namespace, query: query) { return error.response }
        let timeout = min(Int(query["timeoutSeconds"] ?? "") ?? 60, 600)
        let sendInitial = (query["resourceVersion"] ?? "").isEmpty || query["resourceVersion"] == "0"
        let body = ResponseBody { writer in
            var seen: [String: String] = [:]
            func line(_ type: String, _ object: JSON) -> ByteBuffer {
                var data = JSON.object(["type": .string(type), "object": object]).data
                data.append(UInt8(ascii: "\n"))
                return ByteBuffer(bytes: data)
            }
            let initial = (try? self.selected(resource, namespace: namespace, query: query)) ?? []
            for (key, object) in initial {
                seen[key] = object[["metadata", "resourceVersion"]]?.string ?? ""
                if sendInitial { try await writer.write(line("ADDED", object)) }
            }
            let deadline = ContinuousClock.now + .seconds(timeout)
            var ticks = 0
            while ContinuousClock.now < deadline && !Task.isCancelled && !Task.isShuttingDownGracefully {
                try await Task.sleep(for: .milliseconds(100))
                ticks += 1
                // A bare newline every second finds a client that has gone (the write fails);
                // JSON stream decoders skip white space between events.
                if ticks % 10 == 0 { try await writer.write(ByteBuffer(string: "\n")) }
                let now = Dictionary((try? self.selected(resource, namespace: namespace, query: query)) ?? []) { a, _ in a }
                for (key, object) in now.sorted(by: { $0.key < $1.key }) {
                    let rv = object[["metadata", "resourceVersion"]]?.string ?? ""
                    if let previous = seen[key] {
                        if previous != rv { try await writer.write(line("MODIFIED", object)) }
                    } else {
                        try await writer.write(line("ADDED", object))
                    }
                    seen[key] = rv
                }
                for key in seen.keys.sorted() where now[key] == nil {
                    let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                    var gone: JSON = ["apiVersion": .string(resource.apiVersion), "kind": .string(resource.kind)]
                    gone["metadata"] = ["name": .string(parts[2]), "namespace": parts[1].isEmpty ? .null : .string(parts[1])]
                    try await writer.write(line("DELETED", gone))
                    seen[key] = nil
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
    }
}
