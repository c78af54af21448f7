import Foundation
import KubeProto
@testable import Simulators
import SwiftProtobuf
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Bodies built the way kubectl (client-go's protobuf serializer) builds them: Go marshals every
/// non-pointer field, so an unset string arrives as `""`, a zero number as 0 and a zero `Time`
/// as an empty message; pointer fields arrive only when set.
enum KubectlProtobuf {
    /// "k8s\0", then a `runtime.Unknown` holding the object.
    static func envelope(_ object: some Message, apiVersion: String, kind: String) throws -> [UInt8] {
        var unknown = K8s_Io_Apimachinery_Pkg_Runtime_Unknown()
        unknown.typeMeta.apiVersion = apiVersion
        unknown.typeMeta.kind = kind
        unknown.raw = try object.serializedData()
        unknown.contentEncoding = ""
        unknown.contentType = ""
        return [0x6b, 0x38, 0x73, 0x00] + (try unknown.serializedBytes() as [UInt8])
    }

    /// ObjectMeta as Go sends it for a new object.
    static func metadata(_ name: String, namespace: String = "", labels: [String: String] = [:],
                         annotations: [String: String] = [:]) -> K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_ObjectMeta {
        var meta = K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_ObjectMeta()
        meta.name = name
        meta.generateName = ""
        meta.namespace = namespace
        meta.selfLink = ""
        meta.uid = ""
        meta.resourceVersion = ""
        meta.generation = 0
        meta.creationTimestamp = K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Time()
        meta.labels = labels
        meta.annotations = annotations
        return meta
    }

    static func intOrString(_ value: Int32) -> K8s_Io_Apimachinery_Pkg_Util_Intstr_IntOrString {
        var result = K8s_Io_Apimachinery_Pkg_Util_Intstr_IntOrString()
        result.type = 0
        result.intVal = value
        result.strVal = ""
        return result
    }

    static func intOrString(_ value: String) -> K8s_Io_Apimachinery_Pkg_Util_Intstr_IntOrString {
        var result = K8s_Io_Apimachinery_Pkg_Util_Intstr_IntOrString()
        result.type = 1
        result.intVal = 0
        result.strVal = value
        return result
    }

    static func quantity(_ text: String) -> K8s_Io_Apimachinery_Pkg_Api_Resource_Quantity {
        var quantity = K8s_Io_Apimachinery_Pkg_Api_Resource_Quantity()
        quantity.string = text
        return quantity
    }

    static func time(_ seconds: Int64, nanos: Int32 = 0) -> K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Time {
        var time = K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Time()
        time.seconds = seconds
        time.nanos = nanos
        return time
    }

    /// A pod using every special type: Time (set and zero), Quantity, IntOrString (both forms),
    /// pointer zeros, a non-pointer false, a field whose Swift name differs from its JSON name
    /// (`hostIp`/`hostIP`), and the structs JSON inlines (probe handler, volume source, the
    /// LocalObjectReference in a secretKeyRef and a configMap volume).
    static func pod() -> K8s_Io_Api_Core_V1_Pod {
        var container = K8s_Io_Api_Core_V1_Container()
        container.name = "web"
        container.image = "nginx:1.27"
        container.args = ["--port", "8080"]
        container.imagePullPolicy = ""
        container.stdin = false
        container.tty = false
        var port = K8s_Io_Api_Core_V1_ContainerPort()
        port.name = "http"
        port.containerPort = 8080
        port.`protocol` = "TCP"
        port.hostIp = "127.0.0.1"
        container.ports = [port]
        container.resources.limits = ["cpu": quantity("500m"), "memory": quantity("128Mi")]
        container.resources.requests = ["cpu": quantity("250m")]
        container.readinessProbe.handler.httpGet.path = "/healthz"
        container.readinessProbe.handler.httpGet.port = intOrString("http")
        container.readinessProbe.periodSeconds = 5
        container.livenessProbe.handler.tcpSocket.port = intOrString(8080)
        container.securityContext.runAsUser = 0
        container.securityContext.allowPrivilegeEscalation = false
        var env = K8s_Io_Api_Core_V1_EnvVar()
        env.name = "PASSWORD"
        env.value = ""
        env.valueFrom.secretKeyRef.localObjectReference.name = "creds"
        env.valueFrom.secretKeyRef.key = "password"
        container.env = [env]

        var pod = K8s_Io_Api_Core_V1_Pod()
        pod.metadata = metadata("web", namespace: "demo", labels: ["run": "web", "tier": ""], annotations: ["note": "from protobuf"])
        pod.metadata.creationTimestamp = time(1_714_979_289, nanos: 123_000_000)
        pod.spec.containers = [container]
        var volume = K8s_Io_Api_Core_V1_Volume()
        volume.name = "settings"
        volume.volumeSource.configMap.localObjectReference.name = "settings"
        volume.volumeSource.configMap.defaultMode = 420
        pod.spec.volumes = [volume]
        pod.spec.restartPolicy = "Always"
        pod.spec.dnsPolicy = "ClusterFirst"
        pod.spec.serviceAccountName = "app"
        pod.spec.nodeName = ""
        pod.spec.hostNetwork = false
        pod.spec.terminationGracePeriodSeconds = 0
        pod.spec.automountServiceAccountToken = false
        var condition = K8s_Io_Api_Core_V1_PodCondition()
        condition.type = "Ready"
        condition.status = "True"
        condition.lastProbeTime = K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Time()
        condition.lastTransitionTime = time(0)
        pod.status.conditions = [condition]
        pod.status.phase = ""
        return pod
    }

    /// The JSON the pod above has on the wire.
    static let podJSON: JSON = [
        "apiVersion": "v1", "kind": "Pod",
        "metadata": [
            "name": "web", "namespace": "demo", "creationTimestamp": "2024-05-06T07:08:09Z",
            "labels": ["run": "web", "tier": ""], "annotations": ["note": "from protobuf"],
        ],
        "spec": [
            "containers": [[
                "name": "web", "image": "nginx:1.27", "args": ["--port", "8080"], "stdin": false, "tty": false,
                "ports": [["name": "http", "containerPort": 8080, "protocol": "TCP", "hostIP": "127.0.0.1"]],
                "resources": ["limits": ["cpu": "500m", "memory": "128Mi"], "requests": ["cpu": "250m"]],
                "readinessProbe": ["httpGet": ["path": "/healthz", "port": "http"], "periodSeconds": 5],
                "livenessProbe": ["tcpSocket": ["port": 8080]],
                "securityContext": ["runAsUser": 0, "allowPrivilegeEscalation": false],
                "env": [["name": "PASSWORD", "valueFrom": ["secretKeyRef": ["name": "creds", "key": "password"]]]],
            ]],
            "volumes": [["name": "settings", "configMap": ["name": "settings", "defaultMode": 420]]],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "app", "hostNetwork": false,
            "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": false,
        ],
        "status": [
            "conditions": [["type": "Ready", "status": "True", "lastProbeTime": .null, "lastTransitionTime": "1970-01-01T00:00:00Z"]],
        ],
    ]
}

/// Sends a protobuf body as kubectl does.
func sendProtobuf(_ method: String, _ url: String, _ body: [UInt8]) async throws -> HTTPAnswer {
    try await exchange(method, url, headers: [
        ("Authorization", "Bearer dev"), ("Content-Type", "application/vnd.kubernetes.protobuf"),
        ("Accept", "application/vnd.kubernetes.protobuf,application/json"),
    ], body: body)
}

@Suite("Kubernetes simulator: protobuf request bodies", .timeLimit(.minutes(5)))
struct KubeProtobufTests {
    @Test("a protobuf Pod becomes its Kubernetes JSON: Time, Quantity, IntOrString, inlined structs, pointer zeros, unset strings omitted")
    func podConversion() throws {
        let body = try KubectlProtobuf.envelope(KubectlProtobuf.pod(), apiVersion: "v1", kind: "Pod")
        let json = try KubeProtobuf.decode(body)
        #expect(json == KubectlProtobuf.podJSON)
        // And the JSON is what the wire carries: numbers are numbers, not proto3 JSON's strings.
        let text = String(decoding: json.data, as: UTF8.self)
        #expect(text.contains(#""terminationGracePeriodSeconds":0"#))
        #expect(text.contains(#""creationTimestamp":"2024-05-06T07:08:09Z""#))
    }

    @Test("Secret bytes become base64, ConfigMap data and binaryData keep their keys, Event times and counts")
    func secretsConfigMapsEvents() throws {
        var secret = K8s_Io_Api_Core_V1_Secret()
        secret.metadata = KubectlProtobuf.metadata("creds", namespace: "demo")
        secret.data = ["password": Data("s3cr3t\u{0}".utf8), "empty": Data()]
        secret.stringData = ["user": "admin"]
        secret.type = "Opaque"
        let secretJSON = try KubeProtobuf.decode(try KubectlProtobuf.envelope(secret, apiVersion: "v1", kind: "Secret"))
        #expect(secretJSON["data"] == ["password": "czNjcjN0AA==", "empty": ""])
        #expect(secretJSON["stringData"] == ["user": "admin"])
        #expect(secretJSON["type"] == "Opaque")
        #expect(secretJSON["immutable"] == nil, "a pointer field never set is absent")

        var configMap = K8s_Io_Api_Core_V1_ConfigMap()
        configMap.metadata = KubectlProtobuf.metadata("settings", namespace: "demo")
        configMap.data = ["app.properties": "a=1\nb=2\n", "blank": ""]
        configMap.binaryData = ["logo.png": Data([0x89, 0x50, 0x4e, 0x47])]
        configMap.immutable = true
        let configJSON = try KubeProtobuf.decode(try KubectlProtobuf.envelope(configMap, apiVersion: "v1", kind: "ConfigMap"))
        #expect(configJSON["data"] == ["app.properties": "a=1\nb=2\n", "blank": ""])
        #expect(configJSON["binaryData"] == ["logo.png": "iVBORw=="])
        #expect(configJSON["immutable"] == true)
        #expect(configJSON["kind"] == "ConfigMap")

        var event = K8s_Io_Api_Core_V1_Event()
        event.metadata = KubectlProtobuf.metadata("web.1", namespace: "demo")
        event.involvedObject.kind = "Pod"
        event.involvedObject.name = "web"
        event.count = 3
        event.firstTimestamp = KubectlProtobuf.time(1_700_000_000)
        event.eventTime.seconds = 1_700_000_000
        event.eventTime.nanos = 42_000
        let eventJSON = try KubeProtobuf.decode(try KubectlProtobuf.envelope(event, apiVersion: "v1", kind: "Event"))
        #expect(eventJSON["count"] == 3)
        #expect(eventJSON["firstTimestamp"] == "2023-11-14T22:13:20Z")
        #expect(eventJSON["eventTime"] == "2023-11-14T22:13:20.000042Z")
        #expect(eventJSON["involvedObject"] == ["kind": "Pod", "name": "web"])
    }

    @Test("embedded objects (RawExtension, FieldsV1), Deployment replicas 0 and rolling-update IntOrStrings, and the uID that is uid in JSON")
    func embeddedAndOddities() throws {
        var revision = K8s_Io_Api_Apps_V1_ControllerRevision()
        revision.metadata = KubectlProtobuf.metadata("web-1", namespace: "demo")
        revision.data.raw = Data(#"{"spec":{"template":{"metadata":{"labels":{"app":"web"}}}}}"#.utf8)
        revision.revision = 1
        var managed = K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_ManagedFieldsEntry()
        managed.manager = "kubectl"
        managed.operation = "Update"
        managed.fieldsType = "FieldsV1"
        managed.fieldsV1.raw = Data(#"{"f:metadata":{"f:labels":{".":{}}}}"#.utf8)
        revision.metadata.managedFields = [managed]
        let revisionJSON = try KubeProtobuf.decode(try KubectlProtobuf.envelope(revision, apiVersion: "apps/v1", kind: "ControllerRevision"))
        #expect(revisionJSON["data"] == ["spec": ["template": ["metadata": ["labels": ["app": "web"]]]]])
        #expect(revisionJSON["revision"] == 1)
        #expect(revisionJSON[["metadata", "managedFields"]]?.array?.first?["fieldsV1"] == ["f:metadata": ["f:labels": [".": .object([:])]]])

        var deployment = K8s_Io_Api_Apps_V1_Deployment()
        deployment.metadata = KubectlProtobuf.metadata("web", namespace: "demo", labels: ["app": "web"])
        deployment.spec.replicas = 0
        deployment.spec.selector.matchLabels = ["app": "web"]
        deployment.spec.strategy.type = "RollingUpdate"
        deployment.spec.strategy.rollingUpdate.maxSurge = KubectlProtobuf.intOrString("25%")
        deployment.spec.strategy.rollingUpdate.maxUnavailable = KubectlProtobuf.intOrString(1)
        deployment.spec.template.metadata = KubectlProtobuf.metadata("", labels: ["app": "web"])
        var container = K8s_Io_Api_Core_V1_Container()
        container.name = "nginx"
        container.image = "nginx"
        container.resources = K8s_Io_Api_Core_V1_ResourceRequirements()
        deployment.spec.template.spec.containers = [container]
        let deploymentJSON = try KubeProtobuf.decode(try KubectlProtobuf.envelope(deployment, apiVersion: "apps/v1", kind: "Deployment"))
        #expect(deploymentJSON["apiVersion"] == "apps/v1")
        #expect(deploymentJSON[["spec", "replicas"]] == 0, "replicas is a pointer: an explicit 0 is kept")
        #expect(deploymentJSON[["spec", "strategy", "rollingUpdate"]] == ["maxSurge": "25%", "maxUnavailable": 1])
        #expect(deploymentJSON[["spec", "template", "metadata", "name"]] == nil)
        #expect(deploymentJSON[["spec", "template", "spec", "containers"]] == [["name": "nginx", "image": "nginx", "resources": .object([:])]],
                "a non-pointer struct Go always sends is an empty object, as in Go's JSON")

        var token = K8s_Io_Api_Authentication_V1_TokenRequest()
        token.metadata = KubectlProtobuf.metadata("app", namespace: "demo")
        token.spec.audiences = ["api://AzureADTokenExchange"]
        token.spec.expirationSeconds = 3600
        token.spec.boundObjectRef.kind = "Pod"
        token.spec.boundObjectRef.name = "web"
        token.spec.boundObjectRef.uID = "1234"
        let tokenJSON = try KubeProtobuf.decode(try KubectlProtobuf.envelope(token, apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest"))
        #expect(tokenJSON[["spec", "boundObjectRef"]] == ["kind": "Pod", "name": "web", "uid": "1234"])
        #expect(tokenJSON[["spec", "expirationSeconds"]] == 3600)
        #expect(tokenJSON[["spec", "audiences"]] == ["api://AzureADTokenExchange"])
    }

    @Test("bad bytes and unknown kinds are decode errors, never crashes")
    func decodeErrors() throws {
        let good = try KubectlProtobuf.envelope(KubectlProtobuf.pod(), apiVersion: "v1", kind: "Pod")
        #expect(throws: KubeProtobuf.DecodeError.self) { try KubeProtobuf.decode(Array(good.prefix(good.count / 2))) }
        #expect(throws: KubeProtobuf.DecodeError.self) { try KubeProtobuf.decode(Array(good.dropFirst(4))) }
        #expect(throws: KubeProtobuf.DecodeError.self) { try KubeProtobuf.decode([0x6b, 0x38, 0x73, 0x00, 0xff, 0xff, 0xff]) }
        // Every truncation of a valid body is an error or a (partial) object, never a trap.
        for length in stride(from: 0, to: good.count, by: 7) { _ = try? KubeProtobuf.decode(Array(good.prefix(length))) }
        var widget = K8s_Io_Api_Core_V1_Namespace()
        widget.metadata = KubectlProtobuf.metadata("w")
        #expect(throws: KubeProtobuf.DecodeError.unregistered(apiVersion: "v1", kind: "Widget")) {
            try KubeProtobuf.decode(try KubectlProtobuf.envelope(widget, apiVersion: "v1", kind: "Widget"))
        }
        var compressed = K8s_Io_Apimachinery_Pkg_Runtime_Unknown()
        compressed.typeMeta.apiVersion = "v1"
        compressed.typeMeta.kind = "Namespace"
        compressed.contentEncoding = "gzip"
        #expect(throws: KubeProtobuf.DecodeError.unsupportedEncoding("gzip")) {
            try KubeProtobuf.decode(KubeProtobuf.magic + (try compressed.serializedBytes() as [UInt8]))
        }
    }

    @Test("kubectl's protobuf namespace, service account and pod are created and stored as JSON; the log shows JSON")
    func createThroughTheSimulator() async throws {
        try await withSimulators { sims in
            var namespace = K8s_Io_Api_Core_V1_Namespace()
            namespace.metadata = KubectlProtobuf.metadata("demo", labels: ["team": "payments"], annotations: ["owner": "alice"])
            let created = try await sendProtobuf("POST", "\(sims.kubeURL)/api/v1/namespaces",
                                                 try KubectlProtobuf.envelope(namespace, apiVersion: "v1", kind: "Namespace"))
            #expect(created.status == 201, "\(created.text)")
            #expect(created.header("Content-Type") == "application/json")
            #expect(created.json[["metadata", "name"]] == "demo")
            let stored = try #require(sims.kube.object("namespaces", namespace: nil, name: "demo"))
            #expect(stored["kind"] == "Namespace")
            #expect(stored[["metadata", "labels"]] == ["team": "payments"])
            #expect(stored[["metadata", "annotations"]] == ["owner": "alice"])
            #expect(stored[["metadata", "namespace"]] == nil)
            #expect(stored[["metadata", "uid"]]?.string?.isEmpty == false)
            #expect(stored[["status", "phase"]] == "Active")
            let logged = sims.kube.requestLog.all.last { $0.operation == "namespaces.create" }
            #expect(logged?.body.flatMap { JSON.parse(Array($0.utf8)) }?[["metadata", "labels"]] == ["team": "payments"])

            var account = K8s_Io_Api_Core_V1_ServiceAccount()
            account.metadata = KubectlProtobuf.metadata("app", namespace: "demo")
            account.automountServiceAccountToken = false
            var pullSecret = K8s_Io_Api_Core_V1_LocalObjectReference()
            pullSecret.name = "registry"
            account.imagePullSecrets = [pullSecret]
            let accountAnswer = try await sendProtobuf("POST", "\(sims.kubeURL)/api/v1/namespaces/demo/serviceaccounts",
                                                       try KubectlProtobuf.envelope(account, apiVersion: "v1", kind: "ServiceAccount"))
            #expect(accountAnswer.status == 201, "\(accountAnswer.text)")
            let storedAccount = try #require(sims.kube.object("serviceaccounts", namespace: "demo", name: "app"))
            #expect(storedAccount["automountServiceAccountToken"] == false)
            #expect(storedAccount["imagePullSecrets"] == [["name": "registry"]])
            #expect(storedAccount[["metadata", "namespace"]] == "demo")

            let podAnswer = try await sendProtobuf("POST", "\(sims.kubeURL)/api/v1/namespaces/demo/pods",
                                                   try KubectlProtobuf.envelope(KubectlProtobuf.pod(), apiVersion: "v1", kind: "Pod"))
            #expect(podAnswer.status == 201, "\(podAnswer.text)")
            let pod = try #require(sims.kube.object("pods", namespace: "demo", name: "web"))
            let container = pod[["spec", "containers"]]?.array?.first
            #expect(container?["resources"] == ["limits": ["cpu": "500m", "memory": "128Mi"], "requests": ["cpu": "250m"]])
            #expect(container?[["readinessProbe", "httpGet", "port"]] == "http")
            #expect(container?[["livenessProbe", "tcpSocket", "port"]] == 8080)
            #expect(container?[["securityContext", "runAsUser"]] == 0)
            #expect(pod[["spec", "terminationGracePeriodSeconds"]] == 0)
            #expect(pod[["spec", "automountServiceAccountToken"]] == false)
            #expect(pod[["spec", "serviceAccountName"]] == "app")
            #expect(pod[["metadata", "labels"]] == ["run": "web", "tier": ""])
            // The simulator's own defaults still apply: the unset nodeName ("" on the wire) is absent, so it schedules.
            #expect(pod[["spec", "nodeName"]]?.string?.hasPrefix("aks-nodepool1-") == true)
            #expect(pod[["status", "phase"]] == "Running")
        }
    }

    @Test("PUT with a protobuf body updates; DELETE's protobuf DeleteOptions preconditions are read")
    func updateAndDelete() async throws {
        try await withSimulators { sims in
            var namespace = K8s_Io_Api_Core_V1_Namespace()
            namespace.metadata = KubectlProtobuf.metadata("demo")
            #expect(try await sendProtobuf("POST", "\(sims.kubeURL)/api/v1/namespaces",
                                           try KubectlProtobuf.envelope(namespace, apiVersion: "v1", kind: "Namespace")).status == 201)
            let current = try #require(sims.kube.object("namespaces", namespace: nil, name: "demo"))
            namespace.metadata.resourceVersion = current[["metadata", "resourceVersion"]]?.string ?? ""
            namespace.metadata.labels = ["stage": "prod"]
            let updated = try await sendProtobuf("PUT", "\(sims.kubeURL)/api/v1/namespaces/demo",
                                                 try KubectlProtobuf.envelope(namespace, apiVersion: "v1", kind: "Namespace"))
            #expect(updated.status == 200, "\(updated.text)")
            #expect(sims.kube.object("namespaces", namespace: nil, name: "demo")?[["metadata", "labels"]] == ["stage": "prod"])

            #expect(try await sendProtobuf("POST", "\(sims.kubeURL)/api/v1/namespaces/demo/pods",
                                           try KubectlProtobuf.envelope(KubectlProtobuf.pod(), apiVersion: "v1", kind: "Pod")).status == 201)
            var options = K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_DeleteOptions()
            options.gracePeriodSeconds = 0
            options.preconditions.uid = "not-the-uid"
            let refused = try await sendProtobuf("DELETE", "\(sims.kubeURL)/api/v1/namespaces/demo/pods/web",
                                                 try KubectlProtobuf.envelope(options, apiVersion: "v1", kind: "DeleteOptions"))
            #expect(refused.status == 409, "the precondition in the protobuf body was read")
            #expect(refused.json["message"]?.string?.contains("UID in precondition: not-the-uid") == true)
            options.clearPreconditions()
            let deleted = try await sendProtobuf("DELETE", "\(sims.kubeURL)/api/v1/namespaces/demo/pods/web",
                                                 try KubectlProtobuf.envelope(options, apiVersion: "v1", kind: "DeleteOptions"))
            #expect(deleted.status == 200, "\(deleted.text)")
            #expect(sims.kube.object("pods", namespace: "demo", name: "web") == nil)
        }
    }

    @Test("a protobuf SelfSubjectAccessReview is answered allowed, or denied by the deniedVerbs switch")
    func accessReview() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
            var review = K8s_Io_Api_Authorization_V1_SelfSubjectAccessReview()
            review.metadata = KubectlProtobuf.metadata("")
            review.spec.resourceAttributes.namespace = "demo"
            review.spec.resourceAttributes.verb = "create"
            review.spec.resourceAttributes.group = ""
            review.spec.resourceAttributes.version = ""
            review.spec.resourceAttributes.resource = "pods"
            review.spec.resourceAttributes.subresource = ""
            review.spec.resourceAttributes.name = ""
            review.status.allowed = false
            review.status.denied = false
            let body = try KubectlProtobuf.envelope(review, apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview")
            let allowed = try await sendProtobuf("POST", url, body)
            #expect(allowed.status == 201, "\(allowed.text)")
            #expect(allowed.json["kind"] == "SelfSubjectAccessReview")
            #expect(allowed.json[["status", "allowed"]] == true)
            #expect(allowed.json[["spec", "resourceAttributes"]] == ["namespace": "demo", "verb": "create", "resource": "pods"])
            sims.kube.configure { $0.deniedVerbs = ["pods:create"] }
            let denied = try await sendProtobuf("POST", url, body)
            #expect(denied.json[["status", "allowed"]] == false)
            #expect(denied.json[["status", "reason"]]?.string?.contains("denies create on pods") == true)
            sims.kube.configure { $0.deniedVerbs = ["get"] }
            #expect(try await sendProtobuf("POST", url, body).json[["status", "allowed"]] == true)

            let garbage = try await sendProtobuf("POST", url, Array(body.prefix(body.count - 5)))
            #expect(garbage.status == 400)
            #expect(garbage.json["message"]?.string?.hasPrefix("the object provided is unrecognized (must be of type SelfSubjectAccessReview)") == true)
        }
    }

    @Test("truncated or garbage bodies and unknown kinds are 400 Status bodies; protobuf for a custom resource is 415")
    func badBodies() async throws {
        try await withSimulators { sims in
            var namespace = K8s_Io_Api_Core_V1_Namespace()
            namespace.metadata = KubectlProtobuf.metadata("demo", labels: ["a": "b"])
            let body = try KubectlProtobuf.envelope(namespace, apiVersion: "v1", kind: "Namespace")
            let url = "\(sims.kubeURL)/api/v1/namespaces"

            for bad in [Array(body.prefix(body.count - 3)), Array(body.dropFirst(4)), [0x6b, 0x38, 0x73, 0x00, 0x0a, 0xff, 0x01]] {
                let answer = try await sendProtobuf("POST", url, bad)
                #expect(answer.status == 400)
                #expect(answer.json["kind"] == "Status")
                #expect(answer.json["status"] == "Failure")
                #expect(answer.json["reason"] == "BadRequest")
                #expect(answer.json["code"] == 400)
                #expect(answer.json["message"]?.string?.hasPrefix("the object provided is unrecognized (must be of type Namespace): ") == true,
                        "\(answer.text)")
            }

            let widget = try await sendProtobuf("POST", url, try KubectlProtobuf.envelope(namespace, apiVersion: "v1", kind: "Widget"))
            #expect(widget.status == 400)
            #expect(widget.json["reason"] == "BadRequest")
            #expect(widget.json["message"]?.string?.hasPrefix(#"Widget in version "v1" cannot be handled as a Namespace: no kind "Widget" is registered for version "v1""#) == true,
                    "\(widget.text)")

            // A kind the table knows, sent to another kind's URL: the handler's own kind check.
            let mismatch = try await sendProtobuf("POST", "\(url)/default/serviceaccounts", body)
            #expect(mismatch.status == 400)
            #expect(mismatch.json["message"] == "the kind of the object (Namespace) does not match the kind of the URL (ServiceAccount)")
            #expect(sims.kube.object("namespaces", namespace: nil, name: "demo") == nil)

            let custom = try await sendProtobuf("POST", "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/default/azureidentities", body)
            #expect(custom.status == 415)
            #expect(custom.json["reason"] == "UnsupportedMediaType")
            #expect(custom.json["message"] == "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        }
    }
}
