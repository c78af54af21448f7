import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Simulators
import Testing

/// A watch stream read event by event, across several reads (one task uses it).
final class WatchStream {
    let response: HTTPClientResponse
    private var body: HTTPClientResponse.Body.AsyncIterator
    private var pending = Data()

    init(response: HTTPClientResponse) {
        self.response = response
        body = response.body.makeAsyncIterator()
    }

    /// Opens a watch (the simulator's token; a client deadline well past what a test waits).
    static func open(_ url: String, accept: String? = nil) async throws -> WatchStream {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer dev")
        if let accept { request.headers.add(name: "Accept", value: accept) }
        return WatchStream(response: try await HTTPClient.shared.execute(request, timeout: .seconds(60)))
    }

    /// Events (`type`, `object`) until `stop` says so or the stream ends; blank keep-alive lines are skipped.
    func events(until stop: ([JSON]) -> Bool) async throws -> [JSON] {
        var events: [JSON] = []
        while true {
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[pending.index(after: newline)...])
                guard let event = JSON.parse(line), event.object != nil else { continue }
                events.append(event)
                if stop(events) { return events }
            }
            guard let buffer = try await body.next() else { return events }
            pending.append(contentsOf: buffer.readableBytesView)
        }
    }
}

/// The Kubernetes simulator's watch (watch-list, bookmarks, resourceVersions, selectors, timeouts)
/// and its `/openapi/v3` documents, against what kube-apiserver does.
@Suite("Kubernetes simulator watch-list and OpenAPI v3", .timeLimit(.minutes(5)))
struct KubeWatchOpenAPITests {
    static let identities = "/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities"

    static func createIdentity(_ sims: RunningSimulators, _ name: String) async throws -> JSON {
        let created = try await send("POST", "\(sims.kubeURL)\(identities)", body: KubeSimulatorTests.identityJSON(name))
        #expect(created.status == 201)
        return created.json
    }

    static func listResourceVersion(_ sims: RunningSimulators, _ path: String) async throws -> String {
        try #require(try await send("GET", "\(sims.kubeURL)\(path)").json[["metadata", "resourceVersion"]]?.string)
    }

    @Test("watch-list: every existing object as ADDED, then a BOOKMARK at the current resourceVersion marked initial-events-end, then live events")
    func watchList() async throws {
        try await withSimulators { sims in
            _ = try await Self.createIdentity(sims, "first")
            _ = try await Self.createIdentity(sims, "second")
            let current = try await Self.listResourceVersion(sims, Self.identities)
            let stream = try await WatchStream.open(
                "\(sims.kubeURL)\(Self.identities)?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
            #expect(stream.response.status == .ok)
            #expect(stream.response.headers.first(name: "content-type") == "application/json")
            let initial = try await stream.events { $0.last?["type"] == "BOOKMARK" }
            #expect(initial.dropLast().map { $0["type"] } == ["ADDED", "ADDED"])
            #expect(Set(initial.dropLast().compactMap { $0[["object", "metadata", "name"]]?.string }) == ["first", "second"])
            let bookmark = try #require(initial.last?["object"])
            #expect(bookmark["kind"] == "AzureIdentity")
            #expect(bookmark["apiVersion"] == "aadpodidentity.k8s.io/v1")
            #expect(bookmark[["metadata", "resourceVersion"]]?.string == current)
            #expect(bookmark[["metadata", "annotations"]] == ["k8s.io/initial-events-end": "true"])

            let third = try await Self.createIdentity(sims, "third")
            let patched = try await send("PATCH", "\(sims.kubeURL)\(Self.identities)/first", body: #"{"metadata":{"labels":{"team":"a"}}}"#,
                                         contentType: "application/merge-patch+json")
            #expect(patched.status == 200)
            let live = try await stream.events { events in events.filter { $0["type"] != "BOOKMARK" }.count >= 2 }
                .filter { $0["type"] != "BOOKMARK" }
            #expect(live.map { $0["type"] } == ["ADDED", "MODIFIED"])
            #expect(live.first?[["object", "metadata", "name"]] == "third")
            #expect(live.first?[["object", "metadata", "resourceVersion"]] == third[["metadata", "resourceVersion"]])
            #expect(live.last?[["object", "metadata", "labels", "team"]] == "a")
        }
    }

    @Test("watch and list options are validated as ValidateListOptions does: 422 Invalid on ListOptions with the real messages")
    func listOptionsValidation() async throws {
        try await withSimulators { sims in
            let pods = "\(sims.kubeURL)/api/v1/namespaces/default/pods"
            func invalid(_ query: String) async throws -> JSON {
                let answer = try await send("GET", "\(pods)?\(query)")
                #expect(answer.status == 422, "\(query)")
                #expect(answer.json["reason"] == "Invalid")
                #expect(answer.json["kind"] == "Status")
                #expect(answer.json[["details", "kind"]] == "ListOptions")
                #expect(answer.json[["details", "group"]] == "meta.k8s.io")
                return answer.json
            }
            let noMatch = try await invalid("watch=1&sendInitialEvents=true&allowWatchBookmarks=true")
            #expect(noMatch["message"] == #"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"#)
            #expect(noMatch[["details", "causes"]] == [[
                "reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ]])
            let exact = try await invalid("watch=1&sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true")
            #expect(exact["message"] == #"ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"]"#)
            #expect(exact[["details", "causes"]]?.array?.last?["reason"] == "FieldValueNotSupported")
            #expect(try await invalid("watch=1&resourceVersionMatch=NotOlderThan")["message"]
                == #"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"#)
            #expect(try await invalid("sendInitialEvents=true")["message"]
                == #"ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"#)
            #expect(try await invalid("resourceVersionMatch=NotOlderThan")["message"]
                == #"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"#)
            #expect(try await send("GET", "\(pods)?resourceVersion=0&resourceVersionMatch=NotOlderThan").status == 200)

            // The server does not require allowWatchBookmarks (validating it would break older
            // clients): the initial events come, without the bookmark.
            _ = try await send("POST", pods, body: KubeSimulatorTests.podJSON("lone"))
            let stream = try await WatchStream.open("\(pods)?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
            #expect(stream.response.status == .ok)
            let events = try await stream.events { _ in false }
            #expect(events.map { $0["type"] } == ["ADDED"])
        }
    }

    @Test("a watch of one object by fieldSelector metadata.name sees only it, and its DELETED (as kubectl wait --for=delete uses it)")
    func watchOneObjectUntilDeleted() async throws {
        try await withSimulators { sims in
            let pods = "\(sims.kubeURL)/api/v1/namespaces/default/pods"
            #expect(try await send("POST", pods, body: KubeSimulatorTests.podJSON("doomed")).status == 201)
            let stream = try await WatchStream.open(
                "\(pods)?watch=1&fieldSelector=metadata.name%3Ddoomed&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=20")
            let initial = try await stream.events { $0.last?["type"] == "BOOKMARK" }
            #expect(initial.map { $0["type"] } == ["ADDED", "BOOKMARK"])
            #expect(try await send("POST", pods, body: KubeSimulatorTests.podJSON("bystander")).status == 201)
            let deleted = try await send("DELETE", "\(pods)/doomed")
            #expect(deleted.status == 200)
            let events = try await stream.events { $0.last?["type"] == "DELETED" }.filter { $0["type"] != "BOOKMARK" }
            #expect(events.last?["type"] == "DELETED")
            #expect(events.allSatisfy { $0[["object", "metadata", "name"]] == "doomed" }, "the bystander is not selected")
            let gone = try #require(events.last?["object"])
            #expect(gone["kind"] == "Pod")
            #expect(gone[["metadata", "namespace"]] == "default")
            let deletionRV = try await Self.listResourceVersion(sims, "/api/v1/namespaces/default/pods")
            #expect(gone[["metadata", "resourceVersion"]]?.string == deletionRV,
                    "the deleted object carries the deletion's resourceVersion, not its last one")
        }
    }

    @Test("a watch from a resourceVersion sends what changed after it, not what the client has; timeoutSeconds ends the stream")
    func watchFromResourceVersion() async throws {
        try await withSimulators { sims in
            _ = try await Self.createIdentity(sims, "known")
            _ = try await Self.createIdentity(sims, "changed")
            let listed = try await Self.listResourceVersion(sims, Self.identities)
            _ = try await send("PATCH", "\(sims.kubeURL)\(Self.identities)/changed", body: #"{"metadata":{"labels":{"v":"2"}}}"#,
                               contentType: "application/merge-patch+json")
            _ = try await Self.createIdentity(sims, "new")
            let stream = try await WatchStream.open("\(sims.kubeURL)\(Self.identities)?watch=1&resourceVersion=\(listed)&timeoutSeconds=1")
            // The stream ends by itself after a second: reading it to its end returns.
            let events = try await stream.events { _ in false }
            #expect(Set(events.compactMap { $0[["object", "metadata", "name"]]?.string }) == ["changed", "new"])
            #expect(!events.contains { $0["type"] == "BOOKMARK" }, "no bookmarks unless allowed")

            // Without initial events and from "0": only what happens from now on.
            let fromNow = try await WatchStream.open("\(sims.kubeURL)\(Self.identities)?watch=1&sendInitialEvents=false&resourceVersion=0&timeoutSeconds=1")
            #expect(try await fromNow.events { _ in false }.isEmpty)
        }
    }

    @Test("a watch that allows bookmarks gets BOOKMARKs with the current resourceVersion while nothing changes")
    func periodicBookmarks() async throws {
        try await withSimulators { sims in
            _ = try await Self.createIdentity(sims, "steady")
            let current = try await Self.listResourceVersion(sims, Self.identities)
            let stream = try await WatchStream.open(
                "\(sims.kubeURL)\(Self.identities)?watch=1&resourceVersion=\(current)&allowWatchBookmarks=true&timeoutSeconds=20")
            let events = try await stream.events { $0.last?["type"] == "BOOKMARK" }
            #expect(events.count == 1)
            let bookmark = try #require(events.last?["object"])
            #expect(bookmark[["metadata", "resourceVersion"]]?.string == current)
            #expect(bookmark[["metadata", "annotations"]] == nil, "only the end of initial events is annotated")
            #expect(bookmark["kind"] == "AzureIdentity")
        }
    }

    @Test("a watch with as=Table sends one-row Tables, column definitions on the first event only (kubectl get -w)")
    func tableWatch() async throws {
        try await withSimulators { sims in
            let pods = "\(sims.kubeURL)/api/v1/namespaces/default/pods"
            _ = try await send("POST", pods, body: KubeSimulatorTests.podJSON("one"))
            _ = try await send("POST", pods, body: KubeSimulatorTests.podJSON("two"))
            let events = try await WatchStream.open("\(pods)?watch=1&timeoutSeconds=1",
                                                    accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json").events { _ in false }
            #expect(events.count == 2)
            #expect(events.allSatisfy { $0[["object", "kind"]] == "Table" && $0[["object", "rows"]]?.array?.count == 1 })
            #expect(events.first?[["object", "columnDefinitions"]]?.array?.first?["name"] == "Name")
            #expect(events.last?[["object", "columnDefinitions"]] == .null)
            #expect(events.last?[["object", "rows"]]?.array?.first?["cells"]?.array?.first == "two")
        }
    }

    /// The index: every served group version, with its document's URL.
    static func index(_ sims: RunningSimulators) async throws -> [String: String] {
        let answer = try await send("GET", "\(sims.kubeURL)/openapi/v3")
        #expect(answer.status == 200)
        var urls: [String: String] = [:]
        for (key, entry) in answer.json["paths"]?.object ?? [:] { urls[key] = entry["serverRelativeURL"]?.string }
        return urls
    }

    static func hash(_ url: String) -> String {
        String(url.split(separator: "=").last ?? "")
    }

    @Test("/openapi/v3 lists every served group version with a SHA-512 hash of its document that changes only when the document does")
    func openAPIIndex() async throws {
        try await withSimulators { sims in
            let urls = try await Self.index(sims)
            // Every group version discovery serves (kinds added to the simulator appear by themselves).
            var served: Set<String> = ["api/v1"]
            for group in try await send("GET", "\(sims.kubeURL)/apis").json["groups"]?.array ?? [] {
                for version in group["versions"]?.array ?? [] { served.insert("apis/\(version["groupVersion"]?.string ?? "")") }
            }
            #expect(Set(urls.keys) == served)
            #expect(served.isSuperset(of: ["api/v1", "apis/aadpodidentity.k8s.io/v1", "apis/authorization.k8s.io/v1"]))
            for (key, url) in urls {
                #expect(url.hasPrefix("/openapi/v3/\(key)?hash="))
                let hash = Self.hash(url)
                #expect(hash.count == 128 && hash.allSatisfy { $0.isNumber || ("A"..."F").contains($0) }, "upper-case hex: \(hash)")
                let document = try await send("GET", "\(sims.kubeURL)\(url)")
                #expect(document.status == 200)
                #expect(SHA512.hash(data: document.body).map { String(format: "%02X", $0) }.joined() == hash, "\(key)")
            }
            #expect(try await Self.index(sims) == urls, "same content, same hashes")

            // The schema-less CRD (preserveUnknownFields) changes the CRD document only.
            sims.kube.configure { $0.preserveUnknownFields = true }
            let schemaless = try await Self.index(sims)
            #expect(schemaless["apis/aadpodidentity.k8s.io/v1"] != urls["apis/aadpodidentity.k8s.io/v1"])
            #expect(schemaless.filter { $0.key != "apis/aadpodidentity.k8s.io/v1" } == urls.filter { $0.key != "apis/aadpodidentity.k8s.io/v1" })
            sims.kube.configure { $0.preserveUnknownFields = false }
            #expect(try await Self.index(sims) == urls)

            sims.kube.configure { $0.crdsServed = false }
            #expect(try await Self.index(sims)["apis/aadpodidentity.k8s.io/v1"] == nil)
            #expect(try await send("GET", "\(sims.kubeURL)\(urls["apis/aadpodidentity.k8s.io/v1"] ?? "")").status == 404)
        }
    }

    @Test("a CRD's document has its schema under the reversed-group name (io.k8s.aadpodidentity.v1.AzureIdentity) with the GVK extension, spec.resourceID and ObjectMeta by $ref")
    func customResourceDocument() async throws {
        try await withSimulators { sims in
            let url = try #require(try await Self.index(sims)["apis/aadpodidentity.k8s.io/v1"])
            let document = try await send("GET", "\(sims.kubeURL)\(url)").json
            #expect(document["openapi"] == "3.0.0")
            let schemas = try #require(document[["components", "schemas"]]?.object)
            let identity = try #require(schemas["io.k8s.aadpodidentity.v1.AzureIdentity"])
            #expect(identity["x-kubernetes-group-version-kind"] == [["group": "aadpodidentity.k8s.io", "kind": "AzureIdentity", "version": "v1"]])
            #expect(identity[["properties", "spec", "properties", "resourceID", "type"]] == "string")
            #expect(identity[["properties", "spec", "properties", "resourceID", "description"]]?.string?.isEmpty == false)
            #expect(identity[["properties", "metadata", "allOf"]] == [["$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]])
            #expect(schemas["io.k8s.aadpodidentity.v1.AzureIdentityList"]?["x-kubernetes-group-version-kind"]
                == [["group": "aadpodidentity.k8s.io", "kind": "AzureIdentityList", "version": "v1"]])
            #expect(Set(schemas.keys).isSuperset(of: [
                "io.k8s.aadpodidentity.v1.AzureIdentityBinding", "io.k8s.aadpodidentity.v1.AzureAssignedIdentity",
                "io.k8s.aadpodidentity.v1.AzurePodIdentityException",
            ]))
            // The embedded AzureIdentity of an assignment gets TypeMeta as required and ObjectMeta.
            let embedded = try #require(schemas["io.k8s.aadpodidentity.v1.AzureAssignedIdentity"]?[["properties", "spec", "properties", "azureIdentityRef"]])
            #expect(embedded["required"]?.array?.contains("apiVersion") == true)
            #expect(embedded[["properties", "metadata", "allOf"]] != nil)
            // kubectl explain finds the kind through the paths' GVK.
            let list = try #require(document[["paths", "/apis/aadpodidentity.k8s.io/v1/namespaces/{namespace}/azureidentities", "get"]])
            #expect(list["x-kubernetes-group-version-kind"] == ["group": "aadpodidentity.k8s.io", "kind": "AzureIdentity", "version": "v1"])
            #expect(list["x-kubernetes-action"] == "list")
            let patch = try #require(document[["paths", "/apis/aadpodidentity.k8s.io/v1/namespaces/{namespace}/azureidentities/{name}", "patch"]])
            #expect(patch["parameters"]?.array?.contains { $0["name"] == "fieldValidation" } == true)
            try Self.expectReferencesResolve(document)
        }
    }

    @Test("the core document has Pod with descriptions and $refs to ObjectMeta and PodSpec; headers as kube-openapi sends them; unknown group versions are 404")
    func coreDocument() async throws {
        try await withSimulators { sims in
            let url = try #require(try await Self.index(sims)["api/v1"])
            let answer = try await send("GET", "\(sims.kubeURL)\(url)")
            #expect(answer.header("Content-Type") == "application/json")
            #expect(answer.header("ETag") == "\"\(Self.hash(url))\"")
            #expect(answer.header("Cache-Control") == "public, immutable")
            let document = answer.json
            let schemas = try #require(document[["components", "schemas"]]?.object)
            let pod = try #require(schemas["io.k8s.api.core.v1.Pod"])
            #expect(pod["x-kubernetes-group-version-kind"] == [["group": "", "kind": "Pod", "version": "v1"]])
            #expect(pod["description"]?.string?.hasPrefix("Pod is a collection of containers") == true)
            #expect(pod[["properties", "metadata", "allOf"]] == [["$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]])
            #expect(pod[["properties", "spec", "allOf"]] == [["$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"]])
            #expect(pod[["properties", "kind", "type"]] == "string")
            let spec = try #require(schemas["io.k8s.api.core.v1.PodSpec"])
            #expect(spec["required"] == ["containers"])
            #expect(spec[["properties", "containers", "items", "$ref"]] == "#/components/schemas/io.k8s.api.core.v1.Container")
            #expect(spec[["properties", "containers", "x-kubernetes-list-map-keys"]] == ["name"])
            #expect(spec[["properties", "containers", "x-kubernetes-patch-merge-key"]] == "name")
            #expect(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == [
                "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.",
                "type": "string", "format": "date-time",
            ])
            #expect(schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]?["format"] == "int-or-string")
            #expect(document[["paths", "/api/v1/namespaces/{namespace}/pods/{name}", "get", "x-kubernetes-group-version-kind"]]
                == ["group": "", "kind": "Pod", "version": "v1"])
            #expect(document[["paths", "/api/v1/pods", "get", "operationId"]] == "listCoreV1PodForAllNamespaces")
            try Self.expectReferencesResolve(document)

            #expect(try await send("GET", "\(sims.kubeURL)/openapi/v3/apis/example.com/v1").status == 404)
            // A hash from an older index is redirected to the current document (kube-openapi answers 301).
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
            let stale = try await client.execute(HTTPClientRequest(url: "\(sims.kubeURL)/openapi/v3/api/v1?hash=ABC"), timeout: .seconds(10))
            try await client.shutdown()
            #expect(stale.status == .movedPermanently)
            #expect(stale.headers.first(name: "location") == url)
        }
    }

    /// Every `$ref` in a document names one of its component schemas.
    static func expectReferencesResolve(_ document: JSON) throws {
        let schemas = try #require(document[["components", "schemas"]]?.object)
        func walk(_ value: JSON) -> [String] {
            switch value {
            case .object(let members):
                return members.flatMap { key, member in key == "$ref" ? [member.string ?? ""] : walk(member) }
            case .array(let items): return items.flatMap(walk)
            default: return []
            }
        }
        let missing = Set(walk(document).map { String($0.dropFirst("#/components/schemas/".count)) }).filter { schemas[$0] == nil }
        #expect(missing.isEmpty, "dangling $refs: \(missing.sorted())")
    }
}
