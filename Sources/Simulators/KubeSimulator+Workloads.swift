import Foundation
import HTTPTypes
import Hummingbird
import Yams

/// The API side of `apps/v1` Deployments and ReplicaSets and of core ConfigMaps and Secrets, as
/// kube-apiserver implements it: the defaults it fills in, the conversions it makes (a Secret's
/// `stringData`), its validation and messages, and the `scale` and `status` subresources. The
/// controllers that act on these kinds are in `KubeSimulator+Controllers.swift`.
extension KubeSimulator {
    /// The label the deployment controller adds to its ReplicaSets and their pods.
    static let podTemplateHashLabel = "pod-template-hash"

    // MARK: defaults and conversions

    /// The object as kube-apiserver stores it after decoding and defaulting, or the 400 it answers
    /// for a body it cannot decode (invalid base64 in a Secret, a number in a ConfigMap's `data`).
    func normalized(_ resource: KubeResource, _ object: JSON) -> Result<JSON, ErrorResponse> {
        var object = object
        switch resource.plural {
        case "deployments":
            object = Self.defaultedDeployment(object)
        case "replicasets":
            if Self.absent(object[["spec", "replicas"]]) { object[["spec", "replicas"]] = 1 }
            // Zero values of omitempty fields are not stored.
            if object[["spec", "minReadySeconds"]] == 0 { object[["spec", "minReadySeconds"]] = nil }
            object[["spec", "template"]] = Self.defaultedPodTemplate(object[["spec", "template"]])
        case "configmaps":
            for field in ["data", "binaryData"] {
                for value in (object[field]?.object ?? [:]).values where value.string == nil && value != .null {
                    return .failure(ErrorResponse(cannotDecode(resource, "json: cannot unmarshal \(Self.goType(value)) into Go struct field ConfigMap.\(field) of type \(field == "data" ? "string" : "[]uint8")")))
                }
            }
            if let binary = object["binaryData"]?.object {
                for (_, value) in binary.sorted(by: { $0.key < $1.key }) {
                    if let position = Self.base64ErrorPosition(value.string ?? "") {
                        return .failure(ErrorResponse(cannotDecode(resource, "illegal base64 data at input byte \(position)")))
                    }
                }
                object["binaryData"] = .object(binary.mapValues(Self.canonicalBase64))
            }
        case "secrets":
            for (_, value) in (object["data"]?.object ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard let text = value.string else {
                    if value == .null { continue }
                    return .failure(ErrorResponse(cannotDecode(resource, "json: cannot unmarshal \(Self.goType(value)) into Go struct field Secret.data of type []uint8")))
                }
                if let position = Self.base64ErrorPosition(text) {
                    return .failure(ErrorResponse(cannotDecode(resource, "illegal base64 data at input byte \(position)")))
                }
            }
            if let data = object["data"]?.object { object["data"] = .object(data.mapValues(Self.canonicalBase64)) }
            for value in (object["stringData"]?.object ?? [:]).values where value.string == nil && value != .null {
                return .failure(ErrorResponse(cannotDecode(resource, "json: cannot unmarshal \(Self.goType(value)) into Go struct field Secret.stringData of type string")))
            }
            // v1 → internal conversion: stringData is write-only, merged into data (winning over it).
            if let stringData = object["stringData"]?.object {
                var data = object["data"]?.object ?? [:]
                for (key, value) in stringData {
                    data[key] = .string(Data((value.string ?? "").utf8).base64EncodedString())
                }
                object["data"] = .object(data)
                object["stringData"] = nil
            }
            if Self.absent(object["type"]) || object["type"] == "" { object["type"] = "Opaque" }
        default:
            break
        }
        return .success(object)
    }

    /// kube-apiserver's 400 for a body that does not decode into the kind.
    func cannotDecode(_ resource: KubeResource, _ detail: String) -> Response {
        badRequest("\(resource.kind) in version \"\(resource.version)\" cannot be handled as a \(resource.kind): \(detail)")
    }

    /// The JSON type as Go's decoder names it in `cannot unmarshal X`.
    static func goType(_ value: JSON) -> String {
        switch value {
        case .int, .double: return "number"
        case .bool: return "bool"
        case .array: return "array"
        case .object: return "object"
        default: return "string"
        }
    }

    /// Whether a field is missing or null (both mean "unset" to the Go types).
    static func absent(_ value: JSON?) -> Bool { value == nil || value == .null }

    /// `SetDefaults_Deployment` of apps/v1, with the pod template's defaults.
    static func defaultedDeployment(_ deployment: JSON) -> JSON {
        var object = deployment
        var spec = object["spec"] ?? .object([:])
        if absent(spec["replicas"]) { spec["replicas"] = 1 }
        var strategy = spec["strategy"] ?? .object([:])
        if absent(strategy["type"]) || strategy["type"] == "" { strategy["type"] = "RollingUpdate" }
        if strategy["type"] == "RollingUpdate" {
            var rolling = absent(strategy["rollingUpdate"]) ? .object([:]) : strategy["rollingUpdate"]!
            if absent(rolling["maxUnavailable"]) { rolling["maxUnavailable"] = .string("25%") }
            if absent(rolling["maxSurge"]) { rolling["maxSurge"] = .string("25%") }
            strategy["rollingUpdate"] = rolling
        }
        spec["strategy"] = strategy
        if absent(spec["revisionHistoryLimit"]) { spec["revisionHistoryLimit"] = 10 }
        // Zero values of omitempty fields are not stored.
        if spec["paused"] == false { spec["paused"] = nil }
        if spec["minReadySeconds"] == 0 { spec["minReadySeconds"] = nil }
        if absent(spec["progressDeadlineSeconds"]) { spec["progressDeadlineSeconds"] = 600 }
        spec["template"] = defaultedPodTemplate(spec["template"])
        object["spec"] = spec
        return object
    }

    /// A pod template with `SetDefaults_PodSpec`'s and `SetDefaults_Container`'s values, and the
    /// `creationTimestamp: null` kube-apiserver writes for the template's empty time.
    static func defaultedPodTemplate(_ template: JSON?) -> JSON {
        var template = template ?? .object([:])
        var metadata = template["metadata"] ?? .object([:])
        metadata["creationTimestamp"] = .null
        template["metadata"] = metadata
        var spec = template["spec"] ?? .object([:])
        let defaults: [(String, JSON)] = [
            ("restartPolicy", "Always"), ("terminationGracePeriodSeconds", 30), ("dnsPolicy", "ClusterFirst"),
            ("securityContext", .object([:])), ("schedulerName", "default-scheduler"),
        ]
        for (field, value) in defaults where absent(spec[field]) { spec[field] = value }
        for field in ["containers", "initContainers"] {
            if let containers = spec[field]?.array { spec[field] = .array(containers.map(defaultedContainer)) }
        }
        if let volumes = spec["volumes"]?.array {
            spec["volumes"] = .array(volumes.map { volume in
                var volume = volume
                for source in ["configMap", "secret", "projected", "downwardAPI"] where volume[source] != nil {
                    if absent(volume[[source, "defaultMode"]]) { volume[[source, "defaultMode"]] = 420 }
                }
                return volume
            })
        }
        template["spec"] = spec
        return template
    }

    /// A container with `SetDefaults_Container`'s values (and those of its ports, probes and env).
    static func defaultedContainer(_ container: JSON) -> JSON {
        var container = container
        if absent(container["terminationMessagePath"]) { container["terminationMessagePath"] = "/dev/termination-log" }
        if absent(container["terminationMessagePolicy"]) { container["terminationMessagePolicy"] = "File" }
        if absent(container["imagePullPolicy"]) {
            container["imagePullPolicy"] = .string(imageTag(container["image"]?.string ?? "") == "latest" ? "Always" : "IfNotPresent")
        }
        if absent(container["resources"]) { container["resources"] = .object([:]) }
        if let env = container["env"]?.array {
            container["env"] = .array(env.map { variable in
                var variable = variable
                if variable[["valueFrom", "fieldRef"]]?.object != nil, absent(variable[["valueFrom", "fieldRef", "apiVersion"]]) {
                    variable[["valueFrom", "fieldRef", "apiVersion"]] = "v1"
                }
                return variable
            })
        }
        if let ports = container["ports"]?.array {
            container["ports"] = .array(ports.map { port in
                var port = port
                if absent(port["protocol"]) { port["protocol"] = "TCP" }
                return port
            })
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] where container[probe]?.object != nil {
            for (field, value) in [("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)] as [(String, JSON)]
            where absent(container[[probe, field]]) {
                container[[probe, field]] = value
            }
            if container[[probe, "httpGet"]] != nil, absent(container[[probe, "httpGet", "scheme"]]) {
                container[[probe, "httpGet", "scheme"]] = "HTTP"
            }
        }
        return container
    }

    /// The tag of an image reference as `parsers.ParseImageName` sees it: `latest` when there is
    /// neither tag nor digest, empty with only a digest.
    static func imageTag(_ image: String) -> String {
        var reference = image
        if let at = reference.firstIndex(of: "@") {
            reference = String(reference[..<at])
            let last = reference.split(separator: "/").last.map(String.init) ?? reference
            return last.contains(":") ? String(last.split(separator: ":").last ?? "") : ""
        }
        let last = reference.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? reference
        if let colon = last.lastIndex(of: ":") { return String(last[last.index(after: colon)...]) }
        return "latest"
    }

    /// Base64 as kube-apiserver stores it: decoded to bytes and encoded again (`YW==` becomes
    /// `YQ==`, line breaks go).
    static func canonicalBase64(_ value: JSON) -> JSON {
        guard let text = value.string, let bytes = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else { return value }
        return .string(bytes.base64EncodedString())
    }

    /// Where Go's `base64.StdEncoding` (which `encoding/json` uses for `[]byte`) stops on `text`:
    /// nil when it decodes, else the byte offset its `illegal base64 data at input byte N` names.
    static func base64ErrorPosition(_ text: String) -> Int? {
        let source = Array(text.utf8)
        func valid(_ byte: UInt8) -> Bool {
            (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 43 || byte == 47
        }
        func newline(_ byte: UInt8) -> Bool { byte == 10 || byte == 13 }
        var si = 0
        while true {
            var j = 0
            while j < 4 {
                if si == source.count {
                    if j == 0 { return nil }
                    return si - j
                }
                let byte = source[si]
                si += 1
                if valid(byte) {
                    j += 1
                    continue
                }
                if newline(byte) { continue }
                if byte != 61 { return si - 1 }
                // Padding: only after two or three characters of a quantum, and only at the end.
                switch j {
                case 0, 1:
                    return si - 1
                case 2:
                    while si < source.count && newline(source[si]) { si += 1 }
                    if si == source.count { return source.count }
                    if source[si] != 61 { return si - 1 }
                    si += 1
                default:
                    break
                }
                while si < source.count && newline(source[si]) { si += 1 }
                return si < source.count ? si : nil
            }
        }
    }

    // MARK: validation

    /// kube-apiserver's validation of the workload kinds, config maps and secrets, as
    /// `(field, message)` causes; `previous` is the stored object on an update.
    func workloadCauses(_ resource: KubeResource, _ object: JSON, previous: JSON?) -> [(String, String)] {
        switch resource.plural {
        case "deployments", "replicasets":
            var causes = Self.workloadSpecCauses(object, kind: resource.plural)
            if let previous, previous[["spec", "selector"]] != object[["spec", "selector"]] {
                causes.append(("spec.selector", "Invalid value: \(Self.goSelector(object[["spec", "selector"]])): field is immutable"))
            }
            return causes
        case "configmaps":
            var causes: [(String, String)] = []
            let data = object["data"]?.object ?? [:]
            let binary = object["binaryData"]?.object ?? [:]
            for key in data.keys.sorted() {
                causes += Self.configKeyCauses(key, field: "data")
                if binary[key] != nil {
                    causes.append(("data[\(key)]", "Invalid value: \"\(key)\": duplicate of key present in binaryData"))
                }
            }
            for key in binary.keys.sorted() { causes += Self.configKeyCauses(key, field: "binaryData") }
            let size = data.values.reduce(0) { $0 + ($1.string?.utf8.count ?? 0) }
                + binary.values.reduce(0) { $0 + (Data(base64Encoded: $1.string ?? "")?.count ?? 0) }
            if size > 1 << 20 { causes.append(("", "Too long: must have at most 1048576 bytes")) }
            if let previous, previous["immutable"] == .bool(true) {
                if object["immutable"] != .bool(true) { causes.append(("immutable", "Forbidden: field is immutable when `immutable` is set")) }
                if (previous["data"]?.object ?? [:]) != data { causes.append(("data", "Forbidden: field is immutable when `immutable` is set")) }
                if (previous["binaryData"]?.object ?? [:]) != binary {
                    causes.append(("binaryData", "Forbidden: field is immutable when `immutable` is set"))
                }
            }
            return causes
        case "secrets":
            var causes: [(String, String)] = []
            let data = object["data"]?.object ?? [:]
            for key in data.keys.sorted() { causes += Self.configKeyCauses(key, field: "data") }
            let type = object["type"]?.string ?? "Opaque"
            let required: [String: [String]] = [
                "kubernetes.io/tls": ["tls.crt", "tls.key"], "kubernetes.io/dockerconfigjson": [".dockerconfigjson"],
                "kubernetes.io/dockercfg": [".dockercfg"], "kubernetes.io/ssh-auth": ["ssh-privatekey"],
            ]
            for key in required[type] ?? [] where data[key] == nil {
                causes.append(("data[\(key)]", "Required value"))
            }
            let size = data.values.reduce(0) { $0 + (Data(base64Encoded: $1.string ?? "")?.count ?? 0) }
            if size > 1 << 20 { causes.append(("data", "Too long: must have at most 1048576 bytes")) }
            if let previous {
                let before = previous["type"]?.string ?? "Opaque"
                if before != type { causes.append(("type", "Invalid value: \"\(type)\": field is immutable")) }
                if previous["immutable"] == .bool(true) {
                    if object["immutable"] != .bool(true) { causes.append(("immutable", "Forbidden: field is immutable when `immutable` is set")) }
                    if (previous["data"]?.object ?? [:]) != data { causes.append(("data", "Forbidden: field is immutable when `immutable` is set")) }
                }
            }
            return causes
        default:
            return []
        }
    }

    /// The cause for a ConfigMap or Secret key that is not a valid config key.
    static func configKeyCauses(_ key: String, field: String) -> [(String, String)] {
        let allowed = key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
        if !key.isEmpty, key.count <= 253, allowed, key != ".", key != ".." { return [] }
        return [("\(field)[\(key)]", "Invalid value: \"\(key)\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")]
    }

    /// `ValidateDeploymentSpec` / `ValidateReplicaSetSpec`, in their order.
    static func workloadSpecCauses(_ object: JSON, kind: String) -> [(String, String)] {
        var causes: [(String, String)] = []
        let spec = object["spec"] ?? .object([:])
        let replicas = spec["replicas"]?.int ?? 0
        if replicas < 0 { causes.append(("spec.replicas", "Invalid value: \(replicas): must be greater than or equal to 0")) }
        if kind == "replicasets", let minReady = spec["minReadySeconds"]?.int, minReady < 0 {
            causes.append(("spec.minReadySeconds", "Invalid value: \(minReady): must be greater than or equal to 0"))
        }
        let selectorJSON = spec["selector"]
        if absent(selectorJSON) {
            causes.append(("spec.selector", "Required value"))
        } else {
            causes += selectorCauses(selectorJSON!, path: "spec.selector")
            let count = (selectorJSON?["matchLabels"]?.object?.count ?? 0) + (selectorJSON?["matchExpressions"]?.array?.count ?? 0)
            if count == 0 {
                causes.append(("spec.selector", "Invalid value: \(goSelector(selectorJSON)): empty selector is invalid for deployment"))
            }
        }
        // A missing selector selects nothing, so the template's labels do not match it either.
        let template = spec["template"] ?? .object([:])
        let labels = template[["metadata", "labels"]]?.stringMap ?? [:]
        let mismatch = ("spec.template.metadata.labels",
                        "Invalid value: \(goMap(template[["metadata", "labels"]]?.object == nil ? nil : labels)): `selector` does not match template `labels`")
        if absent(selectorJSON) {
            causes.append(mismatch)
        } else if let selector = LabelSelector(json: selectorJSON) {
            // An empty selector selects everything, and is refused above.
            if !selector.requirements.isEmpty && !selector.matches(labels) { causes.append(mismatch) }
        } else {
            causes.append(("spec.selector", "Invalid value: \(goSelector(selectorJSON)): invalid label selector"))
        }
        let containers = template[["spec", "containers"]]?.array ?? []
        if containers.isEmpty { causes.append(("spec.template.spec.containers", "Required value")) }
        var names = Set<String>()
        for (index, container) in containers.enumerated() {
            let path = "spec.template.spec.containers[\(index)]"
            if let name = container["name"]?.string, !name.isEmpty {
                if !KubeSimulator.isDNSLabel(name) {
                    causes.append(("\(path).name", "Invalid value: \"\(name)\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"))
                } else if !names.insert(name).inserted {
                    causes.append(("\(path).name", "Duplicate value: \"\(name)\""))
                }
            } else {
                causes.append(("\(path).name", "Required value"))
            }
            if (container["image"]?.string ?? "").isEmpty { causes.append(("\(path).image", "Required value")) }
        }
        if let policy = template[["spec", "restartPolicy"]]?.string, policy != "Always" {
            causes.append(("spec.template.spec.restartPolicy", "Unsupported value: \"\(policy)\": supported values: \"Always\""))
        }
        if kind == "deployments" {
            causes += strategyCauses(spec["strategy"] ?? .object([:]), replicas: replicas)
            if let minReady = spec["minReadySeconds"]?.int, minReady < 0 {
                causes.append(("spec.minReadySeconds", "Invalid value: \(minReady): must be greater than or equal to 0"))
            }
            if let limit = spec["revisionHistoryLimit"]?.int, limit < 0 {
                causes.append(("spec.revisionHistoryLimit", "Invalid value: \(limit): must be greater than or equal to 0"))
            }
            if let deadline = spec["progressDeadlineSeconds"]?.int {
                if deadline < 0 {
                    causes.append(("spec.progressDeadlineSeconds", "Invalid value: \(deadline): must be greater than or equal to 0"))
                }
                if deadline <= spec["minReadySeconds"]?.int ?? 0 {
                    causes.append(("spec.progressDeadlineSeconds", "Invalid value: \(deadline): must be greater than minReadySeconds"))
                }
            }
        }
        return causes
    }

    /// `ValidateLabelSelector`'s checks of the match expressions.
    static func selectorCauses(_ selector: JSON, path: String) -> [(String, String)] {
        var causes: [(String, String)] = []
        for (index, expression) in (selector["matchExpressions"]?.array ?? []).enumerated() {
            let field = "\(path).matchExpressions[\(index)]"
            let values = expression["values"]?.array ?? []
            switch expression["operator"]?.string ?? "" {
            case "In", "NotIn":
                if values.isEmpty { causes.append(("\(field).values", "Required value: must be specified when `operator` is 'In' or 'NotIn'")) }
            case "Exists", "DoesNotExist":
                if !values.isEmpty { causes.append(("\(field).values", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")) }
            case let other:
                causes.append(("\(field).operator", "Invalid value: \"\(other)\": not a valid selector operator"))
            }
        }
        return causes
    }

    /// `ValidateDeploymentStrategy` and `ValidateRollingUpdateDeployment`.
    static func strategyCauses(_ strategy: JSON, replicas: Int64) -> [(String, String)] {
        switch strategy["type"]?.string ?? "" {
        case "Recreate":
            if !absent(strategy["rollingUpdate"]) {
                return [("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")]
            }
            return []
        case "RollingUpdate":
            var causes: [(String, String)] = []
            let rolling = strategy["rollingUpdate"] ?? .object([:])
            var values: [String: Int64] = [:]
            for field in ["maxUnavailable", "maxSurge"] {
                let value = rolling[field]
                switch value {
                case .int(let number)?:
                    if number < 0 { causes.append(("spec.strategy.rollingUpdate.\(field)", "Invalid value: \(number): must be greater than or equal to 0")) }
                    values[field] = number
                case .string(let text)?:
                    if let percent = percentValue(text) {
                        values[field] = percent
                    } else {
                        causes.append(("spec.strategy.rollingUpdate.\(field)", "Invalid value: \"\(text)\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))
                    }
                default:
                    values[field] = 0
                }
            }
            if values["maxUnavailable"] == 0 && values["maxSurge"] == 0 {
                causes.append(("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: \(intOrString(rolling["maxUnavailable"])): may not be 0 when `maxSurge` is 0"))
            }
            if case .string(let text)? = rolling["maxUnavailable"], let percent = percentValue(text), percent > 100 {
                causes.append(("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: \"\(text)\": must not be greater than 100%"))
            }
            return causes
        case let other:
            return [("spec.strategy", "Unsupported value: apps.DeploymentStrategy{Type:\"\(other)\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"")]
        }
    }

    /// The number of a percent string (`25%`), nil when it is not one.
    static func percentValue(_ text: String) -> Int64? {
        guard text.hasSuffix("%"), text.count > 1, text.dropLast().allSatisfy(\.isNumber) else { return nil }
        return Int64(text.dropLast())
    }

    /// An IntOrString as validation messages print it.
    static func intOrString(_ value: JSON?) -> String {
        switch value {
        case .int(let number)?: return String(number)
        case .string(let text)?: return text
        default: return "0"
        }
    }

    /// Go's `%#v` of a `map[string]string`, as validation messages print label maps.
    static func goMap(_ map: [String: String]?) -> String {
        guard let map else { return "map[string]string(nil)" }
        return "map[string]string{" + map.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ", ") + "}"
    }

    /// Go's `%#v` of a `v1.LabelSelector`.
    static func goSelector(_ selector: JSON?) -> String {
        let labels = goMap(selector?["matchLabels"]?.object == nil ? nil : selector?["matchLabels"]?.stringMap)
        var expressions = "[]v1.LabelSelectorRequirement(nil)"
        if let list = selector?["matchExpressions"]?.array {
            expressions = "[]v1.LabelSelectorRequirement{" + list.map { expression in
                let values = expression["values"]?.array.map { "[]string{" + $0.compactMap(\.string).map { "\"\($0)\"" }.joined(separator: ", ") + "}" }
                    ?? "[]string(nil)"
                return "v1.LabelSelectorRequirement{Key:\"\(expression["key"]?.string ?? "")\", Operator:\"\(expression["operator"]?.string ?? "")\", Values:\(values)}"
            }.joined(separator: ", ") + "}"
        }
        return "v1.LabelSelector{MatchLabels:\(labels), MatchExpressions:\(expressions)}"
    }

    /// A `metav1.LabelSelector` as text (`app=web,tier in (a,b)`), requirements sorted by key as
    /// `labels.Selector.String()` prints them; nil when it has an operator that does not exist.
    static func selectorString(_ selector: JSON?) -> String? {
        guard let selector, selector != .null else { return "" }
        var terms: [(String, String)] = []
        for (key, value) in selector["matchLabels"]?.stringMap ?? [:] { terms.append((key, "\(key)=\(value)")) }
        for expression in selector["matchExpressions"]?.array ?? [] {
            let key = expression["key"]?.string ?? ""
            let values = (expression["values"]?.array ?? []).compactMap(\.string).sorted().joined(separator: ",")
            switch expression["operator"]?.string {
            case "In": terms.append((key, "\(key) in (\(values))"))
            case "NotIn": terms.append((key, "\(key) notin (\(values))"))
            case "Exists": terms.append((key, key))
            case "DoesNotExist": terms.append((key, "!\(key)"))
            default: return nil
            }
        }
        return terms.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: ",")
    }

    /// An Invalid (422) response listing every cause, bracketed when there are several, as
    /// kube-apiserver's aggregated field errors read.
    func invalidAll(_ resource: KubeResource, _ name: String, _ causes: [(String, String)], kind: String? = nil, group: String? = nil) -> Response {
        let kind = kind ?? resource.kind
        let group = group ?? resource.group
        let parts = causes.map { $0.0.isEmpty ? $0.1 : "\($0.0): \($0.1)" }
        let summary = parts.count == 1 ? parts[0] : "[" + parts.joined(separator: ", ") + "]"
        func reason(_ message: String) -> String {
            if message.hasPrefix("Required value") { return "FieldValueRequired" }
            if message.hasPrefix("Forbidden") { return "FieldValueForbidden" }
            if message.hasPrefix("Unsupported value") { return "FieldValueNotSupported" }
            if message.hasPrefix("Duplicate value") { return "FieldValueDuplicate" }
            if message.hasPrefix("Too long") { return "FieldValueTooLong" }
            return "FieldValueInvalid"
        }
        var details: JSON = [
            "name": .string(name), "kind": .string(kind),
            "causes": .array(causes.map { ["reason": .string(reason($0.1)), "message": .string($0.1), "field": .string($0.0)] }),
        ]
        // The core group is omitted (the field is omitempty).
        if !group.isEmpty { details["group"] = .string(group) }
        return status(.unprocessableContent, reason: "Invalid",
                      message: "\(kind)\(group.isEmpty ? "" : ".\(group)") \"\(name)\" is invalid: \(summary)", details: details)
    }

    // MARK: subresources

    /// `/apis/apps/v1/namespaces/{ns}/{deployments|replicasets}/{name}/{scale|status}`; nil for any
    /// other path. `scale` reads and writes `spec.replicas` through an `autoscaling/v1` Scale, as
    /// `kubectl scale` does; `status` writes change only the status (and, for Deployments,
    /// annotations), as the controllers write it.
    func subresource(_ request: Request, _ segments: [String]) async -> (String, Response)? {
        guard segments.count == 8, segments[0] == "apis", segments[3] == "namespaces",
              let resource = resource(group: segments[1], plural: segments[5]), resource.version == segments[2],
              resource.subresources.contains(where: { $0.name == segments[7] })
        else { return nil }
        let namespace = segments[4]
        let name = segments[6]
        let sub = segments[7]
        let verb: String
        switch request.method {
        case .get: verb = "get"
        case .put: verb = "update"
        case .patch: verb = "patch"
        default:
            return ("\(resource.plural).\(sub).unknown", status(.methodNotAllowed, reason: "MethodNotAllowed",
                                                                message: "the server does not allow this method on the requested resource",
                                                                details: .object([:])))
        }
        let operation = "\(resource.plural).\(sub).\(verb)"
        if let fault = await injectFault(operation) { return (operation, fault) }
        let body = (try? await bodyBytes(request)) ?? []
        let query = queryItems(request)
        guard let current = object(resource.plural, namespace: namespace, name: name) else {
            // Only reading a Scale names the subresource; writes fail on reading the object itself.
            if sub == "status" || verb != "get" { return (operation, notFound(resource, name)) }
            return (operation, status(.notFound, reason: "NotFound", message: "\(resource.plural)/scale.\(resource.group) \"\(name)\" not found",
                                      details: ["name": .string(name), "group": .string(resource.group), "kind": .string("\(resource.plural)/scale")]))
        }
        if sub == "status" {
            switch verb {
            case "get": return (operation, jsonResponse(.ok, current))
            case "update":
                return (operation, replace(resource, namespace: namespace, name: name, body: body, query: query, request: request, subresource: "status"))
            default:
                return (operation, patch(resource, namespace: namespace, name: name, body: body, query: query,
                                         contentType: request.headers[.contentType] ?? "", request: request, subresource: "status"))
            }
        }
        let scale: JSON
        switch verb {
        case "get":
            return (operation, jsonResponse(.ok, Self.scale(of: current)))
        case "update":
            guard let parsed = JSON.parse(body), parsed.object != nil else {
                return (operation, badRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"))
            }
            if let kind = parsed["kind"]?.string, kind != "Scale" {
                return (operation, badRequest("the kind of the object (\(kind)) does not match the kind of the URL (Scale)"))
            }
            if let bodyName = parsed[["metadata", "name"]]?.string, bodyName != name {
                return (operation, badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))"))
            }
            scale = parsed
        default:
            let type = (request.headers[.contentType] ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            let original = Self.scale(of: current)
            switch type {
            case "application/merge-patch+json", "application/strategic-merge-patch+json":
                guard let patch = JSON.parse(body), patch.object != nil else { return (operation, badRequest("the patch is not a JSON object")) }
                scale = type == "application/merge-patch+json" ? original.mergePatched(with: patch) : KubePatch.strategicMerge(original, patch)
            case "application/json-patch+json":
                guard let patch = JSON.parse(body), let patched = try? KubePatch.jsonPatch(original, patch) else {
                    return (operation, status(.unprocessableContent, reason: "Invalid", message: "the server rejected our request due to an error in our request"))
                }
                scale = patched
            case "application/apply-patch+yaml":
                guard let manager = query["fieldManager"], !manager.isEmpty else {
                    return (operation, status(.unprocessableContent, reason: "Invalid",
                                              message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                                              details: ["group": "meta.k8s.io", "kind": "PatchOptions", "causes": .array([[
                                                  "reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager",
                                              ]])]))
                }
                guard let applied = (try? Yams.load(yaml: String(decoding: body, as: UTF8.self))).map({ JSON.from(any: $0) }), applied.object != nil else {
                    return (operation, badRequest("error decoding YAML: the apply patch is not a YAML or JSON object"))
                }
                scale = KubePatch.applyMerge(original, applied)
            default:
                return (operation, status(.unsupportedMediaType, reason: "UnsupportedMediaType",
                                          message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"))
            }
        }
        let replicas = scale[["spec", "replicas"]]?.int ?? 0
        if replicas < 0 {
            return (operation, invalidAll(resource, name, [("spec.replicas", "Invalid value: \(replicas): must be greater than or equal to 0")],
                                          kind: "Scale", group: "autoscaling"))
        }
        let expectedRV = scale[["metadata", "resourceVersion"]]?.string
        let answer = update(resource, namespace: namespace, name: name, manager: manager(query, request), expectedRV: expectedRV) { current, _ in
            var changed = current
            changed[["spec", "replicas"]] = .int(replicas)
            return .success(changed)
        }
        guard answer.status == .ok, let updated = object(resource.plural, namespace: namespace, name: name) else { return (operation, answer) }
        return (operation, jsonResponse(.ok, Self.scale(of: updated)))
    }

    /// The `autoscaling/v1` Scale of a Deployment or ReplicaSet.
    static func scale(of object: JSON) -> JSON {
        var metadata: JSON = .object([:])
        for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            metadata[field] = object[["metadata", field]]
        }
        var spec: JSON = .object([:])
        if let replicas = object[["spec", "replicas"]]?.int, replicas != 0 { spec["replicas"] = .int(replicas) }
        return [
            "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata, "spec": spec,
            "status": ["replicas": .int(object[["status", "replicas"]]?.int ?? 0),
                       "selector": .string(selectorString(object[["spec", "selector"]]) ?? "")],
        ]
    }
}

extension LabelSelector {
    /// The selector of a `metav1.LabelSelector` (`matchLabels` and `matchExpressions`), as
    /// `LabelSelectorAsSelector` makes it; nil for a missing one (which selects nothing) or one
    /// with an unknown operator.
    init?(json: JSON?) {
        guard let json, json != .null else { return nil }
        var requirements: [Requirement] = []
        for (key, value) in json["matchLabels"]?.stringMap ?? [:] { requirements.append(.equals(key, value)) }
        for expression in json["matchExpressions"]?.array ?? [] {
            let key = expression["key"]?.string ?? ""
            let values = Set((expression["values"]?.array ?? []).compactMap(\.string))
            switch expression["operator"]?.string {
            case "In": requirements.append(.isIn(key, values))
            case "NotIn": requirements.append(.notIn(key, values))
            case "Exists": requirements.append(.exists(key))
            case "DoesNotExist": requirements.append(.notExists(key))
            default: return nil
            }
        }
        self.requirements = requirements
    }
}
