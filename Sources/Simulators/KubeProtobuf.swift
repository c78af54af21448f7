import Foundation
import HTTPTypes
import Hummingbird
import KubeProto
import SwiftProtobuf

/// Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), which kubectl's typed
/// commands (`create namespace`, `create serviceaccount`, `run`, `auth can-i`…) use for request
/// bodies: the envelope, the kinds it may carry, and the conversion of a decoded object to the JSON
/// the same object has on the wire, which is what the simulator's handlers read and store.
///
/// The JSON comes from walking the generated message with a `Visitor`, not from swift-protobuf's
/// proto3 JSON mapping, which would write int64 as strings and `Time` as `{seconds, nanos}`.
enum KubeProtobuf {
    /// The media type of protobuf bodies.
    static let mediaType = "application/vnd.kubernetes.protobuf"
    /// The four bytes every body starts with: "k8s\0".
    static let magic: [UInt8] = [0x6b, 0x38, 0x73, 0x00]

    /// Why a body could not be read.
    enum DecodeError: Error, Equatable {
        /// Not an envelope, or bytes that are not the message they should be.
        case malformed(String)
        /// An envelope whose kind the simulator does not know.
        case unregistered(apiVersion: String, kind: String)
        /// A `contentEncoding` (compression) the simulator does not undo.
        case unsupportedEncoding(String)
    }

    /// Whether a Content-Type header names the protobuf media type (parameters aside).
    static func isProtobuf(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == Self.mediaType
    }

    /// Decodes an envelope (magic, then a `runtime.Unknown`) into the object's JSON, with
    /// `apiVersion` and `kind` from the envelope's type meta.
    static func decode(_ body: some Collection<UInt8>) throws(DecodeError) -> JSON {
        guard body.starts(with: magic) else {
            throw .malformed("provided data does not appear to be a protobuf message, expected prefix \(magic)")
        }
        let unknown: K8s_Io_Apimachinery_Pkg_Runtime_Unknown
        do {
            unknown = try K8s_Io_Apimachinery_Pkg_Runtime_Unknown(serializedBytes: Array(body.dropFirst(magic.count)))
        } catch {
            throw .malformed("unable to decode the protobuf envelope: \(error)")
        }
        if !unknown.contentEncoding.isEmpty { throw .unsupportedEncoding(unknown.contentEncoding) }
        let apiVersion = unknown.typeMeta.apiVersion
        let kind = unknown.typeMeta.kind
        // An envelope may carry another encoding of the object; client-go never does this for
        // built-in kinds, but JSON is easy to honour.
        if !unknown.contentType.isEmpty, !isProtobuf(unknown.contentType) {
            guard unknown.contentType.hasPrefix("application/json"), var object = JSON.parse(unknown.raw), object.object != nil else {
                throw .malformed("unsupported content type \(unknown.contentType) inside the protobuf envelope")
            }
            if !apiVersion.isEmpty { object["apiVersion"] = .string(apiVersion) }
            if !kind.isEmpty { object["kind"] = .string(kind) }
            return object
        }
        guard let type = messageType(apiVersion: apiVersion, kind: kind) else {
            throw .unregistered(apiVersion: apiVersion, kind: kind)
        }
        var object: JSON
        do {
            object = try json(decoding: type, from: unknown.raw)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw .malformed("unable to decode \(kind): \(error)")
        }
        object["apiVersion"] = .string(apiVersion)
        object["kind"] = .string(kind)
        return object
    }

    /// The message type of a kind, by the envelope's (apiVersion, kind): the kinds the simulator
    /// serves or may soon serve, and the options kubectl sends with deletes.
    static func messageType(apiVersion: String, kind: String) -> (any Message.Type)? {
        // DeleteOptions are registered in every group version (and in meta.k8s.io/v1).
        if kind == "DeleteOptions" { return K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_DeleteOptions.self }
        switch (apiVersion, kind) {
        case ("v1", "Namespace"): return K8s_Io_Api_Core_V1_Namespace.self
        case ("v1", "Pod"): return K8s_Io_Api_Core_V1_Pod.self
        case ("v1", "ServiceAccount"): return K8s_Io_Api_Core_V1_ServiceAccount.self
        case ("v1", "ConfigMap"): return K8s_Io_Api_Core_V1_ConfigMap.self
        case ("v1", "Secret"): return K8s_Io_Api_Core_V1_Secret.self
        case ("v1", "Event"): return K8s_Io_Api_Core_V1_Event.self
        case ("v1", "Service"): return K8s_Io_Api_Core_V1_Service.self
        case ("v1", "Endpoints"): return K8s_Io_Api_Core_V1_Endpoints.self
        case ("v1", "Node"): return K8s_Io_Api_Core_V1_Node.self
        case ("v1", "Binding"): return K8s_Io_Api_Core_V1_Binding.self
        case ("apps/v1", "Deployment"): return K8s_Io_Api_Apps_V1_Deployment.self
        case ("apps/v1", "ReplicaSet"): return K8s_Io_Api_Apps_V1_ReplicaSet.self
        case ("apps/v1", "StatefulSet"): return K8s_Io_Api_Apps_V1_StatefulSet.self
        case ("apps/v1", "DaemonSet"): return K8s_Io_Api_Apps_V1_DaemonSet.self
        case ("apps/v1", "ControllerRevision"): return K8s_Io_Api_Apps_V1_ControllerRevision.self
        case ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): return K8s_Io_Api_Authorization_V1_SelfSubjectAccessReview.self
        case ("authorization.k8s.io/v1", "SubjectAccessReview"): return K8s_Io_Api_Authorization_V1_SubjectAccessReview.self
        case ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): return K8s_Io_Api_Authorization_V1_LocalSubjectAccessReview.self
        case ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): return K8s_Io_Api_Authorization_V1_SelfSubjectRulesReview.self
        case ("authentication.k8s.io/v1", "TokenRequest"): return K8s_Io_Api_Authentication_V1_TokenRequest.self
        case ("authentication.k8s.io/v1", "TokenReview"): return K8s_Io_Api_Authentication_V1_TokenReview.self
        case ("authentication.k8s.io/v1", "SelfSubjectReview"): return K8s_Io_Api_Authentication_V1_SelfSubjectReview.self
        default: return nil
        }
    }

    /// Decodes `raw` as a `type` and converts it.
    static func json<M: Message>(decoding type: M.Type, from raw: Data) throws -> JSON {
        try json(M(serializedBytes: raw))
    }

    // MARK: message → JSON

    /// The Kubernetes JSON form of a message: the special apimachinery types as their JSON
    /// counterparts, any other message as an object of its set fields.
    static func json(_ message: any Message) throws -> JSON {
        switch message {
        case let time as K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Time:
            return timestamp(seconds: time.seconds, nanos: time.nanos, isSet: time.hasSeconds || time.hasNanos, micro: false)
        case let time as K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_MicroTime:
            return timestamp(seconds: time.seconds, nanos: time.nanos, isSet: time.hasSeconds || time.hasNanos, micro: true)
        case let quantity as K8s_Io_Apimachinery_Pkg_Api_Resource_Quantity:
            return .string(quantity.hasString ? quantity.string : "0")
        case let quantity as K8s_Io_Apimachinery_Pkg_Api_Resource_QuantityValue:
            return .string(quantity.hasString ? quantity.string : "0")
        case let value as K8s_Io_Apimachinery_Pkg_Util_Intstr_IntOrString:
            return value.type == 1 ? .string(value.strVal) : .int(Int64(value.intVal))
        case let duration as K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Duration:
            return .string(goDuration(duration.duration))
        case let raw as K8s_Io_Apimachinery_Pkg_Runtime_RawExtension:
            return try embedded(raw.raw, isSet: raw.hasRaw)
        case let fields as K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_FieldsV1:
            return try embedded(fields.raw, isSet: fields.hasRaw)
        // Wrappers that exist only so that protobuf can carry a []string as a map value or a
        // nullable list; their JSON is the list.
        case let verbs as K8s_Io_Apimachinery_Pkg_Apis_Meta_V1_Verbs:
            return .array(verbs.items.map { .string($0) })
        case let extra as K8s_Io_Api_Authorization_V1_ExtraValue:
            return .array(extra.items.map { .string($0) })
        case let extra as K8s_Io_Api_Authentication_V1_ExtraValue:
            return .array(extra.items.map { .string($0) })
        case let attestation as K8s_Io_Api_Authentication_V1_AttestationValue:
            return .array(attestation.items.map { .string($0) })
        default:
            var visitor = ObjectVisitor(names: FieldNames(type(of: message)))
            try message.traverse(visitor: &visitor)
            return .object(visitor.members)
        }
    }

    /// `Time` as RFC 3339 in UTC to the second (`MicroTime`: to the microsecond); a zero time
    /// (Go sends an empty message for it) is `null`, as Go writes it in JSON.
    static func timestamp(seconds: Int64, nanos: Int32, isSet: Bool, micro: Bool) -> JSON {
        guard isSet else { return .null }
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        let whole = date.formatted(Date.ISO8601FormatStyle())
        guard micro else { return .string(whole) }
        let micros = String(Int(nanos) / 1000)
        return .string(String(whole.dropLast()) + "." + String(repeating: "0", count: max(0, 6 - micros.count)) + micros + "Z")
    }

    /// An embedded object (`RawExtension`, `FieldsV1`): JSON, or a protobuf envelope of its own.
    static func embedded(_ raw: Data, isSet: Bool) throws -> JSON {
        guard isSet, !raw.isEmpty else { return .null }
        if raw.starts(with: magic) { return try decode(raw) }
        guard let value = JSON.parse(raw) else { throw DecodeError.malformed("an embedded object is neither JSON nor protobuf") }
        return value
    }

    /// Go's `time.Duration.String()`: `1h2m3s`, `1.5s`, `300ms`, `0s`.
    static func goDuration(_ nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        let sign = nanoseconds < 0 ? "-" : ""
        let total = nanoseconds.magnitude
        func fraction(_ value: UInt64, _ unit: UInt64) -> String {
            let whole = value / unit
            var rest = String(value % unit)
            let digits = String(unit - 1).count
            rest = String(repeating: "0", count: digits - rest.count) + rest
            while rest.hasSuffix("0") { rest.removeLast() }
            return rest.isEmpty ? "\(whole)" : "\(whole).\(rest)"
        }
        if total < 1_000 { return "\(sign)\(total)ns" }
        if total < 1_000_000 { return "\(sign)\(fraction(total, 1_000))µs" }
        if total < 1_000_000_000 { return "\(sign)\(fraction(total, 1_000_000))ms" }
        let hours = total / 3_600_000_000_000
        let minutes = total / 60_000_000_000 % 60
        let seconds = fraction(total % 60_000_000_000, 1_000_000_000) + "s"
        if hours > 0 { return "\(sign)\(hours)h\(minutes)m\(seconds)" }
        if minutes > 0 { return "\(sign)\(minutes)m\(seconds)" }
        return sign + seconds
    }

    /// JSON of a map value or list element that is not a message.
    static func scalar(_ value: Any) -> JSON {
        switch value {
        case let value as String: return .string(value)
        case let value as Data: return .string(value.base64EncodedString())
        case let value as Bool: return .bool(value)
        case let value as Int32: return .int(Int64(value))
        case let value as Int64: return .int(value)
        case let value as UInt32: return .int(Int64(value))
        case let value as UInt64: return Int64(exactly: value).map { .int($0) } ?? .double(Double(value))
        case let value as Float: return .double(Double(value))
        case let value as Double: return .double(value)
        default: return .string("\(value)")
        }
    }

    /// A message type's field names, from its generated `_protobuf_nameMap`; these are the JSON
    /// names, bar the few the Kubernetes schemas spell differently, and the embedded structs
    /// that JSON inlines.
    fileprivate struct FieldNames {
        let lookup: (Int) -> String?
        let inlined: Set<Int>
        let serverSetWhenZero: Set<Int>

        init(_ type: any Message.Type) {
            inlined = Self.inlineFields[type.protoMessageName] ?? []
            serverSetWhenZero = Self.serverSetFields[type.protoMessageName] ?? []
            guard let named = type as? any (Message & _ProtoNameProviding).Type else {
                lookup = { _ in nil }
                return
            }
            let overrides = Self.jsonNameOverrides[type.protoMessageName] ?? [:]
            lookup = { number in overrides[number] ?? Self.protoName(named, number) }
        }

        func callAsFunction(_ number: Int) -> String? { lookup(number) }

        // The name map is only public through the FieldMask utilities (swift-protobuf's default
        // FieldMaskUtilities trait).
        static func protoName<M: Message & _ProtoNameProviding>(_ type: M.Type, _ number: Int) -> String? {
            (try? Google_Protobuf_FieldMask(fieldNumbers: [number], of: type))?.paths.first
        }

        /// Fields whose protobuf name is not their JSON name (Go: `json:"uid"`, `protobuf:"name=uID"`).
        static let jsonNameOverrides: [String: [Int: String]] = [
            "k8s.io.api.authentication.v1.BoundObjectReference": [4: "uid"],
        ]

        /// Numbers only the server sets, whose 0 from a client just means "unset": every object
        /// kubectl sends carries `metadata.generation: 0` (pod templates too), which a real
        /// server's JSON never shows.
        static let serverSetFields: [String: Set<Int>] = [
            "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta": [7],
        ]

        /// Go structs embedded with `json:",inline"`: a field in protobuf, their members spliced
        /// into the parent in JSON (`readinessProbe.httpGet`, not `readinessProbe.handler.httpGet`).
        static let inlineFields: [String: Set<Int>] = [
            "k8s.io.api.core.v1.Probe": [1],
            "k8s.io.api.core.v1.Volume": [2],
            "k8s.io.api.core.v1.PersistentVolumeSpec": [2],
            "k8s.io.api.core.v1.EphemeralContainer": [1],
            "k8s.io.api.core.v1.VolumeMountStatus": [5],
            "k8s.io.api.core.v1.ConfigMapEnvSource": [1],
            "k8s.io.api.core.v1.ConfigMapKeySelector": [1],
            "k8s.io.api.core.v1.ConfigMapProjection": [1],
            "k8s.io.api.core.v1.ConfigMapVolumeSource": [1],
            "k8s.io.api.core.v1.SecretEnvSource": [1],
            "k8s.io.api.core.v1.SecretKeySelector": [1],
            "k8s.io.api.core.v1.SecretProjection": [1],
        ]
    }

    /// Collects a message's set fields as JSON members. Unset fields are not visited, so they are
    /// omitted. Empty strings are omitted too: Go sends every non-pointer string, set or not, and
    /// `""` is how an unset one arrives (in JSON, `omitempty` drops it). Numbers and booleans are
    /// kept even when zero, because for pointer fields (`replicas: 0`, `runAsUser: 0`,
    /// `automountServiceAccountToken: false`) the zero is meaningful, and the schema does not say
    /// which fields are pointers; a non-pointer zero means the same as an absent field, so the
    /// cost is cosmetic (`paused: false`, `stdin: false` where a real server's JSON shows none).
    /// `metadata.generation` is the one zero dropped (`serverSetFields`).
    fileprivate struct ObjectVisitor: Visitor {
        let names: FieldNames
        var members: [String: JSON] = [:]

        init(names: FieldNames) {
            self.names = names
        }

        mutating func set(_ number: Int, _ value: JSON) {
            guard let name = names(number) else { return }
            members[name] = value
        }

        mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws { set(fieldNumber, .double(value)) }
        mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {
            if value == 0, names.serverSetWhenZero.contains(fieldNumber) { return }
            set(fieldNumber, .int(value))
        }
        mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws { set(fieldNumber, KubeProtobuf.scalar(value)) }
        mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws { set(fieldNumber, .bool(value)) }
        mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {
            if !value.isEmpty { set(fieldNumber, .string(value)) }
        }
        mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {
            if !value.isEmpty { set(fieldNumber, .string(value.base64EncodedString())) }
        }
        mutating func visitSingularEnumField<E: Enum>(value: E, fieldNumber: Int) throws { set(fieldNumber, .int(Int64(value.rawValue))) }
        mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws {
            let member = try KubeProtobuf.json(value)
            if names.inlined.contains(fieldNumber), let inlined = member.object {
                members.merge(inlined) { _, embedded in embedded }
            } else {
                set(fieldNumber, member)
            }
        }
        mutating func visitSingularGroupField<G: Message>(value: G, fieldNumber: Int) throws { set(fieldNumber, try KubeProtobuf.json(value)) }

        mutating func visitRepeatedFloatField(value: [Float], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedDoubleField(value: [Double], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedInt32Field(value: [Int32], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedInt64Field(value: [Int64], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedUInt32Field(value: [UInt32], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedUInt64Field(value: [UInt64], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedSInt32Field(value: [Int32], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedSInt64Field(value: [Int64], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedFixed32Field(value: [UInt32], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedFixed64Field(value: [UInt64], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedSFixed32Field(value: [Int32], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedSFixed64Field(value: [Int64], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedBoolField(value: [Bool], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedStringField(value: [String], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedBytesField(value: [Data], fieldNumber: Int) throws { set(fieldNumber, .array(value.map { KubeProtobuf.scalar($0) })) }
        mutating func visitRepeatedEnumField<E: Enum>(value: [E], fieldNumber: Int) throws {
            set(fieldNumber, .array(value.map { .int(Int64($0.rawValue)) }))
        }
        mutating func visitRepeatedMessageField<M: Message>(value: [M], fieldNumber: Int) throws {
            set(fieldNumber, .array(try value.map { try KubeProtobuf.json($0) }))
        }
        mutating func visitRepeatedGroupField<G: Message>(value: [G], fieldNumber: Int) throws {
            set(fieldNumber, .array(try value.map { try KubeProtobuf.json($0) }))
        }

        mutating func visitMapField<KeyType, ValueType: MapValueType>(
            fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
        ) throws {
            set(fieldNumber, .object(Dictionary(value.map { ("\($0.key)", KubeProtobuf.scalar($0.value)) }) { first, _ in first }))
        }

        mutating func visitMapField<KeyType, ValueType>(
            fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int
        ) throws where ValueType.RawValue == Int {
            set(fieldNumber, .object(Dictionary(value.map { ("\($0.key)", .int(Int64($0.value.rawValue))) }) { first, _ in first }))
        }

        mutating func visitMapField<KeyType, ValueType>(
            fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType,
            fieldNumber: Int
        ) throws {
            set(fieldNumber, .object(Dictionary(try value.map { ("\($0.key)", try KubeProtobuf.json($0.value)) }) { first, _ in first }))
        }

        // Fields newer than the schema: a real API server of this schema's version drops them too.
        mutating func visitUnknown(bytes: Data) throws {}
    }
}

extension KubeSimulator {
    /// The body of a create, update or delete (or a review) as JSON bytes: protobuf bodies are
    /// converted, others are returned as they came. Patches are left alone (kubectl sends them as
    /// JSON, and a patch is not an object). A failure is the Status to answer, worded as
    /// kube-apiserver words it.
    func requestBody(_ request: Request, kind: String, customResource: Bool = false) async -> Result<[UInt8], ErrorResponse> {
        let body = (try? await bodyBytes(request)) ?? []
        guard KubeProtobuf.isProtobuf(request.headers[.contentType]), request.method != .patch, !body.isEmpty else {
            return .success(body)
        }
        if customResource {
            return .failure(ErrorResponse(status(.unsupportedMediaType, reason: "UnsupportedMediaType",
                                                 message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")))
        }
        do {
            return .success(Array(try KubeProtobuf.decode(body).data))
        } catch {
            return .failure(ErrorResponse(badRequest(Self.protobufDecodeMessage(error, expectedKind: kind, body: body))))
        }
    }

    /// kube-apiserver's message for a body it cannot decode (`transformDecodeError`).
    static func protobufDecodeMessage(_ error: KubeProtobuf.DecodeError, expectedKind: String, body: [UInt8]) -> String {
        switch error {
        case .unregistered(let apiVersion, let kind):
            let version = apiVersion.split(separator: "/").last.map(String.init) ?? apiVersion
            return "\(kind) in version \"\(version)\" cannot be handled as a \(expectedKind): no kind \"\(kind)\" is registered for version \"\(apiVersion)\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        case .malformed(let reason):
            let summary = body.isEmpty ? "<empty>"
                : body.prefix(30).map { String(format: "%02x", $0) }.joined() + (body.count > 30 ? " ..." : "")
            return "the object provided is unrecognized (must be of type \(expectedKind)): \(reason) (\(summary))"
        case .unsupportedEncoding(let encoding):
            return "the object provided is unrecognized (must be of type \(expectedKind)): unsupported content encoding \"\(encoding)\" in the protobuf envelope"
        }
    }

    /// The request log's copy of a body: protobuf bodies as the JSON they were read as.
    func loggedKubeBody(_ request: Request) async -> String? {
        guard KubeProtobuf.isProtobuf(request.headers[.contentType]) else { return await loggedBody(request) }
        guard let bytes = try? await bodyBytes(request), let object = try? KubeProtobuf.decode(bytes) else {
            return await loggedBody(request)
        }
        return String(decoding: object.data.prefix(65_536), as: UTF8.self)
    }
}
