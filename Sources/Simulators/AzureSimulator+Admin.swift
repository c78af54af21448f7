import Foundation
import HTTPTypes
import Hummingbird

extension AzureSimulator {
    /// `/_sim/…`: fault switches, settings, seeds and the request log.
    func admin(_ request: Request, _ path: [String]) async -> Response {
        let body = (try? await bodyBytes(request)) ?? []
        switch (request.method, path.first ?? "") {
        case (.get, "requests"):
            let records = requestLog.all.filter { !$0.path.hasPrefix("/_sim") }
            return jsonResponse(.ok, JSON.parse((try? JSONEncoder().encode(records)) ?? Data()) ?? .array([]))
        case (.delete, "requests"):
            requestLog.clear()
            return Response(status: .noContent)
        case (.get, "settings"):
            return jsonResponse(.ok, JSON.parse((try? JSONEncoder().encode(currentSettings)) ?? Data()) ?? .null)
        case (.put, "settings"), (.patch, "settings"):
            guard let patch = JSON.parse(body), patch.object != nil else { return adminError("the body must be a JSON object of settings") }
            let current = JSON.parse((try? JSONEncoder().encode(currentSettings)) ?? Data()) ?? .null
            guard let merged = try? JSONDecoder().decode(Settings.self, from: current.mergePatched(with: patch).data) else {
                return adminError("unknown or mistyped settings; see GET /_sim/settings")
            }
            configure { $0 = merged }
            return jsonResponse(.ok, JSON.parse((try? JSONEncoder().encode(merged)) ?? Data()) ?? .null)
        case (.post, "resourcegroups"):
            guard let group = JSON.parse(body), let subscription = group["subscription"]?.string, let name = group["name"]?.string else {
                return adminError(#"the body must be {"subscription": "...", "name": "...", "location": "..."}"#)
            }
            seedResourceGroup(subscription: subscription, name: name, location: group["location"]?.string ?? "westeurope")
            return Response(status: .noContent)
        case (.post, "principals"):
            guard let principal = JSON.parse(body)?["principalId"]?.string else { return adminError(#"the body must be {"principalId": "..."}"#) }
            seedPrincipal(principal)
            return Response(status: .noContent)
        case (.get, "identities"):
            return jsonResponse(.ok, .array(store.all("identities").sorted { $0.key < $1.key }.map { Self.identityBody($0.value) }))
        case (.delete, "identities"):
            // An identity deleted behind podid's back: /_sim/identities/{subscription}/{group}/{name}.
            guard path.count == 4 else { return adminError("use DELETE /_sim/identities/{subscription}/{resourceGroup}/{name}") }
            let key = Self.identityKey(path[1], path[2], path[3])
            guard store.get("identities", key) != nil else { return jsonResponse(.notFound, ["error": "no such identity"]) }
            store.set("identities", key, nil)
            return Response(status: .noContent)
        case (.get, "roleassignments"):
            return jsonResponse(.ok, .array(store.all("roleAssignments").sorted { $0.key < $1.key }.map(\.value)))
        default:
            return jsonResponse(.notFound, ["error": .string("unknown simulator admin path /_sim/\(path.joined(separator: "/"))")])
        }
    }

    func adminError(_ message: String) -> Response {
        jsonResponse(.badRequest, ["error": .string(message)])
    }
}
