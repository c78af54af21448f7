import API
import ArgumentParser
import Crypto
import Foundation
import Yams

/// `podid apply -f onboarding.yaml`: a team's identities and bindings (and, for admins, the team and
/// its policy) made to match a file, with a plan first.
struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a team's identities and bindings match a file (create, update, and with --prune delete).",
        discussion: """
            The file (YAML):
              team: payments              # or, for admins, the team itself:
              # team: {name: payments, displayName: Payments, policy: {...}}
              identities:
                - name: orders-api
                  subscriptionId: 00000000-0000-0000-0000-000000000000
                  resourceGroup: podid-dev
                  location: westeurope
                  grants: [{role: Reader, scope: /subscriptions/…/resourceGroups/podid-dev}]
                  bindings:
                    - {name: api, cluster: local, selector: payments-api}
            A plan (create / update / delete / unchanged) is printed before anything changes; a second run
            prints only `unchanged`. Changes use Idempotency-Key and If-Match.
            Examples:
              podid apply -f docs/examples/onboarding.yaml --dry-run
              podid apply -f docs/examples/onboarding.yaml --wait
              podid apply -f onboarding.yaml --prune
            Exit codes: 0 done (and with --wait, everything ready); 1 an API error or a failed job; 64 a bad file or option.
            """)

    @Option(name: .shortAndLong, help: "The file to apply.")
    var file: String
    @Flag(help: "Print the plan, change nothing.")
    var dryRun = false
    @Flag(help: "Wait until every identity and binding is ready (or a job fails).")
    var wait = false
    @Flag(help: "Delete the team's identities and bindings the file does not list.")
    var prune = false
    @Option(help: "How long --wait waits, in seconds.")
    var timeout: Int = 600

    struct Plan {
        enum Action: String { case create, update, delete, unchanged }
        var steps: [(action: Action, what: String, run: () async throws -> Void)] = []
        mutating func add(_ action: Action, _ what: String, _ run: @escaping () async throws -> Void = {}) {
            steps.append((action, what, run))
        }
    }

    func run() async throws {
        let document: [String: Any]
        guard FileManager.default.isReadableFile(atPath: file) else { throw ValidationError("cannot read \(file): no such file") }
        do {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            guard let loaded = try Yams.load(yaml: text) as? [String: Any] else { throw ValidationError("\(file) is not a YAML mapping") }
            document = loaded
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("cannot read \(file): \(error)")
        }
        let client = APIClient(try ClientConfig.load())
        let teamSpec = document["team"]
        let teamName: String
        var plan = Plan()
        switch teamSpec {
        case let name as String:
            teamName = name
        case let spec as [String: Any]:
            guard let name = spec["name"] as? String else { throw ValidationError("team.name is required") }
            teamName = name
            try await planTeam(spec, client: client, plan: &plan)
        default:
            throw ValidationError("the file needs `team:` (a name, or an object with name and policy)")
        }
        guard let identities = (document["identities"] ?? []) as? [[String: Any]] else {
            throw ValidationError("`identities:` must be a list")
        }
        var touched: [(String, String?)] = []
        let existing = (try? await client.all { limit, cursor in
            try await client.call { try await $0.listIdentities(path: .init(team: teamName), query: .init(limit: limit, cursor: cursor)) }
        }) ?? []
        let existingByName = Dictionary(existing.compactMap { item in (item["name"] as? String).map { ($0, item) } }, uniquingKeysWith: { a, _ in a })
        for spec in identities {
            guard let name = spec["name"] as? String else { throw ValidationError("every identity needs a name") }
            let body = spec.filter { $0.key != "bindings" }
            if let current = existingByName[name] {
                var patch: [String: Any] = [:]
                for key in ["tags", "grants", "deletionPolicy"] where body[key] != nil {
                    if !Self.same(body[key], current[key], key: key) { patch[key] = body[key] }
                }
                if patch.isEmpty {
                    plan.add(.unchanged, "identity \(teamName)/\(name)")
                } else {
                    let etag = "\"\(text(current["generation"]))\""
                    let body = try Self.body(Components.Schemas.IdentityPatch.self, patch, what: "identity \(name)")
                    plan.add(.update, "identity \(teamName)/\(name) (\(patch.keys.sorted().joined(separator: ", ")))") {
                        _ = try await client.call {
                            try await $0.updateIdentity(path: .init(team: teamName, identity: name), headers: .init(ifMatch: etag), body: .json(body))
                        }
                    }
                }
            } else {
                let create = try Self.body(Components.Schemas.IdentityCreate.self, body, what: "identity \(name)")
                plan.add(.create, "identity \(teamName)/\(name)") {
                    _ = try await client.call {
                        try await $0.createIdentity(path: .init(team: teamName), headers: .init(idempotencyKey: Self.key("identity", teamName, body)),
                                                    body: .json(create))
                    }
                }
            }
            touched.append((name, nil))
            let bindings = (spec["bindings"] ?? []) as? [[String: Any]] ?? []
            let current = existingByName[name] == nil ? [] : ((try? await client.all { limit, cursor in
                try await client.call {
                    try await $0.listBindings(path: .init(team: teamName, identity: name), query: .init(limit: limit, cursor: cursor))
                }
            }) ?? [])
            let currentByName = Dictionary(current.compactMap { item in (item["name"] as? String).map { ($0, item) } }, uniquingKeysWith: { a, _ in a })
            for binding in bindings {
                guard let bindingName = binding["name"] as? String else { throw ValidationError("every binding of \(name) needs a name") }
                if let now = currentByName[bindingName] {
                    if let selector = binding["selector"] as? String, selector != now["selector"] as? String {
                        let etag = "\"\(text(now["generation"]))\""
                        plan.add(.update, "binding \(teamName)/\(name)/\(bindingName) (selector)") {
                            _ = try await client.call {
                                try await $0.updateBinding(path: .init(team: teamName, identity: name, binding: bindingName), headers: .init(ifMatch: etag),
                                                           body: .json(.init(selector: selector)))
                            }
                        }
                    } else {
                        plan.add(.unchanged, "binding \(teamName)/\(name)/\(bindingName)")
                    }
                } else {
                    let create = try Self.body(Components.Schemas.BindingCreate.self, binding, what: "binding \(name)/\(bindingName)")
                    plan.add(.create, "binding \(teamName)/\(name)/\(bindingName)") {
                        _ = try await client.call {
                            try await $0.createBinding(path: .init(team: teamName, identity: name),
                                                       headers: .init(idempotencyKey: Self.key("binding", "\(teamName)/\(name)", binding)), body: .json(create))
                        }
                    }
                }
                touched.append((name, bindingName))
            }
            if prune {
                let wanted = Set(bindings.compactMap { $0["name"] as? String })
                for (bindingName, _) in currentByName where !wanted.contains(bindingName) {
                    plan.add(.delete, "binding \(teamName)/\(name)/\(bindingName)") {
                        _ = try await client.call(allow: [404]) {
                            try await $0.deleteBinding(path: .init(team: teamName, identity: name, binding: bindingName))
                        }
                    }
                }
            }
        }
        if prune {
            let wanted = Set(identities.compactMap { $0["name"] as? String })
            for name in existingByName.keys.sorted() where !wanted.contains(name) {
                plan.add(.delete, "identity \(teamName)/\(name) (and its bindings)") {
                    _ = try await client.call(allow: [404]) {
                        try await $0.deleteIdentity(path: .init(team: teamName, identity: name), query: .init(cascade: true))
                    }
                }
            }
        }

        for step in plan.steps { print("\(step.action.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(step.what)") }
        let changes = plan.steps.filter { $0.action != .unchanged }
        if dryRun {
            print("dry run: \(changes.count) change(s) planned, none made")
            return
        }
        for step in changes { try await step.run() }
        print("applied: \(changes.count) change(s)")
        if wait { try await waitReady(client: client, team: teamName, touched: touched) }
    }

    /// A team in the file: created, or its display name and policy updated (admins).
    func planTeam(_ spec: [String: Any], client: APIClient, plan: inout Plan) async throws {
        let name = spec["name"] as? String ?? ""
        let current = try await client.call(allow: [404]) { try await $0.getTeam(path: .init(team: name)) }
        if current.status == 404 {
            let create = try Self.body(Components.Schemas.TeamCreate.self, spec, what: "team")
            plan.add(.create, "team \(name)") {
                _ = try await client.call {
                    try await $0.createTeam(headers: .init(idempotencyKey: Self.key("team", name, spec)), body: .json(create))
                }
            }
            return
        }
        let existing = current.object
        var patch: [String: Any] = [:]
        if let display = spec["displayName"], !Self.same(display, existing["displayName"], key: "displayName") { patch["displayName"] = display }
        if let contacts = spec["contacts"], !Self.same(contacts, existing["contacts"], key: "contacts") { patch["contacts"] = contacts }
        if let policy = spec["policy"] as? [String: Any] {
            let currentPolicy = existing["policy"] as? [String: Any] ?? [:]
            if policy.contains(where: { !Self.same($0.value, currentPolicy[$0.key], key: $0.key) }) { patch["policy"] = policy }
        }
        if patch.isEmpty {
            plan.add(.unchanged, "team \(name)")
        } else {
            let etag = try current.output.ok.headers.eTag ?? "*"
            let body = try Self.body(Components.Schemas.TeamPatch.self, patch, what: "team")
            plan.add(.update, "team \(name) (\(patch.keys.sorted().joined(separator: ", ")))") {
                _ = try await client.call { try await $0.updateTeam(path: .init(team: name), headers: .init(ifMatch: etag), body: .json(body)) }
            }
        }
    }

    /// Whether a value in the file equals the server's (grants compare as sets, case-insensitively).
    static func same(_ wanted: Any?, _ current: Any?, key: String) -> Bool {
        func canonical(_ value: Any?) -> String {
            guard let value, !(value is NSNull), JSONSerialization.isValidJSONObject([value]),
                  let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys])
            else { return "\(value ?? "")" }
            return String(decoding: data, as: UTF8.self)
        }
        if key == "grants" {
            func set(_ value: Any?) -> Set<String> {
                Set((value as? [[String: Any]] ?? []).map { "\(text($0["role"]).lowercased())|\(text($0["scope"]).lowercased())" })
            }
            return set(wanted) == set(current)
        }
        if key == "location", let wanted = wanted as? String, let current = current as? String {
            return wanted.lowercased().replacingOccurrences(of: " ", with: "") == current
        }
        return canonical(wanted) == canonical(current)
    }

    /// A part of the file as the request body the contract types it; a value of the wrong type is a bad file.
    static func body<Body: Decodable>(_ type: Body.Type, _ object: [String: Any], what: String) throws -> Body {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return try JSONDecoder().decode(Body.self, from: data)
        } catch let error as DecodingError {
            throw ValidationError("\(what) in the file: \(Self.describe(error))")
        } catch {
            throw ValidationError("\(what) in the file cannot be sent as JSON: \(error)")
        }
    }

    /// `tags.app must be a string`, from a decoding error.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce("") { text, key in key.intValue.map { "\(text)[\($0)]" } ?? (text.isEmpty ? key.stringValue : "\(text).\(key.stringValue)") }
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is required"
        case .valueNotFound(_, let context): return "\(path(context.codingPath)) must not be null"
        case .typeMismatch(let type, let context): return "\(path(context.codingPath)) must be \(type == String.self ? "a string" : "a \(type)")"
        case .dataCorrupted(let context): return "\(path(context.codingPath)) has a value that is not allowed (\(context.debugDescription))"
        @unknown default: return "\(error)"
        }
    }

    /// An Idempotency-Key from the content: a retried apply of the same file replays, never doubles.
    static func key(_ kind: String, _ scope: String, _ body: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        let digest = SHA256.hash(data: Data("\(kind)|\(scope)|".utf8) + data)
        return "podid-apply-" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Waits until everything the file names is ready; a failed one ends the wait with its error.
    func waitReady(client: APIClient, team: String, touched: [(String, String?)]) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        var reported: [String: String] = [:]
        while true {
            var pending = 0
            for (identity, binding) in touched {
                let what = binding.map { "binding \(team)/\(identity)/\($0)" } ?? "identity \(team)/\(identity)"
                let answer = if let binding {
                    try await client.call(allow: [404]) { try await $0.getBinding(path: .init(team: team, identity: identity, binding: binding)) }.erased
                } else {
                    try await client.call(allow: [404]) { try await $0.getIdentity(path: .init(team: team, identity: identity)) }.erased
                }
                let state = answer.status == 404 ? "gone" : text(answer.object["state"])
                if reported[what] != state {
                    print("\(what): \(state)")
                    reported[what] = state
                }
                switch state {
                case "ready": continue
                case "failed":
                    throw ClientError("\(what) failed: \(text(answer.object["lastError"]))")
                default:
                    pending += 1
                }
            }
            if pending == 0 {
                print("all ready")
                return
            }
            guard ContinuousClock.now < deadline else {
                throw ClientError("timed out after \(timeout) s with \(pending) not ready; `podid get jobs --team \(team)` shows why")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}
