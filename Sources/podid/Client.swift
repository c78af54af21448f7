import API
import ArgumentParser
import AsyncHTTPClient
import Core
import Foundation
import HTTPTypes
import NIOCore
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Synchronization
import Yams

/// Where the client commands find podid: `PODID_SERVER` and `PODID_TOKEN`, else what `podid login`
/// stored (mode 0600) under the user's configuration directory.
struct ClientConfig: Codable {
    var server: String
    var token: String

    static var file: URL {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: environment["HOME"] ?? NSTemporaryDirectory()).appendingPathComponent(".config")
        return base.appendingPathComponent("podid/config.json")
    }

    static func load() throws -> ClientConfig {
        let environment = ProcessInfo.processInfo.environment
        let stored = (try? Data(contentsOf: file)).flatMap { try? JSONDecoder().decode(ClientConfig.self, from: $0) }
        let server = environment["PODID_SERVER"] ?? stored?.server ?? "http://127.0.0.1:8080"
        guard let token = environment["PODID_TOKEN"] ?? stored?.token else {
            throw ClientError("no token: run `podid login --server URL` (the token on standard input) or set PODID_TOKEN")
        }
        return ClientConfig(server: server.hasSuffix("/") ? String(server.dropLast()) : server, token: token)
    }

    func save() throws {
        let file = Self.file
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let data = try JSONEncoder().encode(self)
        FileManager.default.createFile(atPath: file.path, contents: data, attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }
}

/// One line for the user; the command exits 1.
struct ClientError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// podid's HTTP API through the client generated from openapi.yaml, over AsyncHTTPClient: requests
/// are typed by the contract; answers are decoded (a 2xx that breaks the contract is an error) and
/// also kept as sent, so that `-o json` and `-o yaml` print podid's JSON exactly (null members too,
/// which re-encoding the decoded values would drop).
struct APIClient: Sendable {
    let server: String
    let api: Client

    init(_ config: ClientConfig, timeout: TimeAmount = .seconds(60)) {
        server = config.server
        // A server that is no URL fails on the first call, with "cannot reach podid at …".
        let url = URL(string: config.server) ?? URL(string: "invalid:")!
        api = Client(
            serverURL: url, configuration: .init(dateTranscoder: RFC3339Dates()),
            transport: AsyncHTTPClientTransport(configuration: .init(client: .shared, timeout: timeout)),
            middlewares: [BearerToken(token: config.token), AnswerRecorder()])
    }

    /// An operation's typed output with the answer as sent.
    struct Answer<Output> {
        var output: Output
        var status: Int
        var headers: HTTPFields
        var body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        /// The answer without the typed output, for callers that read only the JSON.
        var erased: Answer<Void> { Answer<Void>(output: (), status: status, headers: headers, body: body) }
    }

    /// Calls one operation; a problem answer becomes one line naming what to fix, unless `allow`
    /// holds its status. A 429 (rate limited: nothing was done) is sent again after its
    /// `Retry-After`, up to five times and when the wait is at most 30 s, so that scripts running
    /// `podid apply` over many teams slow down rather than fail.
    func call<Output>(allow: Set<Int> = [], _ operation: (Client) async throws -> Output) async throws -> Answer<Output> {
        for _ in 0..<5 {
            do {
                return try await callOnce(allow: allow, operation)
            } catch let limited as RateLimited {
                try await Task.sleep(for: .seconds(limited.seconds))
            }
        }
        return try await callOnce(allow: allow, operation, retrying: false)
    }

    /// A 429 worth waiting for.
    struct RateLimited: Error {
        var seconds: Int
    }

    func callOnce<Output>(allow: Set<Int>, _ operation: (Client) async throws -> Output, retrying: Bool = true) async throws -> Answer<Output> {
        let recorded = RecordedAnswer()
        let result: Result<Output, any Error>
        do {
            result = .success(try await RecordedAnswer.$current.withValue(recorded) { try await operation(api) })
        } catch {
            result = .failure(error)
        }
        guard let answer = recorded.answer.withLock({ $0 }) else {
            throw ClientError("cannot reach podid at \(server): \(Self.cause(of: result))")
        }
        if retrying, answer.status == 429, !allow.contains(429),
           let seconds = answer.headers[.retryAfter].flatMap({ Int($0) }), (0...30).contains(seconds) {
            throw RateLimited(seconds: max(1, seconds))
        }
        if answer.status >= 400 && !allow.contains(answer.status) {
            throw ClientError(Self.problemLine(status: answer.status, body: answer.body))
        }
        switch result {
        case .success(let output):
            return Answer(output: output, status: answer.status, headers: answer.headers, body: answer.body)
        case .failure:
            throw ClientError("podid at \(server) answered \(answer.status) with a body openapi.yaml does not allow: \(Self.cause(of: result))")
        }
    }

    /// The error under the generated client's wrapper.
    static func cause<Output>(of result: Result<Output, any Error>) -> String {
        guard case .failure(let error) = result else { return "no answer" }
        if let wrapped = error as? OpenAPIRuntime.ClientError { return "\(wrapped.underlyingError)" }
        return "\(error)"
    }

    /// `404 Not Found: identity 'x' was not found. (name: must be …)`
    static func problemLine(status: Int, body: Data) -> String {
        let problem = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        var line = "\(status) \(problem["title"] as? String ?? "error")"
        if let detail = problem["detail"] as? String { line += ": \(detail)" }
        let fields = (problem["errors"] as? [[String: Any]] ?? []).map { "\($0["field"] as? String ?? ""): \($0["message"] as? String ?? "")" }
        if !fields.isEmpty && !(problem["detail"] as? String ?? "").contains(fields[0]) { line += " (" + fields.joined(separator: "; ") + ")" }
        return line
    }

    /// Every item of a list as sent, following `nextCursor` with pages of 500.
    func all<Output>(_ page: (_ limit: Int, _ cursor: String?) async throws -> Answer<Output>) async throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var cursor: String?
        repeat {
            let object = try await page(500, cursor).object
            items += object["items"] as? [[String: Any]] ?? []
            cursor = object["nextCursor"] as? String
        } while cursor != nil
        return items
    }
}

/// Sends the token on every request.
struct BearerToken: ClientMiddleware {
    let token: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}

/// The answer to the request the current task makes, as podid sent it.
final class RecordedAnswer: Sendable {
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPFields
        var body: Data
    }

    let answer = Mutex<Answer?>(nil)

    /// Where `AnswerRecorder` writes for the current task.
    @TaskLocal static var current: RecordedAnswer?
}

/// Records each answer in `RecordedAnswer.current`: bodies are read whole (up to 64 MiB) and handed
/// on, except a successful event stream, which is handed on as it comes.
struct AnswerRecorder: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        var recorded = RecordedAnswer.Answer(status: response.status.code, headers: response.headerFields, body: Data())
        if response.status.code < 400, response.headerFields[.contentType]?.hasPrefix("text/event-stream") == true {
            RecordedAnswer.current?.answer.withLock { $0 = recorded }
            return (response, responseBody)
        }
        if let responseBody { recorded.body = try await Data(collecting: responseBody, upTo: 64 << 20) }
        let bytes = recorded.body
        RecordedAnswer.current?.answer.withLock { $0 = recorded }
        return (response, responseBody == nil ? nil : HTTPBody(bytes))
    }
}

/// RFC 3339 dates with or without fractional seconds (podid writes milliseconds, which the
/// runtime's default transcoder cannot read).
struct RFC3339Dates: DateTranscoder {
    func encode(_ date: Date) throws -> String { Timestamp.format(date) }

    func decode(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "Expected an RFC 3339 time, got '\(text)'."))
        }
        return date
    }
}

/// Output in the formats the client commands offer.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, yaml

    func print(_ value: Any, columns: [(String, (([String: Any]) -> String))]) throws {
        switch self {
        case .json:
            let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            Swift.print(String(decoding: data, as: UTF8.self))
        case .yaml:
            let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
            let plain = try JSONSerialization.jsonObject(with: data)
            Swift.print(try Yams.dump(object: plain, sortKeys: true), terminator: "")
        case .table:
            let rows = (value as? [[String: Any]]) ?? [(value as? [String: Any]) ?? [:]]
            let cells = [columns.map(\.0)] + rows.map { row in columns.map { $0.1(row) } }
            let widths = columns.indices.map { index in min(60, cells.map { $0[index].count }.max() ?? 0) }
            for line in cells {
                Swift.print(line.enumerated().map { index, cell in
                    let cut = cell.count > 60 ? String(cell.prefix(57)) + "..." : cell
                    return index == line.count - 1 ? cut : cut.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                }.joined(separator: "  "))
            }
        }
    }
}

func text(_ value: Any?) -> String {
    switch value {
    case let string as String: return string
    case let number as NSNumber: return number.stringValue
    case nil, is NSNull: return ""
    default: return "\(value!)"
    }
}

/// `podid login --server URL`: stores the server and a token read from standard input.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store the podid server and a token (read from standard input) for the client commands.",
        discussion: """
            The configuration goes to $XDG_CONFIG_HOME/podid/config.json (else ~/.config/podid/config.json), mode 0600.
            PODID_SERVER and PODID_TOKEN override it, for scripts.
            Example:
              cat .podid/admin-token | podid login --server http://127.0.0.1:8080
            """)

    @Option(help: "The podid API, such as https://podid.example.com.")
    var server: String

    func run() async throws {
        guard let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
            throw ValidationError("give the token on standard input, e.g. `cat token | podid login --server \(server)`")
        }
        let config = ClientConfig(server: server.hasSuffix("/") ? String(server.dropLast()) : server, token: line)
        let me = try await APIClient(config).call { try await $0.getMe() }.output.ok.body.json
        try config.save()
        print("logged in to \(config.server) as \(me.tokenName) (\(me.role.rawValue)\(me.team.map { ", team \($0)" } ?? ""))")
    }
}

/// `podid get KIND [NAME]`.
struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List or show teams, identities, bindings, jobs or clusters.",
        discussion: """
            Examples:
              podid get teams
              podid get identities --team payments
              podid get identities orders-api --team payments -o yaml
              podid get bindings --team payments --identity orders-api
              podid get jobs --team payments
              podid get clusters -o json
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable { case teams, identities, bindings, jobs, clusters }

    @Argument(help: "teams, identities, bindings, jobs or clusters.")
    var kind: Kind
    @Argument(help: "One of them, by name (a job by id).")
    var name: String?
    @Option(help: "The team (identities, bindings; a filter for jobs).")
    var team: String?
    @Option(help: "The identity (bindings).")
    var identity: String?
    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: OutputFormat = .table

    func run() async throws {
        let client = APIClient(try ClientConfig.load())
        let columns: [(String, ([String: Any]) -> String)]
        // The list and, with a name, the one.
        let list: () async throws -> [[String: Any]]
        let one: (String) async throws -> Any?
        switch kind {
        case .teams:
            list = { try await client.all { limit, cursor in try await client.call { try await $0.listTeams(query: .init(limit: limit, cursor: cursor)) } } }
            one = { name in try await client.call { try await $0.getTeam(path: .init(team: name)) }.json }
            columns = [("NAME", { text($0["name"]) }), ("DISPLAY NAME", { text($0["displayName"]) }),
                       ("MAX IDENTITIES", { text(($0["policy"] as? [String: Any])?["maxIdentities"]) })]
        case .identities:
            guard let team else { throw ValidationError("give --team") }
            list = {
                try await client.all { limit, cursor in
                    try await client.call { try await $0.listIdentities(path: .init(team: team), query: .init(limit: limit, cursor: cursor)) }
                }
            }
            one = { name in try await client.call { try await $0.getIdentity(path: .init(team: team, identity: name)) }.json }
            columns = [("NAME", { text($0["name"]) }), ("STATE", { text($0["state"]) }), ("CLIENT ID", { text($0["clientId"]) }),
                       ("GRANTS", { row in (row["grants"] as? [[String: Any]] ?? []).map { text($0["role"]) }.joined(separator: ",") }),
                       ("MESSAGE", { text($0["lastError"] is String ? $0["lastError"] : $0["message"]) })]
        case .bindings:
            guard let team, let identity else { throw ValidationError("give --team and --identity") }
            list = {
                try await client.all { limit, cursor in
                    try await client.call {
                        try await $0.listBindings(path: .init(team: team, identity: identity), query: .init(limit: limit, cursor: cursor))
                    }
                }
            }
            one = { name in try await client.call { try await $0.getBinding(path: .init(team: team, identity: identity, binding: name)) }.json }
            columns = [("NAME", { text($0["name"]) }), ("CLUSTER", { text($0["cluster"]) }), ("NAMESPACE", { text($0["namespace"]) }),
                       ("SELECTOR", { text($0["selector"]) }), ("STATE", { text($0["state"]) }), ("HEALTH", { text($0["health"]) })]
        case .jobs:
            list = {
                try await client.all { limit, cursor in
                    try await client.call { try await $0.listJobs(query: .init(team: team, limit: limit, cursor: cursor)) }
                }
            }
            one = { id in try await client.call { try await $0.getJob(path: .init(id: id)) }.json }
            columns = [("ID", { text($0["id"]) }), ("KIND", { text($0["kind"]) }), ("STATE", { text($0["state"]) }),
                       ("ATTEMPTS", { text($0["attempts"]) }), ("RESOURCE", { text($0["resource"]) }), ("LAST ERROR", { text($0["lastError"]) })]
        case .clusters:
            list = { try await client.all { limit, cursor in try await client.call { try await $0.listClusters(query: .init(limit: limit, cursor: cursor)) } } }
            one = { name in try await client.call { try await $0.getCluster(path: .init(cluster: name)) }.json }
            columns = [("NAME", { text($0["name"]) }), ("MIC MODE", { text($0["micMode"]) }),
                       ("REACHABLE", { text(($0["status"] as? [String: Any])?["reachable"]) }),
                       ("STATUS", { text(($0["status"] as? [String: Any])?["message"]) })]
        }
        if let name {
            try output.print(try await one(name) ?? [:], columns: columns)
        } else {
            try output.print(try await list(), columns: columns)
        }
    }
}

/// `podid audit`: the audit history, or its live stream.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the audit history (newest first), or follow it live.",
        discussion: """
            Examples:
              podid audit --team payments
              podid audit --action identity. --since 2026-01-01T00:00:00Z
              podid audit --request-id 0f4c… -o json
              podid audit --follow --team payments
            """)

    @Option var team: String?
    @Option var actor: String?
    @Option(help: "Exact, or a prefix ending in '.' (identity.).")
    var action: String?
    @Option var outcome: String?
    @Option var requestId: String?
    @Option var since: String?
    @Option var until: String?
    @Option(help: "How many events (newest first).")
    var limit: Int = 50
    @Flag(help: "Follow new events as they are sealed (Ctrl-C stops).")
    var follow = false
    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: OutputFormat = .table

    /// The filters as the contract types them (an unknown outcome or a time that is not RFC 3339 is a bad option).
    func filters() throws -> (outcome: Components.Parameters.AuditOutcome?, since: Date?, until: Date?) {
        let outcome = try outcome.map { value in
            guard let outcome = Components.Parameters.AuditOutcome(rawValue: value) else {
                throw ValidationError("--outcome must be success, failure or denied")
            }
            return outcome
        }
        func time(_ value: String?, _ option: String) throws -> Date? {
            try value.map { text in
                guard let date = Timestamp.parse(text) else { throw ValidationError("\(option) must be an RFC 3339 time such as 2026-01-01T00:00:00Z") }
                return date
            }
        }
        return (outcome, try time(since, "--since"), try time(until, "--until"))
    }

    static var columns: [(String, ([String: Any]) -> String)] { [
        ("TIME", { text($0["time"]) }), ("ACTOR", { text($0["actor"]) }), ("ACTION", { text($0["action"]) }), ("OUTCOME", { text($0["outcome"]) }),
        ("TEAM", { text($0["team"]) }), ("RESOURCE", { "\(text($0["resourceType"]))/\(text($0["resourceName"]))" }),
    ] }

    func run() async throws {
        let config = try ClientConfig.load()
        let (outcome, since, until) = try filters()
        if follow {
            let client = APIClient(config, timeout: .hours(24))
            let answer = try await client.call {
                try await $0.streamAudit(query: .init(team: team, actor: actor, action: action, outcome: outcome, requestId: requestId,
                                                      since: since, until: until))
            }
            var pending = ""
            for try await chunk in try answer.output.ok.body.textEventStream {
                pending += String(decoding: chunk, as: UTF8.self)
                while let end = pending.range(of: "\n\n") {
                    let message = pending[..<end.lowerBound]
                    pending.removeSubrange(..<end.upperBound)
                    guard let data = message.split(separator: "\n").first(where: { $0.hasPrefix("data:") })?.dropFirst(5),
                          let event = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any]
                    else { continue }
                    if output == .table {
                        print(Self.columns.map { $0.1(event) }.joined(separator: "  "))
                    } else {
                        try output.print(event, columns: Self.columns)
                    }
                }
            }
            return
        }
        let client = APIClient(config)
        let page = try await client.call {
            // JSON only: the contract also offers NDJSON and CSV exports of the whole range.
            try await $0.listAudit(query: .init(team: team, actor: actor, action: action, outcome: outcome, requestId: requestId,
                                                since: since, until: until, limit: limit),
                                   headers: .init(accept: [.init(contentType: .json)]))
        }.object
        try output.print(page["items"] ?? [], columns: Self.columns)
    }
}

/// `podid health`: bindings by health status.
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show assignment health: bindings by status per team and cluster, or one binding's findings.",
        discussion: """
            Examples:
              podid health
              podid health --team payments
              podid health --team payments --identity orders-api --binding api
            """)

    @Option var team: String?
    @Option var identity: String?
    @Option var binding: String?
    @Option(name: .shortAndLong, help: "table, json or yaml.")
    var output: OutputFormat = .table

    func run() async throws {
        let client = APIClient(try ClientConfig.load())
        if let team, let identity, let binding {
            let health = try await client.call {
                try await $0.getBindingHealth(path: .init(team: team, identity: identity, binding: binding))
            }.object
            if output != .table { return try output.print(health, columns: []) }
            print("\(team)/\(identity)/\(binding): \(text(health["status"])) (observed \(text(health["observedAt"])))")
            for finding in health["findings"] as? [[String: Any]] ?? [] {
                print("  \(text(finding["severity"])) \(text(finding["code"])): \(text(finding["message"]))")
                print("    fix: \(text(finding["hint"]))")
            }
            return
        }
        let summary = try await client.call { try await $0.getHealthSummary() }.object
        if output != .table { return try output.print(summary, columns: []) }
        var rows: [[String: Any]] = []
        for (scope, key) in [("team", "teams"), ("cluster", "clusters")] {
            for (name, counts) in (summary[key] as? [String: [String: Any]] ?? [:]).sorted(by: { $0.key < $1.key }) where team == nil || scope == "cluster" || name == team {
                rows.append(counts.merging(["scope": scope, "name": name]) { a, _ in a })
            }
        }
        try output.print(rows, columns: [("SCOPE", { text($0["scope"]) }), ("NAME", { text($0["name"]) }), ("STATUS", { text($0["status"]) }),
                                         ("HEALTHY", { text($0["healthy"]) }), ("DEGRADED", { text($0["degraded"]) }),
                                         ("UNHEALTHY", { text($0["unhealthy"]) }), ("UNKNOWN", { text($0["unknown"]) })])
    }
}

/// `podid manifests`: the YAML podid applies for an identity.
struct Manifests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the AzureIdentity and AzureIdentityBinding objects podid applies for an identity, as YAML.",
        discussion: "Example: podid manifests orders-api --team payments | kubectl apply -f -")

    @Argument(help: "The identity.")
    var identity: String
    @Option var team: String
    @Option var cluster: String?
    @Option var namespace: String?

    func run() async throws {
        let client = APIClient(try ClientConfig.load())
        let answer = try await client.call {
            try await $0.getManifests(path: .init(team: team, identity: identity), query: .init(cluster: cluster, namespace: namespace))
        }
        print(String(decoding: answer.body, as: UTF8.self), terminator: "")
    }
}
