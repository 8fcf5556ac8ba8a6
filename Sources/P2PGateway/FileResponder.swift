import Foundation
import Hummingbird
import Logging
import P2P

/// Answers `GET` and `HEAD` for `/files/NAME` and `/files/id/FILEID`: the file, or the byte
/// range asked for, streamed chunk by chunk as each is held and verified.
struct FileResponder: Sendable {
    let files: GatewayFiles

    /// Answers a request for a file.
    /// - Parameters:
    ///   - request: the request (its method and range headers).
    ///   - name: the file's name, or `nil` to go by id.
    ///   - idPrefix: hex digits of the file id, if given.
    /// - Returns: the response; its body streams.
    func respond(to request: Request, name: String?, idPrefix: String?) async throws -> Response {
        let isHead = request.method == .head
        let found: GatewayFiles.Found
        do {
            found = try await self.files.locate(name: name, idPrefix: idPrefix, fetch: !isHead)
        } catch let error as P2PError {
            return GatewayResponses.error(error)
        }
        let manifest = found.manifest
        let entityTag = "\"\(manifest.id)\""
        var headers = HTTPFields()
        headers[.eTag] = entityTag
        headers[.acceptRanges] = "bytes"
        headers[.contentType] = Self.contentType(manifest.name.value)
        headers[.contentDisposition] = Self.contentDisposition(manifest.name.value)
        // Content never changes under a file id: a client holding this entity tag has it.
        if let tags = request.headers[.ifNoneMatch],
            tags.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == entityTag })
        {
            return Response(status: .notModified, headers: headers)
        }
        let range = ByteRangeRequest(
            range: request.headers[.range],
            ifRange: request.headers[.ifRange],
            entityTag: entityTag,
            size: manifest.size
        )
        let status: HTTPResponse.Status
        let bytes: ClosedRange<UInt64>?
        switch range {
        case .whole:
            status = .ok
            bytes = manifest.size > 0 ? 0...(manifest.size - 1) : nil
        case .part(let part):
            status = .partialContent
            bytes = part
            headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound)/\(manifest.size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(manifest.size)"
            headers[.contentLength] = "0"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        let length = bytes.map { ChunkSpan(bytes: $0, chunkSize: manifest.chunkSize).length } ?? 0
        headers[.contentLength] = "\(length)"
        if isHead { return Response(status: status, headers: headers) }
        guard let bytes else { return Response(status: status, headers: headers, body: ResponseBody()) }
        let span = ChunkSpan(bytes: bytes, chunkSize: manifest.chunkSize)
        let files = self.files
        let body = ResponseBody(contentLength: Int(length)) { writer in
            for index in span.chunks {
                let chunk = try await files.chunk(index, of: found)
                let slice = span.slice(ofChunk: index)
                guard let part = chunk.getSlice(at: chunk.readerIndex + slice.lowerBound, length: slice.count) else {
                    throw P2PError(
                        code: .storage,
                        "chunk \(index) of \(manifest.name) is shorter than its manifest says"
                    )
                }
                try await writer.write(part)
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The media type the name's extension says, for browsers; bytes otherwise.
    static func contentType(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex,
            let type = MediaType.getMediaType(forExtension: String(name[name.index(after: dot)...]).lowercased())
        else { return "application/octet-stream" }
        return type.description
    }

    /// `attachment` with the name, plain where it is plain ASCII, and percent-encoded UTF-8
    /// as well (RFC 6266), so a browser saves the file under its name.
    static func contentDisposition(_ name: String) -> String {
        let plain = name.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" }
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return plain
            ? "attachment; filename=\"\(name)\"; filename*=UTF-8''\(encoded)"
            : "attachment; filename*=UTF-8''\(encoded)"
    }
}
