import Foundation
import Hummingbird
import P2P

/// Responses the gateway's routes share: JSON bodies and errors as a person can read them.
enum GatewayResponses {
    /// A JSON body.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("null".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Plain text.
    static func text(
        _ text: String,
        status: HTTPResponse.Status,
        contentType: String = "text/plain; charset=utf-8"
    )
        -> Response
    {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// An error as JSON, `{"error": "...", "code": "..."}`, with the status its code means.
    static func error(_ error: P2PError) -> Response {
        let status: HTTPResponse.Status =
            switch error.code {
            case .notFound: .notFound
            case .ambiguous, .fileExists: .conflict
            case .badName, .invalidArgument: .badRequest
            case .timedOut: .gatewayTimeout
            case .corrupt, .protocolViolation: .badGateway
            case .storage, .portUnavailable, .badFolder: .internalServerError
            }
        return Self.json(["error": error.message, "code": error.code.rawValue], status: status)
    }
}
