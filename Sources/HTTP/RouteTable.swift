import HTTPTypes
import Hummingbird
import OpenAPIRuntime

/// The routes the OpenAPI document registers, so that a known path with a wrong method answers 405.
public struct RouteTable: Sendable {
    struct Route: Sendable {
        var segments: [Substring]
        var method: HTTPRequest.Method
    }

    var routes: [Route] = []

    /// An empty table.
    public init() {}

    mutating func add(method: HTTPRequest.Method, path: String) {
        routes.append(Route(segments: path.split(separator: "/"), method: method))
    }

    /// The methods registered for a concrete path.
    public func allowedMethods(path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        return routes.filter { route in
            route.segments.count == segments.count
                && zip(route.segments, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.method)
    }
}

/// A transport that only records the routes the generated code registers.
struct RouteRecorder: ServerTransport {
    let box: RouteTableBox

    func register(
        _ handler: @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method, path: String
    ) throws {
        box.table.add(method: method, path: path)
    }
}

/// Collects routes during registration, which happens once before serving.
final class RouteTableBox {
    var table = RouteTable()
}
