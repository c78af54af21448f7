import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension KubeSimulator {
    /// `/version`, `/api`, `/apis` and the group versions, so that kubectl finds its way.
    func discovery(_ segments: [String], crdsServed: Bool, request: Request? = nil) -> Response? {
        let groups = ["apps"] + (crdsServed ? [KubeSchema.podIdentityGroup, "authorization.k8s.io"] : ["authorization.k8s.io"])
        func groupJSON(_ name: String) -> JSON {
            let version: JSON = ["groupVersion": .string("\(name)/v1"), "version": "v1"]
            return ["name": .string(name), "versions": .array([version]), "preferredVersion": version]
        }
        func resourceList(_ groupVersion: String, _ list: [KubeResource]) -> JSON {
            [
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion),
                "resources": .array(list.flatMap { resource -> [JSON] in
                    var entry: JSON = [
                        "name": .string(resource.plural), "singularName": .string(resource.singular),
                        "namespaced": .bool(resource.namespaced), "kind": .string(resource.kind),
                        "verbs": .array(resource.verbs.map { .string($0) }),
                        "shortNames": .array(resource.shortNames.map { .string($0) }),
                    ]
                    if !resource.categories.isEmpty { entry["categories"] = .array(resource.categories.map { .string($0) }) }
                    // `kubectl scale` finds the Scale kind of `<plural>/scale` here.
                    return [entry] + resource.subresources.map { sub in
                        [
                            "name": .string("\(resource.plural)/\(sub.name)"), "singularName": "", "namespaced": .bool(resource.namespaced),
                            "group": .string(sub.group), "version": .string(sub.version), "kind": .string(sub.kind),
                            "verbs": .array(sub.verbs.map { .string($0) }),
                        ]
                    }
                }),
            ]
        }
        switch segments {
        case ["version"]:
            return jsonResponse(.ok, [
                "major": "1", "minor": "20", "gitVersion": "v1.20.2-podid-sim", "gitCommit": "podid-simulator",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.15", "compiler": "gc",
                "platform": "linux/amd64",
            ])
        case ["openapi", "v2"]:
            return Self.openAPIV2()
        case _ where segments.starts(with: ["openapi", "v3"]):
            return openAPIV3(Array(segments.dropFirst(2)), request: request)
        case ["api"]:
            return jsonResponse(.ok, [
                "kind": "APIVersions", "versions": .array(["v1"]),
                "serverAddressByClientCIDRs": .array([["clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"]]),
            ])
        case ["api", "v1"]:
            return jsonResponse(.ok, resourceList("v1", resources.filter { $0.group.isEmpty }))
        case ["apis"]:
            return jsonResponse(.ok, ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups.map(groupJSON))])
        case ["apis", KubeSchema.podIdentityGroup] where crdsServed, ["apis", "authorization.k8s.io"], ["apis", "apps"]:
            return jsonResponse(.ok, (["kind": "APIGroup", "apiVersion": "v1"] as JSON).mergePatched(with: groupJSON(segments[1])))
        case ["apis", KubeSchema.podIdentityGroup, "v1"] where crdsServed:
            return jsonResponse(.ok, resourceList("\(KubeSchema.podIdentityGroup)/v1", resources.filter { $0.group == KubeSchema.podIdentityGroup }))
        case ["apis", "apps", "v1"]:
            return jsonResponse(.ok, resourceList("apps/v1", resources.filter { $0.group == "apps" }))
        case ["apis", "authorization.k8s.io", "v1"]:
            return jsonResponse(.ok, [
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "authorization.k8s.io/v1",
                "resources": .array([[
                    "name": "selfsubjectaccessreviews", "singularName": "", "namespaced": false,
                    "kind": "SelfSubjectAccessReview", "verbs": .array(["create"]),
                ]]),
            ])
        default:
            return nil
        }
    }

    /// `/openapi/v2`: a real API server serves its whole OpenAPI document here, and kubectl fetches it
    /// (as protobuf) to validate what it applies. The simulator serves a document without
    /// definitions, for which kubectl skips validation, so `kubectl apply` works without
    /// `--validate=false`. The protobuf is gnostic's `openapi_v2.Document` with `swagger` (field 1)
    /// and `info` (field 2: `title` 1, `version` 2).
    static func openAPIV2() -> Response {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let info = field(1, Array("Kubernetes".utf8)) + field(2, Array("v1.20.2-podid-sim".utf8))
        let document = field(1, Array("2.0".utf8)) + field(2, info)
        var headers = HTTPFields()
        // What kube-apiserver answers for the protobuf form (the media type kubectl asks for has an
        // '@', which Go's MIME parser, and so kubectl, refuses in a Content-Type).
        headers[.contentType] = "application/octet-stream"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: document)))
    }

    /// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: allowed unless a fault
    /// switch denies the verb.
    func selfSubjectAccessReview(_ request: Request) async -> Response {
        let body: [UInt8]
        switch await requestBody(request, kind: "SelfSubjectAccessReview") {
        case .success(let bytes): body = bytes
        case .failure(let error): return error.response
        }
        guard var review = JSON.parse(body), review.object != nil else {
            return badRequest("the body of the request is not a SelfSubjectAccessReview")
        }
        let attributes = review[["spec", "resourceAttributes"]] ?? .object([:])
        let verb = attributes["verb"]?.string ?? ""
        let resource = attributes["resource"]?.string ?? ""
        let denied = settings.withLock { $0.deniedVerbs }
        let allowed = !(denied.contains(verb) || denied.contains("\(resource):\(verb)"))
        review["status"] = allowed
            ? ["allowed": true]
            : ["allowed": false, "reason": .string("the simulator denies \(verb) on \(resource) (fault switch)")]
        review["metadata"] = ["creationTimestamp": .null]
        return jsonResponse(.created, review)
    }

    /// `/_sim/…`: settings and fault switches, the request log.
    func admin(_ request: Request, _ path: [String]) async -> Response {
        let body = (try? await bodyBytes(request)) ?? []
        if let common = commonAdmin(request.method, path.first ?? "", body: body, log: requestLog, current: currentSettings,
                                    apply: { settings in
                                        configure { $0 = settings }
                                        reconcileBrokerPods()
                                    }) {
            return common
        }
        switch (request.method, path.first ?? "") {
        default:
            return jsonResponse(.notFound, ["error": .string("unknown simulator admin path /_sim/\(path.joined(separator: "/"))")])
        }
    }
}
