import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
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

/// A small client of podid's HTTP API.
struct APIClient: Sendable {
    let server: String
    let token: String

    init(_ config: ClientConfig) {
        server = config.server
        token = config.token
    }

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
    }

    /// Sends a request; a problem answer becomes one line naming what to fix, unless `allow` holds its status.
    func send(_ method: HTTPMethod, _ path: String, json body: Any? = nil, headers: [(String, String)] = [],
              allow: Set<Int> = []) async throws -> Answer {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        } catch {
            throw ClientError("cannot reach podid at \(server): \(error)")
        }
        let buffer = try await response.body.collect(upTo: 64 << 20)
        let answer = Answer(status: Int(response.status.code), headers: response.headers, body: Data(buffer.readableBytesView))
        if answer.status >= 400 && !allow.contains(answer.status) {
            throw ClientError(Self.problemLine(answer))
        }
        return answer
    }

    /// `404 Not Found: identity 'x' was not found. (name: must be …)`
    static func problemLine(_ answer: Answer) -> String {
        let problem = answer.object
        var line = "\(answer.status) \(problem["title"] as? String ?? "error")"
        if let detail = problem["detail"] as? String { line += ": \(detail)" }
        let fields = (problem["errors"] as? [[String: Any]] ?? []).map { "\($0["field"] as? String ?? ""): \($0["message"] as? String ?? "")" }
        if !fields.isEmpty && !(problem["detail"] as? String ?? "").contains(fields[0]) { line += " (" + fields.joined(separator: "; ") + ")" }
        return line
    }

    /// Every item of a list, following `nextCursor`.
    func all(_ path: String) async throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var cursor: String?
        repeat {
            let separator = path.contains("?") ? "&" : "?"
            let page = try await send(.GET, path + separator + "limit=500" + (cursor.map { "&cursor=\($0)" } ?? "")).object
            items += page["items"] as? [[String: Any]] ?? []
            cursor = page["nextCursor"] as? String
        } while cursor != nil
        return items
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
        let me = try await APIClient(config).send(.GET, "/v1/me").object
        try config.save()
        print("logged in to \(config.server) as \(text(me["tokenName"])) (\(text(me["role"]))\(me["team"] is String ? ", team \(text(me["team"]))" : ""))")
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
        let path: String
        let columns: [(String, ([String: Any]) -> String)]
        switch kind {
        case .teams:
            path = "/v1/teams"
            columns = [("NAME", { text($0["name"]) }), ("DISPLAY NAME", { text($0["displayName"]) }),
                       ("MAX IDENTITIES", { text(($0["policy"] as? [String: Any])?["maxIdentities"]) })]
        case .identities:
            guard let team else { throw ValidationError("give --team") }
            path = "/v1/teams/\(team)/identities"
            columns = [("NAME", { text($0["name"]) }), ("STATE", { text($0["state"]) }), ("CLIENT ID", { text($0["clientId"]) }),
                       ("GRANTS", { row in (row["grants"] as? [[String: Any]] ?? []).map { text($0["role"]) }.joined(separator: ",") }),
                       ("MESSAGE", { text($0["lastError"] is String ? $0["lastError"] : $0["message"]) })]
        case .bindings:
            guard let team, let identity else { throw ValidationError("give --team and --identity") }
            path = "/v1/teams/\(team)/identities/\(identity)/bindings"
            columns = [("NAME", { text($0["name"]) }), ("CLUSTER", { text($0["cluster"]) }), ("NAMESPACE", { text($0["namespace"]) }),
                       ("SELECTOR", { text($0["selector"]) }), ("STATE", { text($0["state"]) }), ("HEALTH", { text($0["health"]) })]
        case .jobs:
            path = "/v1/jobs" + (team.map { "?team=\($0)" } ?? "")
            columns = [("ID", { text($0["id"]) }), ("KIND", { text($0["kind"]) }), ("STATE", { text($0["state"]) }),
                       ("ATTEMPTS", { text($0["attempts"]) }), ("RESOURCE", { text($0["resource"]) }), ("LAST ERROR", { text($0["lastError"]) })]
        case .clusters:
            path = "/v1/clusters"
            columns = [("NAME", { text($0["name"]) }), ("MIC MODE", { text($0["micMode"]) }),
                       ("REACHABLE", { text(($0["status"] as? [String: Any])?["reachable"]) }),
                       ("STATUS", { text(($0["status"] as? [String: Any])?["message"]) })]
        }
        if let name {
            let single = kind == .jobs ? "/v1/jobs/\(name)" : path.split(separator: "?").first.map { "\($0)/\(name)" } ?? path
            try output.print(try await client.send(.GET, single).json ?? [:], columns: columns)
        } else {
            try output.print(try await client.all(path), columns: columns)
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

    var query: String {
        let pairs: [(String, String?)] = [("team", team), ("actor", actor), ("action", action), ("outcome", outcome), ("requestId", requestId),
                                           ("since", since), ("until", until)]
        return pairs.compactMap { key, value in value.map { "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } }
            .joined(separator: "&")
    }

    static var columns: [(String, ([String: Any]) -> String)] { [
        ("TIME", { text($0["time"]) }), ("ACTOR", { text($0["actor"]) }), ("ACTION", { text($0["action"]) }), ("OUTCOME", { text($0["outcome"]) }),
        ("TEAM", { text($0["team"]) }), ("RESOURCE", { "\(text($0["resourceType"]))/\(text($0["resourceName"]))" }),
    ] }

    func run() async throws {
        let client = APIClient(try ClientConfig.load())
        if follow {
            var request = HTTPClientRequest(url: client.server + "/v1/audit/stream" + (query.isEmpty ? "" : "?\(query)"))
            request.headers.add(name: "Authorization", value: "Bearer \(client.token)")
            let response = try await HTTPClient.shared.execute(request, timeout: .hours(24))
            guard response.status == .ok else {
                let body = try await response.body.collect(upTo: 1 << 20)
                throw ClientError(APIClient.problemLine(.init(status: Int(response.status.code), headers: response.headers,
                                                              body: Data(body.readableBytesView))))
            }
            var pending = ""
            for try await buffer in response.body {
                pending += String(buffer: buffer)
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
        let page = try await client.send(.GET, "/v1/audit?limit=\(limit)" + (query.isEmpty ? "" : "&\(query)")).object
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
            let health = try await client.send(.GET, "/v1/teams/\(team)/identities/\(identity)/bindings/\(binding)/health").object
            if output != .table { return try output.print(health, columns: []) }
            print("\(team)/\(identity)/\(binding): \(text(health["status"])) (observed \(text(health["observedAt"])))")
            for finding in health["findings"] as? [[String: Any]] ?? [] {
                print("  \(text(finding["severity"])) \(text(finding["code"])): \(text(finding["message"]))")
                print("    fix: \(text(finding["hint"]))")
            }
            return
        }
        let summary = try await client.send(.GET, "/v1/health").object
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
        let query = [("cluster", cluster), ("namespace", namespace)].compactMap { key, value in value.map { "\(key)=\($0)" } }.joined(separator: "&")
        let answer = try await client.send(.GET, "/v1/teams/\(team)/identities/\(identity)/manifests" + (query.isEmpty ? "" : "?\(query)"))
        print(String(decoding: answer.body, as: UTF8.self), terminator: "")
    }
}
