import Foundation
import Simulators
import Testing

/// Deployments, ReplicaSets, ConfigMaps and Secrets on the Kubernetes simulator, and the
/// controllers it plays (deployment, replica set, garbage collector), against what a real cluster
/// does: through the API, and through the real kubectl 1.20.
@Suite("Kubernetes simulator: workloads and their controllers", .timeLimit(.minutes(5)))
struct KubeControllerTests {
    static let alphabet = Set("bcdfghjklmnpqrstvwxz2456789")

    static func deploymentJSON(_ name: String, replicas: Int64 = 2, labels: [String: String] = ["app": "web"],
                               selector: [String: String]? = nil, strategy: JSON? = nil) -> String {
        var object: JSON = [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": .string(name)],
            "spec": [
                "replicas": .int(replicas),
                "selector": ["matchLabels": .map(selector ?? labels)],
                "template": [
                    "metadata": ["labels": .map(labels)],
                    "spec": ["containers": [["name": "app", "image": "nginx:1.25", "ports": [["containerPort": 80]]]]],
                ],
            ],
        ]
        if let strategy { object[["spec", "strategy"]] = strategy }
        return String(decoding: object.data, as: UTF8.self)
    }

    static func createNamespace(_ sims: RunningSimulators, _ name: String) async throws {
        #expect(try await send("POST", "\(sims.kubeURL)/api/v1/namespaces", body: #"{"metadata":{"name":"\#(name)"}}"#).status == 201)
    }

    static func deployments(_ sims: RunningSimulators, _ namespace: String) -> String {
        "\(sims.kubeURL)/apis/apps/v1/namespaces/\(namespace)/deployments"
    }

    static func items(_ sims: RunningSimulators, _ path: String) async throws -> [JSON] {
        try await send("GET", "\(sims.kubeURL)\(path)").json["items"]?.array ?? []
    }

    /// Polls `probe` until it returns a value (at most `timeout`); the controllers run in the
    /// background every 250 ms.
    static func eventually<T>(_ what: String, timeout: Duration = .seconds(20), _ probe: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSetupError("timed out waiting until \(what)")
    }

    /// The deployment once its rollout is complete, as `kubectl rollout status` decides it.
    static func rolledOut(_ sims: RunningSimulators, _ namespace: String, _ name: String, replicas: Int64) async throws -> JSON {
        try await eventually("deployment \(name) has rolled out \(replicas) replicas") {
            let deployment = try await send("GET", "\(deployments(sims, namespace))/\(name)").json
            let status = deployment["status"] ?? .object([:])
            guard (deployment[["metadata", "generation"]]?.int ?? 0) <= (status["observedGeneration"]?.int ?? 0),
                  status["updatedReplicas"]?.int ?? 0 == replicas, status["replicas"]?.int ?? 0 == replicas,
                  status["availableReplicas"]?.int ?? 0 == replicas,
                  status["conditions"]?.array?.contains(where: { $0["type"] == "Progressing" && $0["reason"] == "NewReplicaSetAvailable" }) == true
            else { return nil }
            return deployment
        }
    }

    @Test("discovery serves apps/v1 with the scale and status subresources, and config maps and secrets in v1")
    func discovery() async throws {
        try await withSimulators { sims in
            let groups = try await send("GET", "\(sims.kubeURL)/apis").json["groups"]?.array ?? []
            #expect(groups.contains { $0["name"] == "apps" && $0[["preferredVersion", "groupVersion"]] == "apps/v1" })
            #expect(try await send("GET", "\(sims.kubeURL)/apis/apps").json["kind"] == "APIGroup")
            let apps = try await send("GET", "\(sims.kubeURL)/apis/apps/v1").json["resources"]?.array ?? []
            let byName = Dictionary(apps.map { ($0["name"]?.string ?? "", $0) }) { a, _ in a }
            #expect(byName["deployments"]?["shortNames"] == ["deploy"])
            #expect(byName["deployments"]?["categories"] == ["all"])
            #expect(byName["replicasets"]?["shortNames"] == ["rs"])
            #expect(byName["deployments/scale"]?["group"] == "autoscaling")
            #expect(byName["deployments/scale"]?["version"] == "v1")
            #expect(byName["deployments/scale"]?["kind"] == "Scale")
            #expect(byName["replicasets/status"]?["kind"] == "ReplicaSet")
            let core = try await send("GET", "\(sims.kubeURL)/api/v1").json["resources"]?.array ?? []
            #expect(core.contains { $0["name"] == "configmaps" && $0["shortNames"] == ["cm"] })
            #expect(core.contains { $0["name"] == "secrets" && $0["kind"] == "Secret" })
        }
    }

    @Test("a deployment gets a ReplicaSet <name>-<hash> and pods with the template's labels, owner references and a complete status")
    func rollout() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            let created = try await send("POST", Self.deployments(sims, "shop"),
                                         body: Self.deploymentJSON("web", replicas: 3, labels: ["app": "web", "aadpodidbinding": "web-id"],
                                                                   selector: ["app": "web"]))
            #expect(created.status == 201, "\(created.text)")
            let object = created.json
            // The defaults kube-apiserver fills in.
            #expect(object[["metadata", "generation"]] == 1)
            #expect(object["status"] == .object([:]))
            #expect(object[["spec", "strategy"]] == ["type": "RollingUpdate", "rollingUpdate": ["maxSurge": "25%", "maxUnavailable": "25%"]])
            #expect(object[["spec", "revisionHistoryLimit"]] == 10)
            #expect(object[["spec", "progressDeadlineSeconds"]] == 600)
            #expect(object[["spec", "template", "metadata", "creationTimestamp"]] == .null)
            #expect(object[["spec", "template", "spec", "dnsPolicy"]] == "ClusterFirst")
            #expect(object[["spec", "template", "spec", "restartPolicy"]] == "Always")
            #expect(object[["spec", "template", "spec", "schedulerName"]] == "default-scheduler")
            #expect(object[["spec", "template", "spec", "terminationGracePeriodSeconds"]] == 30)
            let container = object[["spec", "template", "spec", "containers"]]?.array?.first
            #expect(container?["imagePullPolicy"] == "IfNotPresent")
            #expect(container?["terminationMessagePath"] == "/dev/termination-log")
            #expect(container?["resources"] == .object([:]))
            #expect(container?["ports"] == [["containerPort": 80, "protocol": "TCP"]])

            let deployment = try await Self.rolledOut(sims, "shop", "web", replicas: 3)
            let uid = try #require(deployment[["metadata", "uid"]]?.string)
            #expect(deployment[["metadata", "generation"]] == 1, "the controller's writes go to the status: the generation stays")
            #expect(deployment[["status", "observedGeneration"]] == 1)
            #expect(deployment[["status", "readyReplicas"]] == 3)
            #expect(deployment[["status", "unavailableReplicas"]] == nil)
            #expect(deployment[["metadata", "annotations", "deployment.kubernetes.io/revision"]] == "1")
            let conditions = deployment[["status", "conditions"]]?.array ?? []
            #expect(conditions.map { $0["type"]?.string ?? "" } == ["Available", "Progressing"])
            #expect(conditions.first?["reason"] == "MinimumReplicasAvailable")
            #expect(conditions.first?["message"] == "Deployment has minimum availability.")

            let replicaSets = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
            #expect(replicaSets.count == 1)
            let replicaSet = try #require(replicaSets.first)
            let rsName = try #require(replicaSet[["metadata", "name"]]?.string)
            let hash = try #require(replicaSet[["metadata", "labels", "pod-template-hash"]]?.string)
            #expect(rsName == "web-\(hash)")
            #expect(!hash.isEmpty && hash.allSatisfy { Self.alphabet.contains($0) })
            #expect(conditions.last?["message"] == .string("ReplicaSet \"\(rsName)\" has successfully progressed."))
            #expect(replicaSet[["spec", "selector"]] == ["matchLabels": ["app": "web", "pod-template-hash": .string(hash)]])
            #expect(replicaSet[["spec", "replicas"]] == 3)
            #expect(replicaSet[["metadata", "annotations"]] == [
                "deployment.kubernetes.io/revision": "1", "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
            ])
            #expect(replicaSet[["metadata", "ownerReferences"]] == [[
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": .string(uid), "controller": true, "blockOwnerDeletion": true,
            ]])
            #expect(replicaSet["status"] == ["replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 1])

            let pods = try await Self.items(sims, "/api/v1/namespaces/shop/pods")
            #expect(pods.count == 3)
            for pod in pods {
                let name = pod[["metadata", "name"]]?.string ?? ""
                #expect(name.hasPrefix("\(rsName)-") && name.count == rsName.count + 6)
                #expect(name.suffix(5).allSatisfy { Self.alphabet.contains($0) })
                #expect(pod[["metadata", "generateName"]] == .string("\(rsName)-"))
                #expect(pod[["metadata", "labels"]] == ["app": "web", "aadpodidbinding": "web-id", "pod-template-hash": .string(hash)])
                #expect(pod[["metadata", "ownerReferences"]] == [[
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string(rsName), "uid": replicaSet[["metadata", "uid"]] ?? "",
                    "controller": true, "blockOwnerDeletion": true,
                ]])
                #expect(pod[["status", "phase"]] == "Running")
                #expect(pod[["spec", "containers"]]?.array?.first?["image"] == "nginx:1.25")
            }
            let table = try await send("GET", "\(Self.deployments(sims, "shop"))/web",
                                       headers: ["Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"]).json
            #expect(table["columnDefinitions"]?.array?.map { $0["name"]?.string ?? "" }
                == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"])
            #expect(table["rows"]?.array?.first?["cells"]?.array?.prefix(4).map { $0 } == ["web", "3/3", 3, 3])
            let events = try await Self.items(sims, "/api/v1/namespaces/shop/events")
            #expect(events.contains { $0["reason"] == "ScalingReplicaSet" && $0["message"] == .string("Scaled up replica set \(rsName) to 3") })
            #expect(events.filter { $0["reason"] == "SuccessfulCreate" }.count == 3)
        }
    }

    @Test("a selector that does not match the template's labels, or none at all, is 422 with kube-apiserver's causes")
    func selectorValidation() async throws {
        try await withSimulators { sims in
            let mismatch = try await send("POST", Self.deployments(sims, "default"),
                                          body: Self.deploymentJSON("bad", labels: ["app": "web"], selector: ["app": "api"]))
            #expect(mismatch.status == 422)
            #expect(mismatch.json["reason"] == "Invalid")
            #expect(mismatch.json["message"]
                == #"Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#)
            #expect(mismatch.json[["details", "causes"]] == [[
                "reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                "message": #"Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#,
            ]])
            var noSelector = JSON.parse(Data(Self.deploymentJSON("bad").utf8))!
            noSelector[["spec", "selector"]] = nil
            let missing = try await send("POST", Self.deployments(sims, "default"), body: String(decoding: noSelector.data, as: UTF8.self))
            #expect(missing.status == 422)
            #expect(missing.json["message"]
                == #"Deployment.apps "bad" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`]"#)
            #expect(missing.json[["details", "causes"]]?.array?.first?["reason"] == "FieldValueRequired")
            let replicaSet = #"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rs"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"c"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#
            let invalidRS = try await send("POST", "\(sims.kubeURL)/apis/apps/v1/namespaces/default/replicasets", body: replicaSet)
            #expect(invalidRS.status == 422)
            #expect(invalidRS.json["message"]?.string?.hasPrefix(#"ReplicaSet.apps "rs" is invalid: spec.template.metadata.labels"#) == true)
            let negative = try await send("POST", Self.deployments(sims, "default"), body: Self.deploymentJSON("neg", replicas: -1))
            #expect(negative.json["message"] == #"Deployment.apps "neg" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#)

            // The selector is immutable in apps/v1.
            #expect(try await send("POST", Self.deployments(sims, "default"), body: Self.deploymentJSON("web")).status == 201)
            let changed = try await send("PATCH", "\(Self.deployments(sims, "default"))/web",
                                         body: #"{"spec":{"selector":{"matchLabels":{"app":"web","tier":"x"}},"template":{"metadata":{"labels":{"tier":"x"}}}}}"#,
                                         contentType: "application/strategic-merge-patch+json")
            #expect(changed.status == 422)
            #expect(changed.json["message"]?.string?.contains(#"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#) == true)
        }
    }

    @Test("a change of the template's labels rolls out a new ReplicaSet (revision 2), scales the old one to 0; rolling back reuses it as revision 3")
    func templateChange() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            #expect(try await send("POST", Self.deployments(sims, "shop"), body: Self.deploymentJSON("web", replicas: 4)).status == 201)
            _ = try await Self.rolledOut(sims, "shop", "web", replicas: 4)
            let first = try #require(try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets").first?[["metadata", "name"]]?.string)
            let patched = try await send("PATCH", "\(Self.deployments(sims, "shop"))/web",
                                         body: #"{"spec":{"template":{"metadata":{"labels":{"version":"v2"}}}}}"#,
                                         contentType: "application/strategic-merge-patch+json")
            #expect(patched.status == 200)
            #expect(patched.json[["metadata", "generation"]] == 2)
            let deployment = try await Self.rolledOut(sims, "shop", "web", replicas: 4)
            #expect(deployment[["status", "observedGeneration"]] == 2)
            #expect(deployment[["metadata", "annotations", "deployment.kubernetes.io/revision"]] == "2")
            let replicaSets = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
            #expect(replicaSets.count == 2)
            let old = try #require(replicaSets.first { $0[["metadata", "name"]]?.string == first })
            let new = try #require(replicaSets.first { $0[["metadata", "name"]]?.string != first })
            #expect(old[["spec", "replicas"]] == 0)
            #expect(old[["status", "replicas"]] == 0)
            #expect(old[["metadata", "annotations", "deployment.kubernetes.io/revision"]] == "1")
            #expect(new[["spec", "replicas"]] == 4)
            #expect(new[["metadata", "annotations", "deployment.kubernetes.io/revision"]] == "2")
            #expect(new[["spec", "template", "metadata", "labels", "version"]] == "v2")
            let pods = try await Self.eventually("only the new pods are left") { () -> [JSON]? in
                let pods = try await Self.items(sims, "/api/v1/namespaces/shop/pods")
                return pods.count == 4 ? pods : nil
            }
            #expect(pods.allSatisfy { $0[["metadata", "labels", "version"]] == "v2" })
            #expect(pods.allSatisfy { $0[["metadata", "ownerReferences"]]?.array?.first?["name"] == new[["metadata", "name"]] })
            let events = try await Self.items(sims, "/api/v1/namespaces/shop/events")
            #expect(events.contains { $0["message"] == .string("Scaled down replica set \(first) to 0") })

            // Back to the first template: its ReplicaSet comes back as revision 3.
            let reverted = try await send("PATCH", "\(Self.deployments(sims, "shop"))/web",
                                          body: #"[{"op":"remove","path":"/spec/template/metadata/labels/version"}]"#,
                                          contentType: "application/json-patch+json")
            #expect(reverted.status == 200)
            let back = try await Self.rolledOut(sims, "shop", "web", replicas: 4)
            #expect(back[["metadata", "annotations", "deployment.kubernetes.io/revision"]] == "3")
            let again = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
            #expect(again.count == 2)
            let reused = try #require(again.first { $0[["metadata", "name"]]?.string == first })
            #expect(reused[["metadata", "annotations", "deployment.kubernetes.io/revision"]] == "3")
            #expect(reused[["metadata", "annotations", "deployment.kubernetes.io/revision-history"]] == "1")
            #expect(reused[["spec", "replicas"]] == 4)
        }
    }

    @Test("the scale subresource reads and writes spec.replicas as an autoscaling/v1 Scale; the status subresource leaves the spec alone")
    func scale() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            #expect(try await send("POST", Self.deployments(sims, "shop"), body: Self.deploymentJSON("web", replicas: 2)).status == 201)
            _ = try await Self.rolledOut(sims, "shop", "web", replicas: 2)
            let url = "\(Self.deployments(sims, "shop"))/web/scale"
            let scale = try await send("GET", url)
            #expect(scale.status == 200)
            #expect(scale.json["kind"] == "Scale")
            #expect(scale.json["apiVersion"] == "autoscaling/v1")
            #expect(scale.json["spec"] == ["replicas": 2])
            #expect(scale.json["status"] == ["replicas": 2, "selector": "app=web"])
            let stale = try #require(scale.json[["metadata", "resourceVersion"]]?.string)

            let patched = try await send("PATCH", url, body: #"{"spec":{"replicas":5}}"#, contentType: "application/merge-patch+json")
            #expect(patched.status == 200)
            #expect(patched.json[["spec", "replicas"]] == 5)
            let deployment = try await Self.rolledOut(sims, "shop", "web", replicas: 5)
            #expect(deployment[["spec", "replicas"]] == 5)
            #expect(deployment[["metadata", "generation"]] == 2)
            #expect(try await Self.items(sims, "/api/v1/namespaces/shop/pods").count == 5)

            var body = scale.json
            body[["spec", "replicas"]] = 1
            let conflict = try await send("PUT", url, body: String(decoding: body.data, as: UTF8.self))
            #expect(conflict.status == 409)
            #expect(conflict.json["reason"] == "Conflict")
            #expect(stale != deployment[["metadata", "resourceVersion"]]?.string)
            body[["metadata", "resourceVersion"]] = nil
            body[["spec", "replicas"]] = -1
            let negative = try await send("PUT", url, body: String(decoding: body.data, as: UTF8.self))
            #expect(negative.status == 422)
            #expect(negative.json["message"] == #"Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#)
            body[["spec", "replicas"]] = 1
            #expect(try await send("PUT", url, body: String(decoding: body.data, as: UTF8.self)).json[["spec", "replicas"]] == 1)
            _ = try await Self.eventually("one pod is left") {
                try await Self.items(sims, "/api/v1/namespaces/shop/pods").count == 1 ? true : nil
            }
            #expect(try await send("GET", "\(Self.deployments(sims, "shop"))/missing/scale").status == 404)

            let rsName = try #require(try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets").first?[["metadata", "name"]]?.string)
            let rsScale = try await send("GET", "\(sims.kubeURL)/apis/apps/v1/namespaces/shop/replicasets/\(rsName)/scale")
            #expect(rsScale.json[["spec", "replicas"]] == 1)
            #expect(rsScale.json[["status", "selector"]]?.string?.hasPrefix("app=web,pod-template-hash=") == true)

            // A status write keeps the spec; a spec write keeps the status.
            let status = try await send("PATCH", "\(Self.deployments(sims, "shop"))/web/status",
                                        body: #"{"spec":{"replicas":9},"status":{"observedGeneration":1}}"#, contentType: "application/merge-patch+json")
            #expect(status.status == 200)
            #expect(status.json[["spec", "replicas"]] == 1)
            #expect(status.json[["status", "observedGeneration"]] == 1)
            let spec = try await send("PATCH", "\(Self.deployments(sims, "shop"))/web",
                                      body: #"{"status":{"replicas":42}}"#, contentType: "application/merge-patch+json")
            #expect(spec.json[["status", "replicas"]] != 42)
        }
    }

    @Test("deleting a deployment in the background removes its ReplicaSets and their pods; in the foreground it waits for them")
    func cascadingDelete() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            for name in ["bg", "fg"] {
                #expect(try await send("POST", Self.deployments(sims, "shop"),
                                       body: Self.deploymentJSON(name, replicas: 2, labels: ["app": name])).status == 201)
                _ = try await Self.rolledOut(sims, "shop", name, replicas: 2)
            }
            let deleted = try await send("DELETE", "\(Self.deployments(sims, "shop"))/bg", body: #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#)
            #expect(deleted.status == 200)
            #expect(deleted.json["kind"] == "Status")
            #expect(deleted.json["status"] == "Success")
            #expect(deleted.json[["details", "kind"]] == "deployments")
            #expect(deleted.json[["details", "group"]] == "apps")
            #expect(try await send("GET", "\(Self.deployments(sims, "shop"))/bg").status == 404)
            _ = try await Self.eventually("the ReplicaSet and pods of bg are gone") { () -> Bool? in
                let replicaSets = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets?labelSelector=app%3Dbg")
                let pods = try await Self.items(sims, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dbg")
                return replicaSets.isEmpty && pods.isEmpty ? true : nil
            }

            let foreground = try await send("DELETE", "\(Self.deployments(sims, "shop"))/fg", body: #"{"propagationPolicy":"Foreground"}"#)
            #expect(foreground.status == 200)
            #expect(foreground.json["kind"] == "Deployment")
            #expect(foreground.json[["metadata", "finalizers"]] == ["foregroundDeletion"])
            #expect(foreground.json[["metadata", "deletionTimestamp"]]?.string != nil)
            _ = try await Self.eventually("fg and everything it owned are gone") { () -> Bool? in
                let gone = try await send("GET", "\(Self.deployments(sims, "shop"))/fg").status == 404
                let pods = try await Self.items(sims, "/api/v1/namespaces/shop/pods")
                let replicaSets = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
                return gone && pods.isEmpty && replicaSets.isEmpty ? true : nil
            }
            let bad = try await send("DELETE", "\(Self.deployments(sims, "shop"))/missing", body: #"{"propagationPolicy":"Sometimes"}"#)
            #expect(bad.status == 422)
        }
    }

    @Test("deleting with Orphan keeps the ReplicaSets (without owner references) and their pods; a new deployment adopts them")
    func orphanDelete() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            #expect(try await send("POST", Self.deployments(sims, "shop"), body: Self.deploymentJSON("web", replicas: 2)).status == 201)
            _ = try await Self.rolledOut(sims, "shop", "web", replicas: 2)
            let podNames = Set(try await Self.items(sims, "/api/v1/namespaces/shop/pods").compactMap { $0[["metadata", "name"]]?.string })
            let orphaned = try await send("DELETE", "\(Self.deployments(sims, "shop"))/web", body: #"{"propagationPolicy":"Orphan"}"#)
            #expect(orphaned.status == 200)
            #expect(orphaned.json[["metadata", "finalizers"]] == ["orphan"])
            _ = try await Self.eventually("the deployment is gone") {
                try await send("GET", "\(Self.deployments(sims, "shop"))/web").status == 404 ? true : nil
            }
            let replicaSets = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
            #expect(replicaSets.count == 1)
            #expect(replicaSets.first?[["metadata", "ownerReferences"]] == nil)
            try await Task.sleep(for: .milliseconds(600))
            let pods = try await Self.items(sims, "/api/v1/namespaces/shop/pods")
            #expect(Set(pods.compactMap { $0[["metadata", "name"]]?.string }) == podNames, "the pods stay, still the ReplicaSet's")
            #expect(pods.allSatisfy { $0[["metadata", "ownerReferences"]]?.array?.first?["kind"] == "ReplicaSet" })

            let again = try await send("POST", Self.deployments(sims, "shop"), body: Self.deploymentJSON("web", replicas: 2))
            let uid = try #require(again.json[["metadata", "uid"]]?.string)
            _ = try await Self.rolledOut(sims, "shop", "web", replicas: 2)
            let adopted = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
            #expect(adopted.count == 1, "the same template hashes to the same ReplicaSet, which is adopted")
            #expect(adopted.first?[["metadata", "ownerReferences"]]?.array?.first?["uid"] == .string(uid))
            #expect(Set(try await Self.items(sims, "/api/v1/namespaces/shop/pods").compactMap { $0[["metadata", "name"]]?.string }) == podNames)
        }
    }

    @Test("a deleted pod of a ReplicaSet is replaced; a pod relabelled out of the selector is released and replaced")
    func podReplacement() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            #expect(try await send("POST", Self.deployments(sims, "shop"), body: Self.deploymentJSON("web", replicas: 2)).status == 201)
            _ = try await Self.rolledOut(sims, "shop", "web", replicas: 2)
            let before = try await Self.items(sims, "/api/v1/namespaces/shop/pods").compactMap { $0[["metadata", "name"]]?.string }
            let victim = try #require(before.first)
            #expect(try await send("DELETE", "\(sims.kubeURL)/api/v1/namespaces/shop/pods/\(victim)").status == 200)
            let after = try await Self.eventually("a replacement pod exists") { () -> [String]? in
                let names = try await Self.items(sims, "/api/v1/namespaces/shop/pods").compactMap { $0[["metadata", "name"]]?.string }
                return names.count == 2 && !names.contains(victim) ? names : nil
            }
            #expect(Set(after).contains(before[1]))

            let relabelled = try #require(after.first)
            let patched = try await send("PATCH", "\(sims.kubeURL)/api/v1/namespaces/shop/pods/\(relabelled)",
                                         body: #"{"metadata":{"labels":{"app":"debug"}}}"#, contentType: "application/merge-patch+json")
            #expect(patched.status == 200)
            let released = try await Self.eventually("the relabelled pod is released and replaced") { () -> JSON? in
                let pod = try await send("GET", "\(sims.kubeURL)/api/v1/namespaces/shop/pods/\(relabelled)").json
                let web = try await Self.items(sims, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb")
                return pod[["metadata", "ownerReferences"]] == nil && web.count == 2 ? pod : nil
            }
            #expect(released[["metadata", "labels", "app"]] == "debug")
        }
    }

    @Test("config maps and secrets: CRUD, stringData merged into data as base64, bad base64 and non-string data refused, immutable ones stay")
    func configMapsAndSecrets() async throws {
        try await withSimulators { sims in
            let configMaps = "\(sims.kubeURL)/api/v1/namespaces/default/configmaps"
            let created = try await send("POST", configMaps, body: #"{"metadata":{"name":"settings"},"data":{"mode":"fast"},"binaryData":{"blob":"AAEC"}}"#)
            #expect(created.status == 201)
            #expect(created.json["kind"] == "ConfigMap")
            #expect(created.json[["metadata", "generation"]] == nil, "config maps have no generation")
            #expect(try await send("GET", "\(configMaps)/settings").json[["data", "mode"]] == "fast")
            let updated = try await send("PATCH", "\(configMaps)/settings", body: #"{"data":{"mode":"safe"}}"#, contentType: "application/merge-patch+json")
            #expect(updated.json[["data", "mode"]] == "safe")
            let number = try await send("POST", configMaps, body: #"{"metadata":{"name":"n"},"data":{"port":8080}}"#)
            #expect(number.status == 400)
            #expect(number.json["message"] == #"ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"#)
            let badKey = try await send("POST", configMaps, body: #"{"metadata":{"name":"k"},"data":{"a b":"c"}}"#)
            #expect(badKey.status == 422)
            #expect(badKey.json[["details", "causes"]]?.array?.first?["field"] == "data[a b]")
            let table = try await send("GET", configMaps, headers: ["Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"]).json
            #expect(table["columnDefinitions"]?.array?.map { $0["name"]?.string ?? "" } == ["Name", "Data", "Age"])
            #expect(table["rows"]?.array?.first?["cells"]?.array?[1] == 2)

            _ = try await send("POST", configMaps, body: #"{"metadata":{"name":"frozen"},"data":{"a":"1"},"immutable":true}"#)
            let frozen = try await send("PATCH", "\(configMaps)/frozen", body: #"{"data":{"a":"2"}}"#, contentType: "application/merge-patch+json")
            #expect(frozen.status == 422)
            #expect(frozen.json["message"] == "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set")
            #expect(try await send("DELETE", "\(configMaps)/frozen").json["status"] == "Success")
            #expect(try await send("GET", "\(configMaps)/frozen").status == 404)

            let secrets = "\(sims.kubeURL)/api/v1/namespaces/default/secrets"
            let secret = try await send("POST", secrets, body: #"{"metadata":{"name":"db"},"data":{"user":"YWRtaW4="},"stringData":{"password":"s3cret","user":"root"}}"#)
            #expect(secret.status == 201)
            #expect(secret.json["type"] == "Opaque")
            #expect(secret.json["stringData"] == nil)
            #expect(secret.json["data"] == ["user": "cm9vdA==", "password": "czNjcmV0"], "stringData wins over data and is stored as base64")
            let merged = try await send("PATCH", "\(secrets)/db", body: #"{"stringData":{"host":"db.local"}}"#, contentType: "application/merge-patch+json")
            #expect(merged.json[["data", "host"]] == "ZGIubG9jYWw=")
            #expect(merged.json[["data", "password"]] == "czNjcmV0")
            let badBase64 = try await send("POST", secrets, body: #"{"metadata":{"name":"bad"},"data":{"key":"not base64!"}}"#)
            #expect(badBase64.status == 400)
            #expect(badBase64.json["message"] == #"Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3"#)
            let unpadded = try await send("POST", secrets, body: #"{"metadata":{"name":"bad"},"data":{"key":"YWRtaW4"}}"#)
            #expect(unpadded.json["message"] == #"Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 4"#)
            let tls = try await send("POST", secrets, body: #"{"metadata":{"name":"cert"},"type":"kubernetes.io/tls","data":{"tls.crt":"YQ=="}}"#)
            #expect(tls.status == 422)
            #expect(tls.json["message"] == #"Secret "cert" is invalid: data[tls.key]: Required value"#)
            let retyped = try await send("PATCH", "\(secrets)/db", body: #"{"type":"kubernetes.io/basic-auth"}"#, contentType: "application/merge-patch+json")
            #expect(retyped.status == 422)
            #expect(retyped.json["message"] == #"Secret "db" is invalid: type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#)
            let secretTable = try await send("GET", secrets, headers: ["Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"]).json
            #expect(secretTable["columnDefinitions"]?.array?.map { $0["name"]?.string ?? "" } == ["Name", "Type", "Data", "Age"])
            #expect(secretTable["rows"]?.array?.first?["cells"]?.array?.dropFirst().prefix(2).map { $0 } == ["Opaque", 3])
            #expect(try await send("DELETE", "\(secrets)/db").status == 200)
            #expect(try await send("GET", "\(secrets)/db").status == 404)
        }
    }

    @Test("deleting a namespace removes its deployments, ReplicaSets, pods, config maps and secrets")
    func namespaceDeletion() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "doomed")
            #expect(try await send("POST", Self.deployments(sims, "doomed"), body: Self.deploymentJSON("web", replicas: 2)).status == 201)
            #expect(try await send("POST", "\(sims.kubeURL)/api/v1/namespaces/doomed/configmaps", body: #"{"metadata":{"name":"c"}}"#).status == 201)
            #expect(try await send("POST", "\(sims.kubeURL)/api/v1/namespaces/doomed/secrets", body: #"{"metadata":{"name":"s"}}"#).status == 201)
            _ = try await Self.rolledOut(sims, "doomed", "web", replicas: 2)
            #expect(try await send("DELETE", "\(sims.kubeURL)/api/v1/namespaces/doomed").status == 200)
            _ = try await Self.eventually("the namespace and its contents are gone") { () -> Bool? in
                guard try await send("GET", "\(sims.kubeURL)/api/v1/namespaces/doomed").status == 404 else { return nil }
                for path in ["/apis/apps/v1/deployments", "/apis/apps/v1/replicasets", "/api/v1/pods", "/api/v1/configmaps", "/api/v1/secrets"] {
                    let left = try await Self.items(sims, path).filter { $0[["metadata", "namespace"]] == "doomed" }
                    if !left.isEmpty { return nil }
                }
                return true
            }
            // Nothing comes back once the controllers have had another look.
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await Self.items(sims, "/api/v1/pods").filter { $0[["metadata", "namespace"]] == "doomed" }.isEmpty)
        }
    }

    @Test("the simulated MIC assigns identities to a deployment's pods through the template's aadpodidbinding label")
    func micSeesControllerPods() async throws {
        try await withSimulators { sims in
            sims.kube.configure { $0.assignDelayMs = 100 }
            try await MICSimulatorTests.bind(sims, identity: "orders-api", selector: "orders-api")
            try await Self.createNamespace(sims, "orders")
            #expect(try await send("POST", Self.deployments(sims, "orders"),
                                   body: Self.deploymentJSON("api", replicas: 2, labels: ["app": "api", "aadpodidbinding": "orders-api"],
                                                             selector: ["app": "api"])).status == 201)
            _ = try await Self.rolledOut(sims, "orders", "api", replicas: 2)
            let pods = try await Self.items(sims, "/api/v1/namespaces/orders/pods").compactMap { $0[["metadata", "name"]]?.string }
            #expect(pods.count == 2)
            let assigned = try await Self.eventually("both pods' identities are Assigned") { () -> [String: String]? in
                let assignments = try await MICSimulatorTests.assignments(sims)
                return assignments.values.filter { $0 == "Assigned" }.count == 2 ? assignments : nil
            }
            #expect(Set(assigned.keys) == Set(pods.map { "default/\($0)-orders-orders-api" }))
        }
    }

    @Test("Recreate scales the old ReplicaSet to 0 before the new one comes up")
    func recreate() async throws {
        try await withSimulators { sims in
            try await Self.createNamespace(sims, "shop")
            #expect(try await send("POST", Self.deployments(sims, "shop"),
                                   body: Self.deploymentJSON("web", replicas: 2, strategy: ["type": "Recreate"])).status == 201)
            let created = try await Self.rolledOut(sims, "shop", "web", replicas: 2)
            #expect(created[["spec", "strategy"]] == ["type": "Recreate"])
            _ = try await send("PATCH", "\(Self.deployments(sims, "shop"))/web",
                               body: #"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}}}"#,
                               contentType: "application/strategic-merge-patch+json")
            _ = try await Self.rolledOut(sims, "shop", "web", replicas: 2)
            let replicaSets = try await Self.items(sims, "/apis/apps/v1/namespaces/shop/replicasets")
            #expect(replicaSets.map { $0[["spec", "replicas"]]?.int ?? -1 }.sorted() == [0, 2])
            #expect(replicaSets.allSatisfy { $0[["metadata", "annotations", "deployment.kubernetes.io/max-replicas"]] == "2" })
            let pods = try await Self.items(sims, "/api/v1/namespaces/shop/pods")
            #expect(pods.allSatisfy { $0[["spec", "containers"]]?.array?.first?["image"] == "nginx:1.27" })
        }
    }

    // MARK: kubectl

    @Test("kubectl: create deployment, rollout status, scale, apply, patch, set image, rollout undo, get deploy,rs,po, describe, delete",
          arguments: KubectlClient.allCases)
    func kubectl(client: KubectlClient) async throws {
        try await KubectlSession.withHome { home in try await withSimulators { sims in
            let kubectl = client.session(server: sims.kubeURL, home: home)
            let namespace = try await kubectl.run("create", "namespace", "shop")
            #expect(namespace.0 == 0, "\(namespace.1)")
            let created = try await kubectl.run("create", "deployment", "web", "--image=nginx:1.25", "--replicas=2", "-n", "shop")
            #expect(created.0 == 0, "\(created.1)")
            #expect(created.1.contains("deployment.apps/web created"))
            let status = try await kubectl.run("rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s")
            #expect(status.0 == 0, "\(status.1)")
            #expect(status.1.contains(#"deployment "web" successfully rolled out"#))

            let scaled = try await kubectl.run("scale", "deployment", "web", "--replicas=3", "-n", "shop")
            #expect(scaled.0 == 0, "\(scaled.1)")
            #expect(scaled.1.contains("deployment.apps/web scaled"))
            #expect(try await kubectl.run("rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s").0 == 0)
            let listed = try await kubectl.run("get", "deploy,rs,po", "-n", "shop")
            #expect(listed.0 == 0, "\(listed.1)")
            #expect(listed.1.contains("UP-TO-DATE") && listed.1.contains("DESIRED") && listed.1.contains("RESTARTS"), "\(listed.1)")
            #expect(listed.1.range(of: #"deployment\.apps/web\s+3/3\s+3\s+3"#, options: .regularExpression) != nil, "\(listed.1)")
            #expect(listed.1.range(of: #"replicaset\.apps/web-[a-z0-9]+\s+3\s+3\s+3"#, options: .regularExpression) != nil, "\(listed.1)")
            #expect(listed.1.components(separatedBy: "Running").count - 1 == 3, "\(listed.1)")
            let all = try await kubectl.run("get", "all", "-n", "shop", "-o", "name")
            #expect(all.1.contains("deployment.apps/web") && all.1.contains("pod/web-"), "\(all.1)")

            let manifest = """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: web-config
                  namespace: shop
                data:
                  mode: fast
                ---
                apiVersion: v1
                kind: Secret
                metadata:
                  name: web-secret
                  namespace: shop
                stringData:
                  password: s3cret
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: api
                  namespace: shop
                spec:
                  replicas: 2
                  selector:
                    matchLabels:
                      app: api
                  template:
                    metadata:
                      labels:
                        app: api
                    spec:
                      containers:
                      - name: api
                        image: nginx:1.25
                        envFrom:
                        - configMapRef:
                            name: web-config
                """
            let file = home.appendingPathComponent("api.yaml")
            try manifest.write(to: file, atomically: true, encoding: .utf8)
            let applied = try await kubectl.run("apply", "-f", file.path)
            #expect(applied.0 == 0, "\(applied.1)")
            #expect(applied.1.contains("deployment.apps/api created") && applied.1.contains("secret/web-secret created"), "\(applied.1)")
            #expect(try await kubectl.run("rollout", "status", "deployment/api", "-n", "shop", "--timeout=60s").0 == 0)
            let unchanged = try await kubectl.run("apply", "-f", file.path)
            #expect(unchanged.1.contains("deployment.apps/api unchanged"), "\(unchanged.1)")
            let password = try await kubectl.run("get", "secret", "web-secret", "-n", "shop", "-o", "jsonpath={.data.password}")
            #expect(password.1 == "czNjcmV0")
            let config = try await kubectl.run("get", "cm,secret", "-n", "shop")
            #expect(config.1.contains("web-config") && config.1.contains("Opaque"), "\(config.1)")

            let patched = try await kubectl.run("patch", "deployment", "api", "-n", "shop", "-p", #"{"spec":{"template":{"metadata":{"labels":{"version":"v2"}}}}}"#)
            #expect(patched.0 == 0, "\(patched.1)")
            #expect(patched.1.contains("deployment.apps/api patched"))
            let rolled = try await kubectl.run("rollout", "status", "deployment/api", "-n", "shop", "--timeout=60s")
            #expect(rolled.0 == 0, "\(rolled.1)")
            let v2 = try await Self.eventually("only v2 pods of api are left") { () -> String? in
                let pods = try await kubectl.run("get", "pods", "-n", "shop", "-l", "app=api", "-o", "jsonpath={range .items[*]}{.metadata.labels.version}{\"\\n\"}{end}")
                return pods.1.split(separator: "\n") == ["v2", "v2"] ? pods.1 : nil
            }
            #expect(!v2.isEmpty)
            let history = try await kubectl.run("rollout", "history", "deployment/api", "-n", "shop")
            #expect(history.0 == 0 && history.1.contains("REVISION") && history.1.contains("2"), "\(history.1)")
            let described = try await kubectl.run("describe", "deployment", "api", "-n", "shop")
            #expect(described.0 == 0, "\(described.1)")
            #expect(described.1.contains("NewReplicaSet:") && described.1.contains("ScalingReplicaSet"), "\(described.1)")

            // A new image, then back: the first ReplicaSet returns as revision 3 (no third one).
            #expect(try await kubectl.run("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", "shop").0 == 0)
            #expect(try await kubectl.run("rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s").0 == 0)
            let undone = try await kubectl.run("rollout", "undo", "deployment/web", "-n", "shop")
            #expect(undone.0 == 0 && undone.1.contains("rolled back"), "\(undone.1)")
            #expect(try await kubectl.run("rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s").0 == 0)
            let revisions = try await kubectl.run("rollout", "history", "deployment/web", "-n", "shop")
            let numbers = revisions.1.split(separator: "\n").compactMap { Int($0.split(separator: " ").first ?? "") }
            #expect(numbers == [2, 3], "\(revisions.1)")
            let images = try await kubectl.run("get", "pods", "-n", "shop", "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}")
            #expect(images.1.split(separator: " ") == ["nginx:1.25", "nginx:1.25", "nginx:1.25"], "\(images.1)")
            let deleted = try await kubectl.run("delete", "deployment", "web", "-n", "shop")
            #expect(deleted.0 == 0, "\(deleted.1)")
            #expect(deleted.1.contains(#"deployment.apps "web" deleted"#))
            _ = try await Self.eventually("web's pods are gone") { () -> Bool? in
                let pods = try await kubectl.run("get", "pods", "-n", "shop", "-l", "app=web", "-o", "name")
                return pods.0 == 0 && pods.1.isEmpty ? true : nil
            }
            let namespaceDeleted = try await kubectl.run("delete", "namespace", "shop")
            #expect(namespaceDeleted.0 == 0, "\(namespaceDeleted.1)")
            let left = try await kubectl.run("get", "deploy,rs,po,cm,secret", "-A", "-o", "name")
            #expect(!left.1.contains("web") && !left.1.contains("api"), "\(left.1)")
        } }
    }
}
