@testable import Cloud
import Core
import Foundation
@testable import Simulators
import Testing

/// Server-side apply bodies are read by kube-apiserver as YAML 1.1 (go-yaml v2). Yams accepts
/// escapes that go-yaml does not (`\/` among them), so a Yams round trip proves nothing: these tests
/// check the bytes themselves, and that the simulator refuses what the real server refuses.
@Suite("Apply bodies and YAML 1.1", .timeLimit(.minutes(2)))
struct KubeApplyBodyTests {
    /// The escapes go-yaml v2 knows after a backslash in a double-quoted scalar, written out here
    /// independently of the simulator's table.
    static let yaml11Escapes: Set<Character> = ["0", "a", "b", "t", "\t", "n", "v", "f", "r", "e", " ", "\"", "'", "\\", "N", "_", "L", "P", "x", "u", "U"]

    /// Every character that follows a backslash in `text`.
    static func escapes(_ text: String) -> [Character] {
        var found: [Character] = []
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            if character == "\\", let next = iterator.next() { found.append(next) }
        }
        return found
    }

    static let resourceID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/podid-dev/providers/Microsoft.ManagedIdentity/userAssignedIdentities/payments-api"

    /// Every kind podid applies, as podid builds it (with slashes, quotes, backslashes and control
    /// characters where a field allows any text).
    static var appliedObjects: [(String, JSONValue)] {
        var identity = AzureIdentityObject(name: "payments-api", namespace: "aad-broker",
                                           labels: [PodidLabels.managedBy: "podid", "podid.io/team": "payments"],
                                           resourceID: resourceID, clientID: "11111111-1111-1111-1111-111111111111").json
        if case .object(var members) = identity, case .object(var metadata)? = members["metadata"] {
            metadata["annotations"] = .object(["podid.io/note": .string("a \"quoted\" C:\\path\tand\u{1}control / slash")])
            members["metadata"] = .object(metadata)
            identity = .object(members)
        }
        let binding = AzureIdentityBindingObject(name: "payments-api-web", namespace: "aad-broker",
                                                 labels: [PodidLabels.managedBy: "podid", "podid.io/binding": "web"],
                                                 azureIdentity: "payments-api", selector: "payments-api").json
        return [("AzureIdentity", identity), ("AzureIdentityBinding", binding)]
    }

    @Test("every apply body podid sends uses only escapes YAML 1.1 knows, and still says the same as JSON")
    func applyBodiesAreYAML11() throws {
        for (kind, object) in Self.appliedObjects {
            let body = KubeClient.body(object)
            let text = String(decoding: body, as: UTF8.self)
            #expect(text.contains("/subscriptions/") || kind != "AzureIdentity", "slashes are written as slashes: \(text)")
            let unknown = Self.escapes(text).filter { !Self.yaml11Escapes.contains($0) }
            #expect(unknown.isEmpty, "\(kind): escapes YAML 1.1 lacks: \(unknown) in \(text)")
            #expect(!text.contains("\\/"), "\(kind): \(text)")
            #expect(JSONValue.parse(bytes: body) == object, "\(kind): the body decodes to the object")
        }
    }

    @Test("the simulator's go-yaml check: unknown escapes in double-quoted scalars only, with go-yaml's line numbers")
    func goYAMLCheck() {
        #expect(GoYAML.unknownEscape(in: Array(#"{"a":"x\/y"}"#.utf8)) == "yaml: found unknown escape character")
        #expect(GoYAML.unknownEscape(in: Array("a: 1\nb: \"x\\/y\"\n".utf8)) == "yaml: line 2: found unknown escape character")
        #expect(GoYAML.unknownEscape(in: Array(#"{"a":"x\"\\\n\t\u00e9\/"}"#.utf8)) != nil, "the last escape is unknown")
        #expect(GoYAML.unknownEscape(in: Array(#"{"a":"x\"\\\n\t\u00e9/"}"#.utf8)) == nil)
        #expect(GoYAML.unknownEscape(in: Array("a: 'C:\\/path'\nb: C:\\/x\n# \"\\/\"\nc: it\"s \\/\n".utf8)) == nil,
                "single-quoted and plain scalars and comments have no escapes")
    }

    @Test("the simulator answers an apply body with \\/ as kube-apiserver does: 400 BadRequest from the YAML decoder")
    func simulatorRefusesJSONSlashEscape() async throws {
        try await withSimulators { sims in
            let url = "\(sims.kubeURL)/apis/aadpodidentity.k8s.io/v1/namespaces/aad-broker/azureidentities/escaped?fieldManager=someone"
            let escaped = #"{"apiVersion":"aadpodidentity.k8s.io\/v1","kind":"AzureIdentity","metadata":{"name":"escaped","namespace":"aad-broker"},"spec":{"type":0,"resourceID":"\/subscriptions\/x","clientID":"c"}}"#
            let refused = try await send("PATCH", url, body: escaped, contentType: "application/apply-patch+yaml")
            #expect(refused.status == 400)
            #expect(refused.json["reason"]?.string == "BadRequest")
            #expect(refused.json["message"]?.string == "error decoding YAML: error converting YAML to JSON: yaml: found unknown escape character")
            let plain = escaped.replacingOccurrences(of: "\\/", with: "/")
            #expect(try await send("PATCH", url, body: plain, contentType: "application/apply-patch+yaml").status == 201)
        }
    }

    @Test("the Kubernetes client sends apply bodies without \\/ (read from the simulator's request log)")
    func clientSendsNoSlashEscape() async throws {
        try await KubeClientTests.withKube { (sims: RunningSimulators, kube: KubeClient) async throws in
            _ = try await kube.apply(.azureIdentity, KubeClientTests.identity("slashes").json, force: true)
            let apply = try #require(sims.kube.requestLog.all.first { $0.operation == "azureidentities.patch" })
            let body = try #require(apply.body)
            #expect(body.contains("/subscriptions/") && !body.contains("\\/"), "\(body)")
        }
    }
}
