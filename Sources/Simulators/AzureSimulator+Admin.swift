import Foundation
import HTTPTypes
import Hummingbird

extension AzureSimulator {
    /// `/_sim/…`: fault switches, settings, seeds and the request log.
    func admin(_ request: Request, _ path: [String]) async -> Response {
        let body = (try? await bodyBytes(request)) ?? []
        if let common = commonAdmin(request.method, path.first ?? "", body: body, log: requestLog, current: currentSettings,
                                    apply: { settings in configure { $0 = settings } }) {
            return common
        }
        switch (request.method, path.first ?? "") {
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
