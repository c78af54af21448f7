import Foundation
import Simulators
import Testing

@Suite("Kubernetes simulator", .timeLimit(.minutes(5)))
struct KubeSimulatorTests {
    static let group = "/apis/aadpodidentity.k8s.io/v1"
    static let subscription = "00000000-0000-0000-0000-000000000000"

    static func identityJSON(_ name: String, namespace: String = "aad-broker", resourceID: String? = nil, clientID: String = "c1") -> String {
        let id = resourceID ?? "/subscriptions/\(subscription)/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(name)"
        return #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"\#(name)","namespace":"\#(namespace)"},"spec":{"type":0,"resourceID":"\#(id)","clientID":"\#(clientID)"}}"#
    }

    static func bindingJSON(_ name: String, identity: String, selector: String, namespace: String = "aad-broker") -> String {
        #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"\#(name)","namespace":"\#(namespace)"},"spec":{"azureIdentity":"\#(identity)","selector":"\#(selector)"}}"#
    }

    static func podJSON(_ name: String, labels: [String: String] = [:]) -> String {
        let labelText = labels.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
        return #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","labels":{\#(labelText)}},"spec":{"containers":[{"name":"app","image":"nginx"}]}}"#
    }

    @Test("discovery lists the core kinds and the four aad-pod-identity kinds; unknown paths are plain-text 404s")
    func discovery() async throws {
        try await withSimulators { sims in
            #expect(try await send("GET", "\(sims.kubeURL)/version").json["major"] == "1")
            #expect(try await send("GET", "\(sims.kubeURL)/api").json["versions"] == ["v1"])
            let groups = try await send("GET", "\(sims.kubeURL)/apis").json["groups"]?.array?.compactMap { $0["name"]?.string } ?? []
            #expect(groups.contains("aadpodidentity.k8s.io"))
            let resources = try await send("GET", "\(sims.kubeURL)\(Self.group)").json["resources"]?.array?.compactMap { $0["name"]?.string } ?? []
            #expect(Set(resources) == ["azureidentities", "azureidentitybindings", "azureassignedidentities", "azurepodidentityexceptions"])
            let core = try await send("GET", "\(sims.kubeURL)/api/v1").json["resources"]?.array?.compactMap { $0["name"]?.string } ?? []
            #expect(Set(["pods", "namespaces"]).isSubset(of: Set(core)))

            let unknown = try await send("GET", "\(sims.kubeURL)/apis/example.com/v1/widgets")
            #expect(unknown.status == 404)
            #expect(unknown.text == "404 page not found\n")
            sims.kube.configure { $0.crdsServed = false }
            let gone = try await send("GET", "\(sims.kubeURL)\(Self.group)/azureidentities")
            #expect(gone.status == 404)
            #expect(gone.text == "404 page not found\n", "CRDs not served: the group's paths are plain-text 404s")
            #expect(!(try await send("GET", "\(sims.kubeURL)/apis").text.contains("aadpodidentity")))
        }
    }

    @Test("custom resource names are DNS-1123 subdomains: up to 253 characters, parts longer than 63 included, as MIC's assignment names are")
    func longNames() async throws {
        try await withSimulators { sims in
            // AzureIdentities: the simulated MIC removes assignments without a pod at once.
            let base = "\(sims.kubeURL)\(Self.group)/namespaces/default/azureidentities"
            for (name, status) in [(String(repeating: "a", count: 70), 201), (String(repeating: "b", count: 253), 201),
                                   (String(repeating: "c", count: 254), 422), ("with.dots." + String(repeating: "d", count: 80), 201)] {
                let body = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"\#(name)"},"spec":{"type":0,"resourceID":"/x","clientID":"y"}}"#
                let created = try await send("POST", base, body: body)
                #expect(created.status == status, "\(name.count): \(created.text)")
                if status == 201 {
                    let patched = try await send("PATCH", "\(base)/\(name)", body: #"{"spec":{"clientID":"z"}}"#, contentType: "application/merge-patch+json")
                    #expect(patched.status == 200, "\(name.count): \(patched.text)")
                }
            }
        }
    }

    @Test("a wrong token is 401; with requireToken a missing one is too")
    func authentication() async throws {
        try await withSimulators { sims in
            let wrong = try await send("GET", "\(sims.kubeURL)/api/v1/pods", token: "nope")
            #expect(wrong.status == 401)
            #expect(wrong.json["reason"] == "Unauthorized")
            #expect(try await send("GET", "\(sims.kubeURL)/api/v1/pods", token: nil).status == 200)
            sims.kube.configure { $0.requireToken = true }
            #expect(try await send("GET", "\(sims.kubeURL)/api/v1/pods", token: nil).status == 401)
            #expect(try await send("GET", "\(sims.kubeURL)/api/v1/pods").status == 200)
        }
    }

    @Test("create, get, AlreadyExists, NotFound, Invalid names, missing namespaces, namespace mismatch")
    func createAndErrors() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentities"
            let created = try await send("POST", url, body: Self.identityJSON("app-id"))
            #expect(created.status == 201)
            #expect(created.json[["metadata", "uid"]]?.string != nil)
            #expect(created.json[["metadata", "resourceVersion"]]?.string != nil)
            #expect(created.json[["metadata", "generation"]]?.int == 1)
            #expect(created.json[["metadata", "creationTimestamp"]]?.string?.hasSuffix("Z") == true)
            #expect(try await send("GET", "\(url)/app-id").json[["spec", "clientID"]] == "c1")

            let duplicate = try await send("POST", url, body: Self.identityJSON("app-id"))
            #expect(duplicate.status == 409)
            #expect(duplicate.json["reason"] == "AlreadyExists")
            #expect(duplicate.json["message"] == #"azureidentities.aadpodidentity.k8s.io "app-id" already exists"#)
            #expect(duplicate.json["details"] == ["name": "app-id", "group": "aadpodidentity.k8s.io", "kind": "azureidentities"])

            let missing = try await send("GET", "\(url)/nope")
            #expect(missing.status == 404)
            #expect(missing.json["reason"] == "NotFound")
            #expect(missing.json[["details", "kind"]] == "azureidentities")

            let bad = try await send("POST", url, body: Self.identityJSON("Bad_Name"))
            #expect(bad.status == 422)
            #expect(bad.json["reason"] == "Invalid")
            #expect(bad.json[["details", "causes"]]?.array?.first?["field"] == "metadata.name")

            let noNamespace = try await send("POST", "\(sims.kubeURL)\(Self.group)/namespaces/nonexistent/azureidentities",
                                             body: Self.identityJSON("x", namespace: "nonexistent"))
            #expect(noNamespace.status == 404)
            #expect(noNamespace.json["message"] == #"namespaces "nonexistent" not found"#)
            let mismatch = try await send("POST", url, body: Self.identityJSON("y", namespace: "default"))
            #expect(mismatch.status == 400)
            // A namespaced kind without a namespace is only listable.
            #expect(try await send("GET", "\(sims.kubeURL)\(Self.group)/azureidentities/app-id").status == 404)
        }
    }

    @Test("unknown and capitalised keys are pruned, unless the CRD is schema-less; wrong types are 422")
    func pruning() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentities"
            let legacy = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentity","metadata":{"name":"legacy"},"spec":{"type":0,"ResourceID":"/x","ClientID":"c","resourceId":"y"}}"#
            let pruned = try await send("POST", url, body: legacy)
            #expect(pruned.status == 201)
            #expect(pruned.json["spec"] == ["type": 0])
            sims.kube.configure { $0.preserveUnknownFields = true }
            let kept = try await send("POST", url, body: legacy.replacingOccurrences(of: "\"legacy\"", with: "\"legacy-2\""))
            #expect(kept.json[["spec", "ResourceID"]] == "/x")
            sims.kube.configure { $0.preserveUnknownFields = false }
            let wrongType = try await send("POST", url, body: #"{"metadata":{"name":"t"},"spec":{"type":"zero"}}"#)
            #expect(wrongType.status == 422)
            #expect(wrongType.json["message"]?.string?.contains("spec.type in body must be of type integer") == true)
        }
    }

    @Test("PUT needs the current resourceVersion on custom resources and bumps generation")
    func replace() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentitybindings"
            let created = try await send("POST", url, body: Self.bindingJSON("b", identity: "i", selector: "s"))
            let rv = try #require(created.json[["metadata", "resourceVersion"]]?.string)
            let noRV = try await send("PUT", "\(url)/b", body: Self.bindingJSON("b", identity: "i", selector: "t"))
            #expect(noRV.status == 422)
            #expect(noRV.json["message"]?.string?.contains("must be specified for an update") == true)
            var body = JSON.parse(Data(Self.bindingJSON("b", identity: "i", selector: "t").utf8))!
            body[["metadata", "resourceVersion"]] = .string(rv)
            let ok = try await send("PUT", "\(url)/b", body: String(decoding: body.data, as: UTF8.self))
            #expect(ok.status == 200)
            #expect(ok.json[["metadata", "generation"]]?.int == 2)
            #expect(ok.json[["spec", "selector"]] == "t")
            let stale = try await send("PUT", "\(url)/b", body: String(decoding: body.data, as: UTF8.self))
            #expect(stale.status == 409)
            #expect(stale.json["reason"] == "Conflict")
            #expect(try await send("PUT", "\(url)/other", body: String(decoding: body.data, as: UTF8.self)).status == 400)
        }
    }

    @Test("label selectors (=, ==, !=, in, notin, exists, !key) and field selectors; bad ones are 400")
    func selectors() async throws {
        try await withSimulators { sims in
            let pods = "\(sims.kubeURL)/api/v1/namespaces/default/pods"
            for (name, labels) in [("a", ["aadpodidbinding": "x", "tier": "web"]), ("b", ["aadpodidbinding": "y"]), ("c", ["tier": "db"])] {
                #expect(try await send("POST", pods, body: Self.podJSON(name, labels: labels)).status == 201)
            }
            func names(_ selector: String, field: String = "") async throws -> [String] {
                var components = URLComponents(string: "\(sims.kubeURL)/api/v1/namespaces/default/pods")!
                components.queryItems = [URLQueryItem(name: "labelSelector", value: selector)]
                    + (field.isEmpty ? [] : [URLQueryItem(name: "fieldSelector", value: field)])
                components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
                return try await send("GET", components.string!).json["items"]?.array?.compactMap { $0[["metadata", "name"]]?.string } ?? []
            }
            #expect(try await names("aadpodidbinding=x") == ["a"])
            #expect(try await names("aadpodidbinding==y") == ["b"])
            #expect(try await names("aadpodidbinding!=x") == ["b", "c"])
            #expect(try await names("aadpodidbinding in (x,y)") == ["a", "b"])
            #expect(try await names("tier notin (web)") == ["b", "c"])
            #expect(try await names("aadpodidbinding") == ["a", "b"])
            #expect(try await names("!aadpodidbinding") == ["c"])
            #expect(try await names("aadpodidbinding,tier=web") == ["a"])
            #expect(try await names("", field: "metadata.name=b") == ["b"])
            #expect(try await names("", field: "status.phase=Running").count == 3)
            let bad = try await send("GET", "\(pods)?labelSelector=a%20in%20x")
            #expect(bad.status == 400)
            #expect(bad.json["message"]?.string?.hasPrefix("unable to parse requirement") == true)
            let field = try await send("GET", "\(sims.kubeURL)\(Self.group)/azureidentities?fieldSelector=spec.type%3D0")
            #expect(field.status == 400)
            #expect(field.json["message"] == "field label not supported: spec.type")
        }
    }

    @Test("limit and continue page a list; a garbage token is 400, an expired one 410")
    func paging() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentities"
            for index in 0..<5 { _ = try await send("POST", url, body: Self.identityJSON("id-\(index)")) }
            var names: [String] = []
            var token = ""
            repeat {
                let page = try await send("GET", "\(sims.kubeURL)\(Self.group)/azureidentities?limit=2" + (token.isEmpty ? "" : "&continue=\(token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"))
                #expect(page.status == 200)
                #expect(page.json["kind"] == "AzureIdentityList")
                #expect(page.json["items"]?.array?.first?["kind"] == "AzureIdentity", "custom resource list items carry kind")
                names += page.json["items"]?.array?.compactMap { $0[["metadata", "name"]]?.string } ?? []
                token = page.json[["metadata", "continue"]]?.string ?? ""
                if !token.isEmpty { #expect(page.json[["metadata", "remainingItemCount"]]?.int != nil) }
            } while !token.isEmpty
            #expect(names == (0..<5).map { "id-\($0)" })
            let podList = try await send("GET", "\(sims.kubeURL)/api/v1/pods")
            #expect(podList.json["items"]?.array?.first?["kind"] == nil, "core list items omit kind")

            #expect(try await send("GET", "\(url)?continue=garbage").status == 400)
            let first = try await send("GET", "\(url)?limit=1")
            let continuation = try #require(first.json[["metadata", "continue"]]?.string)
            sims.kube.configure { $0.continueTTLSeconds = 0 }
            try await Task.sleep(for: .milliseconds(1100))
            let expired = try await send("GET", "\(url)?limit=1&continue=\(continuation.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")")
            #expect(expired.status == 410)
            #expect(expired.json["reason"] == "Expired")
        }
    }

    @Test("merge patch, JSON patch, strategic merge patch (pods only), and server-side apply with conflicts")
    func patches() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentitybindings"
            let created = try await send("POST", url, body: Self.bindingJSON("b", identity: "i", selector: "s"))
            let rv = try #require(created.json[["metadata", "resourceVersion"]]?.string)
            let merged = try await send("PATCH", "\(url)/b", body: #"{"spec":{"selector":"s2"}}"#, contentType: "application/merge-patch+json")
            #expect(merged.status == 200)
            #expect(merged.json[["spec", "selector"]] == "s2")
            #expect(merged.json[["spec", "azureIdentity"]] == "i")
            let stale = try await send("PATCH", "\(url)/b", body: #"{"metadata":{"resourceVersion":"\#(rv)"},"spec":{"selector":"s3"}}"#,
                                       contentType: "application/merge-patch+json")
            #expect(stale.status == 409)
            let strategic = try await send("PATCH", "\(url)/b", body: #"{"spec":{"selector":"s3"}}"#, contentType: "application/strategic-merge-patch+json")
            #expect(strategic.status == 415)
            let failedTest = try await send("PATCH", "\(url)/b", body: #"[{"op":"test","path":"/spec/selector","value":"nope"}]"#,
                                            contentType: "application/json-patch+json")
            #expect(failedTest.status == 422)
            #expect(failedTest.json["message"] == "the server rejected our request due to an error in our request")
            let jsonPatch = try await send("PATCH", "\(url)/b", body: #"[{"op":"replace","path":"/spec/selector","value":"s4"}]"#,
                                           contentType: "application/json-patch+json")
            #expect(jsonPatch.json[["spec", "selector"]] == "s4")

            // Strategic merge patch on a pod merges containers by name.
            let pods = "\(sims.kubeURL)/api/v1/namespaces/default/pods"
            _ = try await send("POST", pods, body: Self.podJSON("p"))
            let pod = try await send("PATCH", "\(pods)/p", body: #"{"metadata":{"labels":{"x":"1"}},"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}"#,
                                     contentType: "application/strategic-merge-patch+json")
            #expect(pod.status == 200)
            #expect(pod.json[["metadata", "labels", "x"]] == "1")
            #expect(pod.json[["spec", "containers"]]?.array?.count == 1)
            #expect(pod.json[["spec", "containers"]]?.array?.first?["image"] == "nginx:2")

            // Server-side apply.
            let apply = #"{"apiVersion":"aadpodidentity.k8s.io/v1","kind":"AzureIdentityBinding","metadata":{"name":"applied","namespace":"aad-broker"},"spec":{"azureIdentity":"i","selector":"mine"}}"#
            let noManager = try await send("PATCH", "\(url)/applied", body: apply, contentType: "application/apply-patch+yaml")
            #expect(noManager.status == 422)
            #expect(noManager.json["message"]?.string?.contains("fieldManager: Required value") == true)
            let first = try await send("PATCH", "\(url)/applied?fieldManager=podid", body: apply, contentType: "application/apply-patch+yaml")
            #expect(first.status == 201)
            #expect(try await send("PATCH", "\(url)/applied?fieldManager=podid", body: apply, contentType: "application/apply-patch+yaml").status == 200)
            let theirs = apply.replacingOccurrences(of: "\"mine\"", with: "\"theirs\"")
            let conflict = try await send("PATCH", "\(url)/applied?fieldManager=other", body: theirs, contentType: "application/apply-patch+yaml")
            #expect(conflict.status == 409)
            #expect(conflict.json["message"]?.string?.contains(#"conflict with "podid""#) == true)
            #expect(conflict.json[["details", "causes"]]?.array?.contains { $0["reason"] == "FieldManagerConflict" && $0["field"] == ".spec.selector" } == true)
            let forced = try await send("PATCH", "\(url)/applied?fieldManager=other&force=true", body: theirs, contentType: "application/apply-patch+yaml")
            #expect(forced.status == 200)
            #expect(forced.json[["spec", "selector"]] == "theirs")
            let yaml = "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentityBinding\nmetadata:\n  name: yaml\nspec:\n  azureIdentity: i\n  selector: from-yaml\n"
            let fromYAML = try await send("PATCH", "\(url)/yaml?fieldManager=podid", body: yaml, contentType: "application/apply-patch+yaml")
            #expect(fromYAML.status == 201)
            #expect(fromYAML.json[["spec", "selector"]] == "from-yaml")
        }
    }

    @Test("delete answers a Status for custom resources and the object for pods; finalizers hold deletion")
    func deletion() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)\(Self.group)/namespaces/aad-broker/azureidentities"
            _ = try await send("POST", url, body: Self.identityJSON("gone"))
            let deleted = try await send("DELETE", "\(url)/gone")
            #expect(deleted.status == 200)
            #expect(deleted.json["kind"] == "Status")
            #expect(deleted.json["status"] == "Success")
            #expect(try await send("DELETE", "\(url)/gone").status == 404)

            let held = #"{"metadata":{"name":"held","finalizers":["example.com/hold"]},"spec":{"type":0}}"#
            _ = try await send("POST", url, body: held)
            let marked = try await send("DELETE", "\(url)/held")
            #expect(marked.json[["metadata", "deletionTimestamp"]]?.string != nil)
            #expect(try await send("GET", "\(url)/held").status == 200)
            let released = try await send("PATCH", "\(url)/held", body: #"{"metadata":{"finalizers":null}}"#, contentType: "application/merge-patch+json")
            #expect(released.status == 200)
            #expect(try await send("GET", "\(url)/held").status == 404)

            let pods = "\(sims.kubeURL)/api/v1/namespaces/default/pods"
            _ = try await send("POST", pods, body: Self.podJSON("p"))
            let pod = try await send("DELETE", "\(pods)/p")
            #expect(pod.json["kind"] == "Pod")
        }
    }

    @Test("SelfSubjectAccessReview allows unless a fault switch denies the verb")
    func accessReview() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
            let review = #"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"group":"aadpodidentity.k8s.io","resource":"azureidentities","verb":"create"}}}"#
            let allowed = try await send("POST", url, body: review)
            #expect(allowed.status == 201)
            #expect(allowed.json[["status", "allowed"]] == true)
            sims.kube.configure { $0.deniedVerbs = ["azureidentities:create"] }
            #expect(try await send("POST", url, body: review).json[["status", "allowed"]] == false)
        }
    }

    @Test("fault rules inject plain-text 429s with Retry-After, 500s; the request log records operations")
    func faults() async throws {
        try await withSimulators { sims in
            sims.kube.configure { $0.faults = [SimFaultRule(operation: "pods.list", throttleRate: 1, retryAfterSeconds: 3)] }
            let throttled = try await send("GET", "\(sims.kubeURL)/api/v1/pods")
            #expect(throttled.status == 429)
            #expect(throttled.header("Retry-After") == "3")
            #expect(throttled.text.hasPrefix("Too many requests"))
            sims.kube.configure { $0.faults = [SimFaultRule(operation: "*", errorRate: 1)] }
            #expect(try await send("GET", "\(sims.kubeURL)/api/v1/pods").status == 500)
            let log = sims.kube.requestLog.all.map(\.operation)
            #expect(log.filter { $0 == "pods.list" }.count == 2)
        }
    }
}
