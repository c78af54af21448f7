import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Yams

extension KubeSimulator {
    /// Field ownership of one object: manager → (operation, paths, time).
    typealias Owners = [String: (operation: String, paths: Set<String>, time: String)]

    static func decodeOwners(_ json: JSON?) -> Owners {
        var owners: Owners = [:]
        for (manager, entry) in json?.object ?? [:] {
            owners[manager] = (entry["operation"]?.string ?? "Update",
                               Set((entry["paths"]?.array ?? []).compactMap(\.string)), entry["time"]?.string ?? kubeTimestamp())
        }
        return owners
    }

    static func encodeOwners(_ owners: Owners) -> JSON {
        .object(owners.mapValues { entry in
            ["operation": .string(entry.operation), "paths": .array(entry.paths.sorted().map { .string($0) }), "time": .string(entry.time)]
        })
    }

    /// The field manager of a non-apply write: `fieldManager`, else the User-Agent's program name.
    func manager(_ query: [String: String], _ request: Request) -> String {
        if let manager = query["fieldManager"], !manager.isEmpty { return manager }
        let agent = request.headers[.userAgent] ?? "unknown"
        return String(agent.split(separator: "/").first ?? "unknown")
    }

    /// Name, namespace and schema checks shared by create, update, patch and apply; returns the
    /// pruned (for built-in kinds: defaulted) object or an error response. `previous` is the stored
    /// object on an update, for the checks of what may not change.
    func validate(_ resource: KubeResource, _ object: JSON, name: String, previous: JSON? = nil) -> Result<JSON, ErrorResponse> {
        var object = object
        if !resource.isCustom {
            switch normalized(resource, object) {
            case .failure(let error): return .failure(error)
            case .success(let value): object = value
            }
        }
        if resource.isCustom, let schema = resource.schema {
            let errors = KubeSchema.typeErrors(object, schema: schema)
            if !errors.isEmpty { return .failure(ErrorResponse(invalid(resource, name, errors))) }
            if !settings.withLock({ $0.preserveUnknownFields }) { object = KubeSchema.prune(object, schema: schema, root: true) }
        }
        let nameValid = resource.plural == "namespaces" ? Self.isDNSLabel(name) : Self.isDNSSubdomain(name)
        if !nameValid {
            let rule = resource.plural == "namespaces"
                ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            return .failure(ErrorResponse(invalid(resource, name, [("metadata.name", "Invalid value: \"\(name)\": \(rule)")])))
        }
        if resource.plural == "pods" {
            let containers = object[["spec", "containers"]]?.array ?? []
            if containers.isEmpty {
                return .failure(ErrorResponse(invalid(resource, name, [("spec.containers", "Required value")])))
            }
            for (index, container) in containers.enumerated() where container["name"]?.string == nil || container["image"]?.string == nil {
                return .failure(ErrorResponse(invalid(resource, name, [("spec.containers[\(index)]", "Required value: name and image are required")])))
            }
        }
        let causes = workloadCauses(resource, object, previous: previous)
        if !causes.isEmpty { return .failure(ErrorResponse(invalidAll(resource, name, causes))) }
        return .success(object)
    }

    /// An error response carried through a Result.
    struct ErrorResponse: Error {
        var response: Response
        init(_ response: Response) { self.response = response }
    }

    /// apimachinery's `IsDNS1123Subdomain`: at most 253 characters matching its regex. Its parts
    /// have no length limit of their own (MIC's `<pod>-<namespace>-<identity>` names often pass 63).
    static func isDNSSubdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0), maxLength: 253) }
    }

    static func isDNSLabel(_ name: String, maxLength: Int = 63) -> Bool {
        guard let first = name.first, let last = name.last, name.count <= maxLength else { return false }
        func ok(_ c: Character) -> Bool { c.isASCII && (c.isLowercase || c.isNumber) }
        return ok(first) && ok(last) && name.allSatisfy { ok($0) || $0 == "-" }
    }

    /// Server-set fields for a new object.
    func initialize(_ resource: KubeResource, _ object: JSON, namespace: String?, name: String, rv: Int64) -> JSON {
        var object = object
        object["apiVersion"] = .string(resource.apiVersion)
        object["kind"] = .string(resource.kind)
        var metadata = object["metadata"] ?? .object([:])
        metadata["name"] = .string(name)
        metadata["namespace"] = namespace.map { .string($0) }
        metadata["uid"] = .string(UUID().uuidString.lowercased())
        metadata["resourceVersion"] = .string(String(rv))
        metadata["generation"] = resource.hasGeneration ? .int(1) : nil
        metadata["creationTimestamp"] = .string(kubeTimestamp())
        metadata["deletionTimestamp"] = nil
        object["metadata"] = metadata
        switch resource.plural {
        case "pods": object = podDefaults(object)
        case "namespaces": object["status"] = ["phase": "Active"]
        default: break
        }
        // The status of a kind with a status subresource starts empty, whatever the body says.
        if resource.hasStatusSubresource { object["status"] = .object([:]) }
        return object
    }

    /// A running pod on a simulated node, ready unless it is an NMI pod on a node the fault switch names.
    func podDefaults(_ pod: JSON) -> JSON {
        var pod = pod
        let name = pod[["metadata", "name"]]?.string ?? ""
        if pod[["spec", "nodeName"]]?.string == nil {
            pod[["spec", "nodeName"]] = .string(Self.nodes[Int(name.utf8.reduce(0) { $0 &+ Int($1) }) % Self.nodes.count])
        }
        if pod[["spec", "serviceAccountName"]] == nil { pod[["spec", "serviceAccountName"]] = "default" }
        if pod[["spec", "restartPolicy"]] == nil { pod[["spec", "restartPolicy"]] = "Always" }
        let octet = name.utf8.reduce(7) { ($0 &* 31 &+ Int($1)) % 250 } + 2
        pod["status"] = [
            "phase": "Running", "podIP": .string("10.244.0.\(octet)"), "hostIP": "10.240.0.4",
            "startTime": .string(kubeTimestamp()),
        ]
        return podReadiness(pod)
    }

    /// Sets a pod's Ready condition and container statuses from the NMI fault switch.
    func podReadiness(_ pod: JSON) -> JSON {
        var pod = pod
        let node = pod[["spec", "nodeName"]]?.string ?? ""
        let isNMI = pod[["metadata", "labels", "component"]]?.string == "nmi"
        let notReady = settings.withLock { $0.nmiNotReadyNodes }
        let ready = !(isNMI && (notReady.contains("*") || notReady.contains(node)))
        let flag = ready ? "True" : "False"
        pod[["status", "conditions"]] = .array([
            ["type": "Initialized", "status": "True"], ["type": "Ready", "status": .string(flag)],
            ["type": "ContainersReady", "status": .string(flag)], ["type": "PodScheduled", "status": "True"],
        ])
        pod[["status", "containerStatuses"]] = .array((pod[["spec", "containers"]]?.array ?? []).map { container in
            [
                "name": container["name"] ?? "", "image": container["image"] ?? "", "ready": .bool(ready),
                "restartCount": .int(0), "started": true,
                "state": ready ? ["running": ["startedAt": .string(kubeTimestamp())]]
                    : ["waiting": ["reason": "CrashLoopBackOff", "message": "simulated: NMI is not ready"]],
            ]
        })
        return pod
    }

    func create(_ resource: KubeResource, namespace: String?, body: [UInt8], query: [String: String], request: Request) -> Response {
        guard var object = JSON.parse(body), object.object != nil else {
            return badRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        }
        if let kind = object["kind"]?.string, kind != resource.kind {
            return badRequest("the kind of the object (\(kind)) does not match the kind of the URL (\(resource.kind))")
        }
        if let bodyNamespace = object[["metadata", "namespace"]]?.string, bodyNamespace != namespace, resource.namespaced {
            return badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        var name = object[["metadata", "name"]]?.string ?? ""
        if name.isEmpty, let prefix = object[["metadata", "generateName"]]?.string {
            name = Self.generatedName(prefix)
        }
        if name.isEmpty {
            return invalid(resource, "", [("metadata.name", "Required value: name or generateName is required")])
        }
        switch validate(resource, object, name: name) {
        case .failure(let error): return error.response
        case .success(let pruned): object = pruned
        }
        let manager = manager(query, request)
        return commitCreate(resource, namespace: namespace, name: name, object: object, manager: manager, operation: "Update")
    }

    /// A name from `generateName` as kube-apiserver makes one: the prefix (cut to 58 characters)
    /// and five random characters of the alphabet without vowels.
    static func generatedName(_ prefix: String) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String(prefix.prefix(58)) + String((0..<5).map { _ in alphabet.randomElement()! })
    }

    func commitCreate(_ resource: KubeResource, namespace: String?, name: String, object: JSON, manager: String, operation: String) -> Response {
        let key = Self.key(resource.plural, namespace, name)
        return store.update { collections in
            if let namespace {
                guard let owner = collections["objects"]?[Self.key("namespaces", nil, namespace)] else {
                    return (status(.notFound, reason: "NotFound", message: "namespaces \"\(namespace)\" not found",
                                   details: ["name": .string(namespace), "kind": "namespaces"]), [])
                }
                if owner[["metadata", "deletionTimestamp"]] != nil {
                    return (status(.forbidden, reason: "Forbidden",
                                   message: "\(resource.qualifiedName) \"\(name)\" is forbidden: unable to create new content in namespace \(namespace) because it is being terminated",
                                   details: ["name": .string(name), "group": .string(resource.group), "kind": .string(resource.plural)]), [])
                }
            }
            if collections["objects"]?[key] != nil {
                var details: JSON = ["name": .string(name), "kind": .string(resource.plural)]
                if !resource.group.isEmpty { details["group"] = .string(resource.group) }
                return (status(.conflict, reason: "AlreadyExists", message: "\(resource.qualifiedName) \"\(name)\" already exists",
                               details: details), [])
            }
            let rv = nextResourceVersion(collections)
            var stored = initialize(resource, object, namespace: namespace, name: name, rv: rv)
            let owners: Owners = [manager: (operation, KubePatch.leafPaths(stored), kubeTimestamp())]
            stored[["metadata", "managedFields"]] = KubePatch.managedFields(owners, apiVersion: resource.apiVersion)
            return (jsonResponse(.created, stored),
                    [("objects", key, stored), ("owners", key, Self.encodeOwners(owners)), ("meta", "rv", .int(rv))])
        }
    }

    func replace(_ resource: KubeResource, namespace: String?, name: String, body: [UInt8], query: [String: String], request: Request,
                 subresource: String? = nil) -> Response {
        guard let object = JSON.parse(body), object.object != nil else {
            return badRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        }
        if let bodyName = object[["metadata", "name"]]?.string, bodyName != name {
            return badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        if let bodyNamespace = object[["metadata", "namespace"]]?.string, bodyNamespace != namespace, resource.namespaced {
            return badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        let sentRV = object[["metadata", "resourceVersion"]]?.string
        if resource.isCustom && (sentRV ?? "").isEmpty {
            return invalid(resource, name, [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")])
        }
        return update(resource, namespace: namespace, name: name, manager: manager(query, request), expectedRV: sentRV,
                      subresource: subresource) { current, _ in
            var replaced = object
            // Server-owned metadata stays; the client's labels, annotations and finalizers replace.
            var metadata = current["metadata"] ?? .object([:])
            for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                metadata[field] = object[["metadata", field]]
            }
            replaced["metadata"] = metadata
            if resource.plural == "pods" { replaced["status"] = current["status"] }
            return .success(replaced)
        }
    }

    /// Read, change, validate and store one object, bumping resourceVersion (and generation when
    /// anything outside metadata changed; for kinds with a status subresource, when the spec did),
    /// recording the manager's fields, and completing a deletion when the last finalizer goes.
    /// A write to the `status` subresource (`subresource: "status"`) changes only the status and
    /// the annotations; any other write to such a kind leaves the status alone.
    func update(
        _ resource: KubeResource, namespace: String?, name: String, manager: String, operation: String = "Update",
        expectedRV: String?, subresource: String? = nil, applyOwners: ((Owners, JSON) -> Result<Owners, ErrorResponse>)? = nil,
        change: (JSON, Owners) -> Result<JSON, ErrorResponse>
    ) -> Response {
        let key = Self.key(resource.plural, namespace, name)
        return store.update { collections in
            guard let current = collections["objects"]?[key] else { return (notFound(resource, name), []) }
            if let expectedRV, !expectedRV.isEmpty, expectedRV != current[["metadata", "resourceVersion"]]?.string {
                return (conflict(resource, name), [])
            }
            var owners = Self.decodeOwners(collections["owners"]?[key])
            var changed: JSON
            switch change(current, owners) {
            case .failure(let error): return (error.response, [])
            case .success(let value): changed = value
            }
            if resource.hasStatusSubresource {
                if subresource == "status" {
                    var kept = current
                    kept["status"] = changed["status"]
                    kept[["metadata", "annotations"]] = changed[["metadata", "annotations"]]
                    changed = kept
                } else {
                    changed["status"] = current["status"]
                }
            }
            switch validate(resource, changed, name: name, previous: current) {
            case .failure(let error): return (error.response, [])
            case .success(let value): changed = value
            }
            // Immutable and server-owned fields.
            var metadata = changed["metadata"] ?? .object([:])
            for field in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"] {
                metadata[field] = current[["metadata", field]]
            }
            changed["metadata"] = metadata
            changed["apiVersion"] = .string(resource.apiVersion)
            changed["kind"] = .string(resource.kind)
            if resource.plural == "pods" {
                for field in ["nodeName", "containers", "serviceAccountName"] where current[["spec", field]] != nil {
                    if field != "containers" { changed[["spec", field]] = current[["spec", field]] }
                }
                if changed["status"] == nil { changed["status"] = current["status"] }
            }
            if let applyOwners {
                switch applyOwners(owners, changed) {
                case .failure(let error): return (error.response, [])
                case .success(let value): owners = value
                }
            } else {
                let paths = KubePatch.changedPaths(current, changed)
                if !paths.isEmpty {
                    let previous = owners[manager]?.paths ?? []
                    owners[manager] = (operation, previous.union(paths), kubeTimestamp())
                }
            }
            let livePaths = KubePatch.leafPaths(changed)
            for (name, entry) in owners {
                let kept = entry.paths.intersection(livePaths)
                owners[name] = kept.isEmpty ? nil : (entry.operation, kept, entry.time)
            }
            var comparableOld = current
            var comparableNew = changed
            comparableOld["metadata"] = nil
            comparableNew["metadata"] = nil
            let metadataOld = current["metadata"].map { m -> JSON in var m = m; m["resourceVersion"] = nil; m["managedFields"] = nil; return m }
            let metadataNew = changed["metadata"].map { m -> JSON in var m = m; m["resourceVersion"] = nil; m["managedFields"] = nil; return m }
            if comparableOld == comparableNew && metadataOld == metadataNew {
                return (jsonResponse(.ok, current), [])
            }
            let rv = nextResourceVersion(collections)
            changed[["metadata", "resourceVersion"]] = .string(String(rv))
            // Deployments count annotation changes too: they are copied to the ReplicaSets.
            let specChanged = resource.hasStatusSubresource
                ? subresource == nil && (current["spec"] != changed["spec"]
                    || (resource.plural == "deployments" && current[["metadata", "annotations"]] != changed[["metadata", "annotations"]]))
                : comparableOld != comparableNew
            if specChanged && resource.hasGeneration {
                changed[["metadata", "generation"]] = .int((current[["metadata", "generation"]]?.int ?? 1) + 1)
            }
            changed[["metadata", "managedFields"]] = KubePatch.managedFields(owners, apiVersion: resource.apiVersion)
            let finalizers = changed[["metadata", "finalizers"]]?.array ?? []
            if current[["metadata", "deletionTimestamp"]] != nil && finalizers.isEmpty {
                return (jsonResponse(.ok, changed), [("objects", key, nil), ("owners", key, nil), ("meta", "rv", .int(rv))])
            }
            return (jsonResponse(.ok, changed),
                    [("objects", key, changed), ("owners", key, Self.encodeOwners(owners)), ("meta", "rv", .int(rv))])
        }
    }

    func patch(_ resource: KubeResource, namespace: String?, name: String, body: [UInt8], query: [String: String],
               contentType: String, request: Request, subresource: String? = nil) -> Response {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        switch type {
        case "application/merge-patch+json":
            guard let patch = JSON.parse(body), patch.object != nil else { return badRequest("the patch is not a JSON object") }
            return update(resource, namespace: namespace, name: name, manager: manager(query, request),
                          expectedRV: patch[["metadata", "resourceVersion"]]?.string, subresource: subresource) { current, _ in
                .success(current.mergePatched(with: patch))
            }
        case "application/strategic-merge-patch+json" where !resource.isCustom:
            guard let patch = JSON.parse(body), patch.object != nil else { return badRequest("the patch is not a JSON object") }
            return update(resource, namespace: namespace, name: name, manager: manager(query, request),
                          expectedRV: patch[["metadata", "resourceVersion"]]?.string, subresource: subresource) { current, _ in
                .success(KubePatch.strategicMerge(current, patch))
            }
        case "application/json-patch+json":
            guard let patch = JSON.parse(body) else { return badRequest("the patch is not JSON") }
            return update(resource, namespace: namespace, name: name, manager: manager(query, request), expectedRV: nil,
                          subresource: subresource) { current, _ in
                do {
                    return .success(try KubePatch.jsonPatch(current, patch))
                } catch {
                    return .failure(ErrorResponse(self.status(.unprocessableContent, reason: "Invalid",
                                                              message: "the server rejected our request due to an error in our request")))
                }
            }
        case "application/apply-patch+yaml" where subresource == nil:
            return apply(resource, namespace: namespace, name: name, body: body, query: query)
        default:
            let accepted = resource.isCustom
                ? "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                : "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
            return status(.unsupportedMediaType, reason: "UnsupportedMediaType",
                          message: "the body of the request was in an unknown format - accepted media types include: \(accepted)")
        }
    }

    /// Server-side apply: creates the object when absent; otherwise merges the applied fields,
    /// refusing (409) to change fields another manager owns unless `force=true`, and removing
    /// fields this manager applied before and no longer does.
    func apply(_ resource: KubeResource, namespace: String?, name: String, body: [UInt8], query: [String: String]) -> Response {
        guard let manager = query["fieldManager"], !manager.isEmpty else {
            return status(.unprocessableContent, reason: "Invalid",
                          message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                          details: ["group": "meta.k8s.io", "kind": "PatchOptions",
                                    "causes": .array([["reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"]])])
        }
        let force = query["force"] == "true"
        if let problem = GoYAML.unknownEscape(in: body) {
            return badRequest("error decoding YAML: error converting YAML to JSON: \(problem)")
        }
        let text = String(decoding: body, as: UTF8.self)
        guard let parsed = (try? Yams.load(yaml: text)).map({ JSON.from(any: $0) }), var applied = Optional(parsed), applied.object != nil else {
            return badRequest("error decoding YAML: the apply patch is not a YAML or JSON object")
        }
        if applied[["metadata", "managedFields"]] != nil {
            return badRequest("metadata.managedFields must be nil")
        }
        if let bodyName = applied[["metadata", "name"]]?.string, bodyName != name {
            return badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        if let bodyNamespace = applied[["metadata", "namespace"]]?.string, bodyNamespace != namespace, resource.namespaced {
            return badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        if resource.isCustom, let schema = resource.schema, !settings.withLock({ $0.preserveUnknownFields }) {
            applied = KubeSchema.prune(applied, schema: schema, root: true)
        }
        if object(resource.plural, namespace: namespace, name: name) == nil {
            switch validate(resource, applied, name: name) {
            case .failure(let error): return error.response
            case .success(let value): applied = value
            }
            return commitCreate(resource, namespace: namespace, name: name, object: applied, manager: manager, operation: "Apply")
        }
        let appliedPaths = KubePatch.leafPaths(applied)
        return update(resource, namespace: namespace, name: name, manager: manager, operation: "Apply",
                      expectedRV: applied[["metadata", "resourceVersion"]]?.string,
                      applyOwners: { owners, merged in
                          var owners = owners
                          var conflicts: [(String, String)] = []
                          for (other, entry) in owners where other != manager {
                              for path in entry.paths.intersection(appliedPaths) {
                                  conflicts.append((other, path))
                              }
                          }
                          _ = merged
                          if !conflicts.isEmpty && !force {
                              let fields = conflicts.map { ".\($0.1.replacingOccurrences(of: KubePatch.separator, with: "."))" }
                              let message = "Apply failed with \(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s"): "
                                  + conflicts.map { "conflict with \"\($0.0)\": .\($0.1.replacingOccurrences(of: KubePatch.separator, with: "."))" }.joined(separator: "; ")
                              return .failure(ErrorResponse(self.status(.conflict, reason: "Conflict", message: message, details: [
                                  "causes": .array(zip(conflicts, fields).map { conflict, field in
                                      ["reason": "FieldManagerConflict", "message": .string("conflict with \"\(conflict.0)\""), "field": .string(field)]
                                  }),
                              ])))
                          }
                          for (other, entry) in owners where other != manager {
                              let kept = entry.paths.subtracting(appliedPaths)
                              owners[other] = kept.isEmpty ? nil : (entry.operation, kept, entry.time)
                          }
                          owners[manager] = ("Apply", appliedPaths, kubeTimestamp())
                          return .success(owners)
                      }) { current, owners in
            // Fields this manager applied before and no longer applies go, unless someone else owns them.
            var merged = KubePatch.applyMerge(current, applied)
            let previous = owners[manager]?.paths ?? []
            let othersOwn = owners.filter { $0.key != manager }.values.reduce(into: Set<String>()) { $0.formUnion($1.paths) }
            for path in previous.subtracting(appliedPaths).subtracting(othersOwn) {
                merged = KubePatch.removing(merged, path)
            }
            return .success(merged)
        }
    }

    /// The garbage collector's finalizers: a deletion waiting for the owner's dependents to lose
    /// their owner references (`orphan`) or to be deleted first (`foregroundDeletion`).
    static let orphanFinalizer = "orphan"
    static let foregroundFinalizer = "foregroundDeletion"

    /// Deletes an object, honouring DeleteOptions: preconditions, and `propagationPolicy` (or the
    /// older `orphanDependents`). `Orphan` and `Foreground` add the garbage collector's finalizer and
    /// leave the object terminating for the simulated garbage collector; `Background` (the default)
    /// deletes at once, and the collector deletes the dependents afterwards.
    func delete(_ resource: KubeResource, namespace: String?, name: String, body: [UInt8]) -> Response {
        let options = JSON.parse(body)
        var policy = options?["propagationPolicy"]?.string
        if policy == nil, case .bool(let orphan)? = options?["orphanDependents"] { policy = orphan ? "Orphan" : "Background" }
        if let policy, !["Orphan", "Background", "Foreground"].contains(policy) {
            return status(.unprocessableContent, reason: "Invalid",
                          message: "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"\(policy)\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                          details: ["group": "meta.k8s.io", "kind": "DeleteOptions", "causes": .array([[
                              "reason": "FieldValueNotSupported", "field": "propagationPolicy",
                              "message": .string("Unsupported value: \"\(policy)\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
                          ]])])
        }
        let key = Self.key(resource.plural, namespace, name)
        return store.update { collections in
            guard var current = collections["objects"]?[key] else { return (notFound(resource, name), []) }
            if let uid = options?[["preconditions", "uid"]]?.string, uid != current[["metadata", "uid"]]?.string {
                return (status(.conflict, reason: "Conflict",
                               message: "Precondition failed: UID in precondition: \(uid), UID in object meta: \(current[["metadata", "uid"]]?.string ?? "")"), [])
            }
            if let rv = options?[["preconditions", "resourceVersion"]]?.string, rv != current[["metadata", "resourceVersion"]]?.string {
                return (conflict(resource, name), [])
            }
            let deleting = current[["metadata", "deletionTimestamp"]] != nil
            if deleting && resource.plural == "namespaces" { return (jsonResponse(.ok, current), []) }
            let rv = nextResourceVersion(collections)
            let before = (current[["metadata", "finalizers"]]?.array ?? []).compactMap(\.string)
            var finalizers = before
            if resource.plural != "namespaces" {
                // The policy asked for wins over a GC finalizer the object already carries, also on a
                // second deletion (Orphan after Foreground switches the finalizer).
                let carried = before.contains(Self.orphanFinalizer) ? "Orphan" : before.contains(Self.foregroundFinalizer) ? "Foreground" : nil
                let effective = policy ?? carried
                finalizers.removeAll { $0 == Self.orphanFinalizer || $0 == Self.foregroundFinalizer }
                if effective == "Orphan" { finalizers.append(Self.orphanFinalizer) }
                if effective == "Foreground" { finalizers.append(Self.foregroundFinalizer) }
            }
            if deleting && Set(finalizers) == Set(before) { return (jsonResponse(.ok, current), []) }
            if !finalizers.isEmpty {
                if !deleting {
                    current[["metadata", "deletionTimestamp"]] = .string(kubeTimestamp())
                    // Controllers must see that the object is going: the generation moves (`markAsDeleting`).
                    if let generation = current[["metadata", "generation"]]?.int, generation > 0 {
                        current[["metadata", "generation"]] = .int(generation + 1)
                    }
                }
                current[["metadata", "finalizers"]] = .array(finalizers.map { .string($0) })
                current[["metadata", "deletionGracePeriodSeconds"]] = .int(0)
                current[["metadata", "resourceVersion"]] = .string(String(rv))
                return (jsonResponse(.ok, current), [("objects", key, current), ("meta", "rv", .int(rv))])
            }
            if resource.plural == "namespaces" {
                // Namespaces terminate: their contents go in the background (`finalizeNamespaces`).
                current[["metadata", "deletionTimestamp"]] = .string(kubeTimestamp())
                current[["status", "phase"]] = "Terminating"
                current[["metadata", "resourceVersion"]] = .string(String(rv))
                return (jsonResponse(.ok, current), [("objects", key, current), ("meta", "rv", .int(rv))])
            }
            let changes: [(String, String, JSON?)] = [("objects", key, nil), ("owners", key, nil), ("meta", "rv", .int(rv))]
            // Pods answer with the deleted object (their storage returns it); other kinds with a Status.
            if resource.plural == "pods" { return (jsonResponse(.ok, current), changes) }
            var details: JSON = ["name": .string(name), "kind": .string(resource.plural), "uid": current[["metadata", "uid"]] ?? .null]
            if !resource.group.isEmpty { details["group"] = .string(resource.group) }
            return (jsonResponse(.ok, ["kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Success", "details": details]),
                    changes)
        }
    }

    func deleteCollection(_ resource: KubeResource, namespace: String?, query: [String: String]) -> Response {
        let items: [(String, JSON)]
        switch selectedOrError(resource, namespace: namespace, query: query) {
        case .failure(let error): return error.response
        case .success(let selected): items = selected
        }
        for (_, object) in items {
            _ = delete(resource, namespace: object[["metadata", "namespace"]]?.string, name: object[["metadata", "name"]]?.string ?? "", body: [])
        }
        return jsonResponse(.ok, [
            "kind": .string(resource.listKind), "apiVersion": .string(resource.apiVersion),
            "metadata": ["resourceVersion": .string(currentResourceVersion)], "items": .array(items.map(\.1)),
        ])
    }

    /// Finishes terminating namespaces: deletes what they hold (objects with finalizers keep them
    /// terminating, as on a real cluster), then the namespace itself.
    public func finalizeNamespaces(now: Date = Date()) {
        for namespace in objects("namespaces") {
            // Like the namespace controller, act a moment after the deletion, not at once: a client
            // deleting a namespace and then its objects (kubectl delete -f) still finds them.
            guard let stamp = namespace[["metadata", "deletionTimestamp"]]?.string,
                  let deletedAt = try? Date(stamp, strategy: Date.ISO8601FormatStyle()),
                  now.timeIntervalSince(deletedAt) >= 2
            else { continue }
            let name = namespace[["metadata", "name"]]?.string ?? ""
            var remaining = 0
            for resource in resources where resource.namespaced {
                for object in objects(resource.plural, namespace: name) {
                    remaining += 1
                    _ = delete(resource, namespace: name, name: object[["metadata", "name"]]?.string ?? "", body: [])
                }
            }
            if remaining == 0 || resources.filter(\.namespaced).allSatisfy({ objects($0.plural, namespace: name).isEmpty }) {
                store.update { collections in
                    let rv = nextResourceVersion(collections)
                    let key = Self.key("namespaces", nil, name)
                    return ((), [("objects", key, nil), ("owners", key, nil), ("meta", "rv", .int(rv))])
                }
            }
        }
    }
}
