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
        let invalid = Self.listOptionsErrors(query, watch: false)
        guard invalid.isEmpty else { return listOptionsInvalid(invalid) }
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

    /// A watch as kube-apiserver's watch cache serves one. The stream starts with `ADDED` for every
    /// selected object when initial events are asked for (`sendInitialEvents=true`, or by default
    /// when resourceVersion is unset or "0"), followed, when bookmarks are allowed, by the `BOOKMARK`
    /// annotated `k8s.io/initial-events-end` that client-go's watch-list waits for. A watch from a
    /// resourceVersion N starts with what changed after N instead. Then the changes the store shows
    /// when polled every 100 ms, and a `BOOKMARK` every `watchBookmarkInterval` when allowed, until
    /// `timeoutSeconds` (default 30–60 minutes, like the server's randomised limit) or the client
    /// leaves. Options are validated as `ValidateListOptions` does (422 naming ListOptions). With
    /// `table`, each event carries a one-row Table, column definitions on the first only, as the
    /// server's watch encoder sends `kubectl get -w`.
    func watch(_ resource: KubeResource, namespace: String?, query: [String: String], table: Bool = false) -> Response {
        let errors = Self.listOptionsErrors(query, watch: true)
        guard errors.isEmpty else { return listOptionsInvalid(errors) }
        let labels: LabelSelector
        let fields: FieldSelector
        do {
            labels = try LabelSelector(query["labelSelector"] ?? "")
            fields = try FieldSelector(query["fieldSelector"] ?? "", supported: supportedFields(resource))
        } catch let error as SelectorError {
            return badRequest(error.message)
        } catch {
            return badRequest("\(error)")
        }
        var seconds = Int64.random(in: 1800...3600)
        if let text = query["timeoutSeconds"], !text.isEmpty {
            guard let asked = Int64(text) else { return badRequest("strconv.ParseInt: parsing \"\(text)\": invalid syntax") }
            if asked > 0 { seconds = asked }
        }
        let timeout = Duration.seconds(seconds)
        let bookmarks = Self.queryFlag(query["allowWatchBookmarks"]) ?? false
        let requested = query["resourceVersion"] ?? ""
        // With the WatchList feature (on since 1.34) a legacy watch from "" or "0" is defaulted to
        // sendInitialEvents=true, so it too ends its initial events with the annotated bookmark.
        let sendInitialEvents = Self.queryFlag(query["sendInitialEvents"]) ?? (requested.isEmpty || requested == "0")
        // Without initial events: from now for "" and "0", else what changed after that version.
        let since = sendInitialEvents || requested == "0" ? nil : Int64(requested)

        let body = ResponseBody { writer in
            func line(_ type: String, _ object: JSON) -> ByteBuffer {
                var data = JSON.object(["type": .string(type), "object": object]).data
                data.append(UInt8(ascii: "\n"))
                return ByteBuffer(bytes: data)
            }
            var headers = true
            func event(_ type: String, _ object: JSON) async throws -> ByteBuffer {
                guard table else { return line(type, object) }
                let collector = BodyCollector()
                try await self.table(resource, [object], resourceVersion: object[["metadata", "resourceVersion"]]?.string ?? "",
                                     continueToken: nil).body.write(collector)
                guard var rendered = JSON.parse(collector.bytes.readableBytesView) else { return line(type, object) }
                if !headers { rendered["columnDefinitions"] = .null }
                headers = false
                return line(type, rendered)
            }
            func bookmark(_ resourceVersion: Int64, initialEventsEnd: Bool) -> ByteBuffer {
                var metadata: JSON = ["resourceVersion": .string(String(resourceVersion))]
                if initialEventsEnd { metadata["annotations"] = ["k8s.io/initial-events-end": "true"] }
                return line("BOOKMARK", ["kind": .string(resource.kind), "apiVersion": .string(resource.apiVersion), "metadata": metadata])
            }
            // What the client has been told: key → (resourceVersion, object).
            var seen: [String: (String, JSON)] = [:]
            var (resourceVersion, objects) = self.watchSnapshot(resource, namespace: namespace, labels: labels, fields: fields)
            for key in objects.keys.sorted() {
                let object = objects[key]!
                let objectRV = object[["metadata", "resourceVersion"]]?.string ?? ""
                seen[key] = (objectRV, object)
                if sendInitialEvents {
                    try await writer.write(try await event("ADDED", object))
                } else if let since, let version = Int64(objectRV), version > since {
                    // Changed after the client's resourceVersion. The store keeps no history, so
                    // whether it was created or updated since is unknown (and deletions since are
                    // lost); client-go's informers treat both event types as an upsert.
                    try await writer.write(try await event("MODIFIED", object))
                }
            }
            if sendInitialEvents && bookmarks {
                try await writer.write(bookmark(resourceVersion, initialEventsEnd: true))
            }
            let deadline = ContinuousClock.now + timeout
            var nextBookmark = ContinuousClock.now + Self.watchBookmarkInterval
            var ticks = 0
            while ContinuousClock.now < deadline && !Task.isCancelled && !Task.isShuttingDownGracefully {
                try await Task.sleep(for: .milliseconds(100))
                ticks += 1
                (resourceVersion, objects) = self.watchSnapshot(resource, namespace: namespace, labels: labels, fields: fields)
                // Changes in the order they happened (by resourceVersion), as the watch cache sends them.
                var changed: [(Int64, String, String, JSON)] = []
                for (key, object) in objects {
                    let objectRV = object[["metadata", "resourceVersion"]]?.string ?? ""
                    if let previous = seen[key] {
                        if previous.0 != objectRV { changed.append((Int64(objectRV) ?? 0, key, "MODIFIED", object)) }
                    } else {
                        changed.append((Int64(objectRV) ?? 0, key, "ADDED", object))
                    }
                }
                for (_, key, type, object) in changed.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
                    try await writer.write(try await event(type, object))
                    seen[key] = (object[["metadata", "resourceVersion"]]?.string ?? "", object)
                }
                for key in seen.keys.sorted() where objects[key] == nil {
                    // As the watch cache does: the last state the client saw, at the deletion's
                    // resourceVersion (here: the first snapshot without it).
                    var gone = seen[key]!.1
                    gone[["metadata", "resourceVersion"]] = .string(String(resourceVersion))
                    try await writer.write(try await event("DELETED", gone))
                    seen[key] = nil
                }
                if bookmarks && ContinuousClock.now >= nextBookmark {
                    try await writer.write(bookmark(resourceVersion, initialEventsEnd: false))
                    nextBookmark = ContinuousClock.now + Self.watchBookmarkInterval
                } else if ticks % 10 == 0 {
                    // A bare newline every second finds a client that has gone (the write fails);
                    // JSON stream decoders skip white space between events.
                    try await writer.write(ByteBuffer(string: "\n"))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
    }

    /// How often a watch that allows bookmarks gets one (kube-apiserver: about every minute).
    static let watchBookmarkInterval = Duration.seconds(5)

    /// The objects a watch selects and the resourceVersion they are current at, read together.
    func watchSnapshot(_ resource: KubeResource, namespace: String?, labels: LabelSelector, fields: FieldSelector)
        -> (Int64, [String: JSON])
    {
        let (all, resourceVersion) = store.update { collections in
            ((collections["objects"] ?? [:], collections["meta"]?["rv"]?.int ?? 1000), [])
        }
        let prefix = namespace.map { "\(resource.plural)|\($0)|" } ?? "\(resource.plural)|"
        var selected: [String: JSON] = [:]
        for (key, object) in all where key.hasPrefix(prefix) {
            if labels.matches(object[["metadata", "labels"]]?.stringMap ?? [:]) && fields.matches(object) {
                selected[key] = object
            }
        }
        return (resourceVersion, selected)
    }

    /// A boolean query parameter as kube-apiserver decodes one: absent is nil, "0" and "false" (any
    /// case) are false, anything else (even empty) is true.
    static func queryFlag(_ value: String?) -> Bool? {
        guard let value else { return nil }
        return !(value == "0" || value.lowercased() == "false")
    }

    /// The errors `ValidateListOptions` (apimachinery `pkg/apis/meta/internalversion/validation`)
    /// finds, with the WatchList feature on: (field, cause type, message without the field).
    static func listOptionsErrors(_ query: [String: String], watch: Bool) -> [(String, String, String)] {
        let forbidden = "FieldValueForbidden"
        let match = query["resourceVersionMatch"] ?? ""
        let resourceVersion = query["resourceVersion"] ?? ""
        let continueToken = query["continue"] ?? ""
        let sendInitialEvents = queryFlag(query["sendInitialEvents"])
        func unsupported(_ supported: [String]) -> (String, String, String) {
            ("resourceVersionMatch", "FieldValueNotSupported",
             "Unsupported value: \"\(match)\": supported values: " + supported.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        var errors: [(String, String, String)] = []
        if watch {
            if sendInitialEvents != nil && match != "NotOlderThan" {
                errors.append(("resourceVersionMatch", forbidden, "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
            }
            if !match.isEmpty {
                if sendInitialEvents == nil {
                    errors.append(("resourceVersionMatch", forbidden, "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
                }
                if match != "NotOlderThan" { errors.append(unsupported(["NotOlderThan"])) }
                if !continueToken.isEmpty {
                    errors.append(("resourceVersionMatch", forbidden, "Forbidden: resourceVersionMatch is forbidden when continue is provided"))
                }
            }
            return errors
        }
        if !match.isEmpty {
            if resourceVersion.isEmpty {
                errors.append(("resourceVersionMatch", forbidden, "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"))
            }
            if !continueToken.isEmpty {
                errors.append(("resourceVersionMatch", forbidden, "Forbidden: resourceVersionMatch is forbidden when continue is provided"))
            }
            if match != "Exact" && match != "NotOlderThan" { errors.append(unsupported(["Exact", "NotOlderThan", ""])) }
            if match == "Exact" && resourceVersion == "0" {
                errors.append(("resourceVersionMatch", forbidden, "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
            }
        }
        if sendInitialEvents != nil {
            errors.append(("sendInitialEvents", forbidden, "Forbidden: sendInitialEvents is forbidden for list"))
        }
        return errors
    }

    /// The 422 `errors.NewInvalid(ListOptions.meta.k8s.io, "", errs)` answers: one error is quoted
    /// as is, several (deduplicated) in brackets.
    func listOptionsInvalid(_ errors: [(String, String, String)]) -> Response {
        var messages: [String] = []
        for (field, _, body) in errors where !messages.contains("\(field): \(body)") { messages.append("\(field): \(body)") }
        let summary = messages.count == 1 ? messages[0] : "[" + messages.joined(separator: ", ") + "]"
        return status(.unprocessableContent, reason: "Invalid", message: "ListOptions.meta.k8s.io \"\" is invalid: \(summary)",
                      details: [
                          "group": "meta.k8s.io", "kind": "ListOptions",
                          "causes": .array(errors.map { ["reason": .string($0.1), "message": .string($0.2), "field": .string($0.0)] }),
                      ])
    }
}

/// Collects a response body: the simulator's own Table responses, embedded in watch events.
private final class BodyCollector: ResponseBodyWriter {
    var bytes = ByteBuffer()

    func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        bytes.writeBuffer(&buffer)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
