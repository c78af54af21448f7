import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

extension KubeSimulator {
    /// `/openapi/v3` and `/openapi/v3/<group version>`, which kubectl ≥ 1.27 reads for `explain` and
    /// to learn whether the server validates fields. The index lists one document per served group
    /// version with a hash of its content; a document has the group version's paths and the
    /// component schemas they reach, keyed as kube-apiserver keys them.
    func openAPIV3(_ path: [String], request: Request?) -> Response {
        let documents = openAPIV3Documents()
        guard !path.isEmpty else {
            var paths: [String: JSON] = [:]
            for (key, document) in documents {
                paths[key] = ["serverRelativeURL": .string("/openapi/v3/\(key)?hash=\(document.hash)")]
            }
            // The aggregator in front of kube-apiserver serves the index with http.ServeContent,
            // which sniffs JSON as text and sets no ETag.
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: JSON.object(["paths": .object(paths)]).data)))
        }
        let key = path.joined(separator: "/")
        // The aggregator answers a group version nobody serves with a bare 404.
        guard let document = documents[key] else { return Response(status: .notFound) }
        let accept = request?.headers[.accept] ?? "*/*"
        guard Self.acceptsJSON(accept) else { return Response(status: .notAcceptable, headers: [.vary: "Accept"]) }
        let etag = "\"\(document.hash)\""
        var headers: HTTPFields = [.vary: "Accept", .eTag: etag]
        let hash = request.map(queryItems)?["hash"] ?? ""
        if !hash.isEmpty {
            guard hash == document.hash else {
                // A hash from an older index: kube-openapi redirects to the current document.
                return Response(status: .movedPermanently, headers: [.location: "/openapi/v3/\(key)?hash=\(document.hash)"])
            }
            headers[.cacheControl] = "public, immutable"
            headers[.expires] = Self.httpDate(Date().addingTimeInterval(365 * 24 * 3600))
        }
        if let match = request?.headers[.ifNoneMatch], match == etag || match == "*" {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: document.data)))
    }

    /// Whether an Accept header admits JSON (kube-openapi also offers its protobuf form, which the
    /// simulator does not; JSON is what kubectl asks for).
    static func acceptsJSON(_ accept: String) -> Bool {
        accept.split(separator: ",").contains { clause in
            let type = clause.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            return ["application/json", "application/*", "*/*"].contains(type)
        }
    }

    /// An RFC 1123 date in GMT, as HTTP headers carry them.
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// The served group versions' documents by index key (`api/v1`, `apis/apps/v1`…), built once
    /// per distinct input: the served kinds (from `resources`, so kinds added there appear without
    /// more work), whether the CRDs are served and whether they are the schema-less kind.
    func openAPIV3Documents() -> [String: KubeOpenAPI.Document] {
        let current = settings.withLock { ($0.crdsServed, $0.preserveUnknownFields) }
        var served = resources.filter { current.0 || !$0.isCustom }
        // SelfSubjectAccessReview is served by a handler of its own, outside `resources`.
        if !served.contains(where: { $0.group == "authorization.k8s.io" && $0.kind == "SelfSubjectAccessReview" }) {
            served.append(KubeResource(group: "authorization.k8s.io", version: "v1", plural: "selfsubjectaccessreviews",
                                       singular: "", kind: "SelfSubjectAccessReview", listKind: "", namespaced: false,
                                       verbs: ["create"]))
        }
        return KubeOpenAPI.documents(served, schemaless: current.1)
    }
}

/// OpenAPI v3 documents for the Kubernetes simulator, assembled from the built-in kinds' schemas
/// that `scripts/generate-kube-openapi` derives from the Kubernetes .proto files, and from the
/// CRDs' structural schemas the way apiextensions-apiserver's OpenAPI builder turns them into
/// components (`pkg/controller/openapi/builder`).
enum KubeOpenAPI {
    /// One group version's document: its JSON and the upper-case hex SHA-512 of it (kube-openapi's
    /// `computeETag`).
    struct Document: Sendable {
        var data: Data
        var hash: String
    }

    /// The generated file: `schemas` by model name and query `parameters` by options kind.
    static let generated: JSON = {
        guard let url = Bundle.module.url(forResource: "openapi-v3-schemas", withExtension: "json", subdirectory: "Resources/kubernetes-api")
            ?? Bundle.module.url(forResource: "openapi-v3-schemas", withExtension: "json"),
            let data = try? Data(contentsOf: url), let json = JSON.parse(data)
        else { return ["schemas": .object([:]), "parameters": .object([:])] }
        return json
    }()

    /// Documents already built, by a fingerprint of what they were built from. Building the core
    /// document takes long enough that kubectl's every `explain` should not pay for it again.
    static let cache = Mutex<[String: [String: Document]]>([:])

    static let schemaPrefix = "#/components/schemas/"

    /// The documents of the served kinds, by index key.
    static func documents(_ served: [KubeResource], schemaless: Bool) -> [String: Document] {
        var fingerprint = schemaless ? "schemaless" : "structural"
        for resource in served {
            fingerprint += "|\(resource.apiVersion) \(resource.plural) \(resource.kind) \(resource.listKind) \(resource.namespaced) \(resource.verbs)"
            if let schema = resource.schema { fingerprint += " " + String(decoding: schema.data, as: UTF8.self) }
        }
        if let cached = cache.withLock({ $0[fingerprint] }) { return cached }
        var byKey: [String: [KubeResource]] = [:]
        for resource in served { byKey[indexKey(resource), default: []].append(resource) }
        let groupVersions = Set(served.map { [$0.group, $0.version] }).sorted { $0.joined(separator: "/") < $1.joined(separator: "/") }
        var documents: [String: Document] = [:]
        for (key, resources) in byKey {
            let data = document(resources, schemaless: schemaless, groupVersions: groupVersions).data
            documents[key] = Document(data: data, hash: SHA512.hash(data: data).map { String(format: "%02X", $0) }.joined())
        }
        cache.withLock { cache in
            if cache.count > 16 { cache.removeAll() }
            cache[fingerprint] = documents
        }
        return documents
    }

    /// `api/v1` for the core group, `apis/<group>/<version>` for the others.
    static func indexKey(_ resource: KubeResource) -> String {
        resource.group.isEmpty ? "api/\(resource.version)" : "apis/\(resource.group)/\(resource.version)"
    }

    /// One group version's document: the paths of its kinds and every schema they reach.
    static func document(_ resources: [KubeResource], schemaless: Bool, groupVersions: [[String]]) -> JSON {
        var schemas: [String: JSON] = [:]
        var paths: [String: JSON] = [:]
        let custom = resources.contains { $0.isCustom }
        for resource in resources {
            let names = modelNames(resource)
            if resource.isCustom {
                schemas[names.kind] = customResourceSchema(resource, schemaless: schemaless)
                schemas[names.list] = customResourceListSchema(resource, itemModel: names.kind)
            }
            paths.merge(self.paths(resource, kindModel: names.kind, listModel: names.list)) { a, _ in a }
        }
        // Every schema the paths and the custom schemas reach, from the generated ones.
        let builtin = generated["schemas"]?.object ?? [:]
        var pending = references(in: .object(paths)) + schemas.values.flatMap { references(in: $0) }
        while let name = pending.popLast() {
            guard schemas[name] == nil else { continue }
            var schema = builtin[name] ?? ["type": "object"]
            // Kinds every group serves (as the real server lists them: one entry per group version).
            if name.hasSuffix(".meta.v1.DeleteOptions") || name.hasSuffix(".meta.v1.WatchEvent") {
                let kind = String(name.split(separator: ".").last ?? "")
                schema["x-kubernetes-group-version-kind"] = .array(groupVersions.map {
                    ["group": .string($0[0]), "kind": .string(kind), "version": .string($0[1])]
                })
            } else if name.hasSuffix(".meta.v1.Status") {
                schema["x-kubernetes-group-version-kind"] = [["group": "", "kind": "Status", "version": "v1"]]
            }
            schemas[name] = schema
            pending += references(in: schema)
        }
        return [
            "openapi": "3.0.0",
            "info": custom ? ["title": "Kubernetes CRD Swagger", "version": "v0.1.0"] : ["title": "Kubernetes", "version": "unversioned"],
            "paths": .object(paths),
            "components": [
                "schemas": .object(schemas),
                "securitySchemes": ["BearerToken": [
                    "description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey",
                ]],
            ],
        ]
    }

    /// The model names of a kind and its list: `io.k8s.api.core.v1.Pod` for built-in kinds; for a
    /// custom resource the reversed group, the version and the kind (`k8s.aadpodidentity.v1.AzureIdentity`),
    /// as apiextensions-apiserver's `gvkToModelName` names them.
    static func modelNames(_ resource: KubeResource) -> (kind: String, list: String) {
        let prefix: String
        if resource.isCustom {
            prefix = resource.group.split(separator: ".").reversed().joined(separator: ".") + ".\(resource.version)"
        } else {
            let package = resource.group.isEmpty ? "core" : String(resource.group.split(separator: ".").first ?? "")
            prefix = "io.k8s.api.\(package).\(resource.version)"
        }
        return ("\(prefix).\(resource.kind)", "\(prefix).\(resource.listKind)")
    }

    /// The names of the component schemas a schema refers to.
    static func references(in value: JSON) -> [String] {
        switch value {
        case .object(let members):
            var found: [String] = []
            for (key, member) in members {
                if key == "$ref", let ref = member.string, ref.hasPrefix(schemaPrefix) {
                    found.append(String(ref.dropFirst(schemaPrefix.count)))
                } else {
                    found += references(in: member)
                }
            }
            return found
        case .array(let items): return items.flatMap { references(in: $0) }
        default: return []
        }
    }

    static let apiVersionProperty: JSON = [
        "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
        "type": "string",
    ]
    static let kindProperty: JSON = [
        "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
        "type": "string",
    ]

    static func ref(_ model: String, description: String? = nil) -> JSON {
        guard let description else { return ["$ref": .string(schemaPrefix + model)] }
        return ["allOf": [["$ref": .string(schemaPrefix + model)]], "description": .string(description)]
    }

    static func gvk(_ resource: KubeResource, kind: String) -> JSON {
        ["group": .string(resource.group), "kind": .string(kind), "version": .string(resource.version)]
    }

    /// A custom resource's schema as `buildKubeNative` builds it: the CRD's structural schema with
    /// TypeMeta and ObjectMeta in place of what it says about them (in embedded resources too), and
    /// the group-version-kind extension. A CRD without a schema (`preserveUnknownFields`) is just an object.
    static func customResourceSchema(_ resource: KubeResource, schemaless: Bool) -> JSON {
        var schema: JSON = schemaless ? ["type": "object"] : embedded(resource.schema ?? ["type": "object"])
        if !schemaless {
            schema[["properties", "apiVersion"]] = apiVersionProperty
            schema[["properties", "kind"]] = kindProperty
            schema[["properties", "metadata"]] = ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                                     description: "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
        }
        schema["x-kubernetes-group-version-kind"] = [gvk(resource, kind: resource.kind)]
        return schema
    }

    /// `addEmbeddedProperties`: an `x-kubernetes-embedded-resource` object gets apiVersion, kind
    /// (both required) and ObjectMeta metadata.
    static func embedded(_ schema: JSON) -> JSON {
        guard case .object(var members) = schema else { return schema }
        if case .object(var properties)? = members["properties"] {
            for (key, property) in properties { properties[key] = embedded(property) }
            members["properties"] = .object(properties)
        }
        if let items = members["items"] { members["items"] = embedded(items) }
        if let additional = members["additionalProperties"], additional.object != nil {
            members["additionalProperties"] = embedded(additional)
        }
        if members["x-kubernetes-embedded-resource"] == .bool(true) {
            var properties = members["properties"]?.object ?? [:]
            properties["apiVersion"] = ["description": "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"]
            properties["kind"] = ["description": "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"]
            properties["metadata"] = ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                         description: "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
            members["properties"] = .object(properties)
            var required = members["required"]?.array ?? []
            for name in ["kind", "apiVersion"] where !required.contains(.string(name)) { required.append(.string(name)) }
            members["required"] = .array(required)
        }
        return .object(members)
    }

    /// `buildListSchema`: items of the kind, ListMeta, TypeMeta.
    static func customResourceListSchema(_ resource: KubeResource, itemModel: String) -> JSON {
        [
            "description": .string("\(resource.listKind) is a list of \(resource.kind)"),
            "type": "object",
            "required": ["items"],
            "properties": [
                "apiVersion": apiVersionProperty,
                "kind": kindProperty,
                "items": [
                    "type": "array", "items": ref(itemModel),
                    "description": .string("List of \(resource.plural). More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"),
                ],
                "metadata": ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
                                description: "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
            ],
            "x-kubernetes-group-version-kind": [gvk(resource, kind: resource.listKind)],
        ]
    }

    /// kube-apiserver's `ToValidOperationID`: letters kept, anything else capitalises what follows.
    static func operationID(_ text: String, capitalizeFirst: Bool) -> String {
        var result = ""
        var capitalize = capitalizeFirst
        for (index, character) in text.enumerated() {
            if character.isLetter || character == "_" || (index != 0 && character.isNumber) {
                result += capitalize ? character.uppercased() : String(character)
                capitalize = false
            } else {
                capitalize = true
            }
        }
        return result
    }

    /// Query parameters from an options kind of the generated file, minus `excluded`.
    static func queryParameters(_ options: String, excluding excluded: Set<String> = []) -> [JSON] {
        (generated[["parameters", options]]?.array ?? []).compactMap { parameter in
            guard let name = parameter["name"]?.string, !excluded.contains(name) else { return nil }
            return [
                "description": parameter["description"] ?? "", "in": "query", "name": .string(name),
                "schema": ["type": parameter["type"] ?? "string", "uniqueItems": true],
            ]
        }
    }

    /// The paths of one kind as kube-apiserver (or, for a custom resource, apiextensions-apiserver)
    /// installs them, for the verbs the simulator serves.
    static func paths(_ resource: KubeResource, kindModel: String, listModel: String) -> [String: JSON] {
        let root = resource.group.isEmpty ? "/api/\(resource.version)" : "/apis/\(resource.group)/\(resource.version)"
        let groupName = resource.group.isEmpty ? "core" : String(resource.group.dropLast(resource.group.hasSuffix(".k8s.io") ? 7 : 0))
        let prefix = operationID(groupName, capitalizeFirst: true) + operationID(resource.version, capitalizeFirst: true)
        let tag = operationID(groupName, capitalizeFirst: false) + "_" + operationID(resource.version, capitalizeFirst: false)
        let scope = resource.namespaced ? "Namespaced" : ""
        let kind = resource.kind
        let article = "aeiouAEIOU".contains(kind.first ?? "x") ? "an" : "a"
        let media = resource.isCustom
            ? ["application/json", "application/yaml"]
            : ["application/json", "application/vnd.kubernetes.protobuf", "application/yaml"]
        let verbs = Set(resource.verbs)

        func content(_ model: String, watch: Bool = false) -> JSON {
            var types = media
            if watch { types += resource.isCustom ? ["application/json;stream=watch"] : ["application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"] }
            return .object(Dictionary(uniqueKeysWithValues: types.map { ($0, ["schema": ref(model)] as JSON) }))
        }
        func responses(_ codes: [(String, String)], _ model: String, watch: Bool = false) -> JSON {
            var result: [String: JSON] = ["401": ["description": "Unauthorized"]]
            for (code, text) in codes { result[code] = ["content": content(model, watch: watch), "description": .string(text)] }
            return .object(result)
        }
        func operation(_ verb: String, _ action: String, _ description: String, _ id: String, parameters: [JSON],
                       body: JSON? = nil, responses: JSON) -> JSON {
            var result: JSON = [
                "description": .string(description), "operationId": .string(verb + prefix + id),
                "tags": [.string(tag)], "responses": responses,
                "x-kubernetes-action": .string(action), "x-kubernetes-group-version-kind": gvk(resource, kind: kind),
            ]
            let sorted = parameters.sorted { ($0["name"]?.string ?? "") < ($1["name"]?.string ?? "") }
            var unique: [JSON] = []
            for parameter in sorted where !unique.contains(where: { $0["name"] == parameter["name"] }) { unique.append(parameter) }
            if !unique.isEmpty { result["parameters"] = .array(unique) }
            if let body { result["requestBody"] = body }
            return result
        }
        func pathParameter(_ name: String, _ description: String) -> JSON {
            ["description": .string(description), "in": "path", "name": .string(name), "required": true,
             "schema": ["type": "string", "uniqueItems": true]]
        }
        let pretty: JSON = [
            "description": "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
            "in": "query", "name": "pretty", "schema": ["type": "string", "uniqueItems": true],
        ]
        let namespace = pathParameter("namespace", "object name and auth scope, such as for teams and projects")
        let name = pathParameter("name", "name of the \(kind)")
        let bodyTypes = resource.isCustom ? ["application/json", "application/yaml"] : ["*/*"]
        let objectBody: JSON = ["content": .object(Dictionary(uniqueKeysWithValues: bodyTypes.map { ($0, ["schema": ref(kindModel)] as JSON) })),
                                "required": true]
        let patchTypes = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
            + (resource.isCustom ? [] : ["application/strategic-merge-patch+json"])
        let patchBody: JSON = [
            "content": .object(Dictionary(uniqueKeysWithValues: patchTypes.map {
                ($0, ["schema": ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")] as JSON)
            })),
            "required": true,
        ]
        let deleteBody: JSON = ["content": ["*/*": ["schema": ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")]]]
        let status = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"

        let collectionPath = resource.namespaced ? "\(root)/namespaces/{namespace}/\(resource.plural)" : "\(root)/\(resource.plural)"
        var collection: JSON = ["parameters": .array(resource.namespaced ? [namespace, pretty] : [pretty])]
        var item: JSON = ["parameters": .array(resource.namespaced ? [name, namespace, pretty] : [name, pretty])]
        var result: [String: JSON] = [:]
        if verbs.contains("list") || verbs.contains("watch") {
            collection["get"] = operation("list", "list", "list or watch objects of kind \(kind)", "\(scope)\(kind)",
                                          parameters: queryParameters("ListOptions"),
                                          responses: responses([("200", "OK")], listModel, watch: true))
            if resource.namespaced {
                result["\(root)/\(resource.plural)"] = [
                    "parameters": .array([pretty]),
                    "get": operation("list", "list", "list or watch objects of kind \(kind)", "\(kind)ForAllNamespaces",
                                     parameters: queryParameters("ListOptions"),
                                     responses: responses([("200", "OK")], listModel, watch: true)),
                ]
            }
        }
        if verbs.contains("create") {
            collection["post"] = operation("create", "post", "create \(article) \(kind)", "\(scope)\(kind)",
                                           parameters: queryParameters("CreateOptions"), body: objectBody,
                                           responses: responses([("200", "OK"), ("201", "Created"), ("202", "Accepted")], kindModel))
        }
        if verbs.contains("deletecollection") {
            collection["delete"] = operation("delete", "deletecollection", "delete collection of \(kind)", "Collection\(scope)\(kind)",
                                             parameters: queryParameters("ListOptions", excluding: ["watch", "allowWatchBookmarks"])
                                                 + queryParameters("DeleteOptions"),
                                             body: deleteBody, responses: responses([("200", "OK")], status))
        }
        if verbs.contains("get") {
            item["get"] = operation("read", "get", "read the specified \(kind)", "\(scope)\(kind)", parameters: [],
                                    responses: responses([("200", "OK")], kindModel))
        }
        if verbs.contains("update") {
            item["put"] = operation("replace", "put", "replace the specified \(kind)", "\(scope)\(kind)",
                                    parameters: queryParameters("UpdateOptions"), body: objectBody,
                                    responses: responses([("200", "OK"), ("201", "Created")], kindModel))
        }
        if verbs.contains("patch") {
            item["patch"] = operation("patch", "patch", "partially update the specified \(kind)", "\(scope)\(kind)",
                                      parameters: queryParameters("PatchOptions"), body: patchBody,
                                      responses: responses([("200", "OK"), ("201", "Created")], kindModel))
        }
        if verbs.contains("delete") {
            item["delete"] = operation("delete", "delete", "delete \(article) \(kind)", "\(scope)\(kind)",
                                       parameters: queryParameters("DeleteOptions"), body: deleteBody,
                                       responses: responses([("200", "OK"), ("202", "Accepted")], resource.isCustom ? status : kindModel))
        }
        if (collection.object?.count ?? 0) > 1 { result[collectionPath] = collection }
        if (item.object?.count ?? 0) > 1 { result[collectionPath + "/{name}"] = item }
        return result
    }
}
