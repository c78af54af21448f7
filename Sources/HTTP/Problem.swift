import Core
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// RFC 9457 problem details, the body of every error podid answers.
struct ProblemBody: Encodable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var requestId: String
    var errors: [FieldProblem]?
}

/// Builds problem+json responses.
public enum ProblemResponse {
    /// The problem type URI and title of each status podid answers with.
    static func typeAndTitle(_ status: HTTPResponse.Status) -> (String, String) {
        let slug: String
        switch status.code {
        case 400: slug = "bad-request"
        case 401: slug = "unauthorized"
        case 403: slug = "forbidden"
        case 404: slug = "not-found"
        case 405: slug = "method-not-allowed"
        case 406: slug = "not-acceptable"
        case 409: slug = "conflict"
        case 412: slug = "precondition-failed"
        case 413: slug = "content-too-large"
        case 415: slug = "unsupported-media-type"
        case 422: slug = "validation"
        case 429: slug = "too-many-requests"
        case 503: slug = "unavailable"
        default: slug = status.code >= 500 ? "internal" : "client-error"
        }
        return ("urn:podid:problem:\(slug)", status.reasonPhrase)
    }

    /// A problem+json response.
    public static func make(
        status: HTTPResponse.Status, detail: String, requestId: String, fields: [FieldProblem] = [],
        headers: HTTPFields = [:]
    ) -> Response {
        let (type, title) = typeAndTitle(status)
        let body = ProblemBody(
            type: type, title: title, status: status.code, detail: detail, requestId: requestId,
            errors: fields.isEmpty ? nil : fields)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The HTTP status of a domain error kind.
    static func status(_ kind: DomainError.Kind) -> HTTPResponse.Status {
        switch kind {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .preconditionFailed: .preconditionFailed
        case .payloadTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .validation: .unprocessableContent
        case .tooManyRequests: .tooManyRequests
        case .unavailable: .serviceUnavailable
        }
    }
}
