import NIOCore

/// Puts the pieces of chunks that come on one connection back together.
///
/// Why pieces: a downloader that forwards what a seeder hands it can start forwarding a
/// chunk as its first piece arrives, instead of after the whole chunk (SPEC §7: the unit
/// forwarded need not be the unit verified). The chunk is still verified whole, once
/// assembled here.
///
/// A connection's pieces of one chunk come in order, each where the last one ended. Only
/// a few chunks may be open at once (`maximumOpenChunks`), so a peer cannot make this one
/// hold the beginnings of many chunks; anything out of order is a protocol violation.
struct PieceAssembler {
    private let manifest: Manifest
    private let maximumOpenChunks: Int
    /// Per open chunk: the file id, then the chunk's bytes so far (the reader index past
    /// the id, so that the chunk is framed again without a copy).
    private var open: [Int: ByteBuffer] = [:]

    /// Creates an assembler for the chunks of one file.
    /// - Parameters:
    ///   - manifest: the file's manifest, for its chunks' lengths.
    ///   - maximumOpenChunks: chunks that may be begun and not finished at once.
    init(manifest: Manifest, maximumOpenChunks: Int = 4) {
        self.manifest = manifest
        self.maximumOpenChunks = maximumOpenChunks
    }

    /// The chunks begun and not finished.
    var openChunks: [Int] { Array(self.open.keys) }

    /// Takes a piece.
    /// - Parameters:
    ///   - piece: the piece's bytes.
    ///   - chunk: the chunk it belongs to.
    ///   - offset: where in the chunk it starts.
    /// - Returns: the whole chunk if this piece completes it, otherwise `nil`.
    /// - Throws: `P2PError` (`protocolViolation`) for a piece that does not continue its
    ///   chunk, overruns it, or opens one chunk too many.
    mutating func add(_ piece: ByteBuffer, chunk: Int, offset: Int) throws(P2PError) -> ByteBuffer? {
        guard chunk >= 0, chunk < self.manifest.chunkCount else {
            throw P2PError(code: .protocolViolation, "a piece of chunk \(chunk), which the file does not have")
        }
        let length = self.manifest.length(ofChunk: chunk)
        guard piece.readableBytes > 0 else {
            throw P2PError(code: .protocolViolation, "an empty piece of chunk \(chunk)")
        }
        if offset == 0 {
            guard self.open[chunk] == nil else {
                throw P2PError(code: .protocolViolation, "chunk \(chunk) begun again before it was finished")
            }
            if piece.readableBytes == length { return piece }
            guard piece.readableBytes < length else {
                throw P2PError(code: .protocolViolation, "a piece longer than chunk \(chunk)")
            }
            guard self.open.count < self.maximumOpenChunks else {
                throw P2PError(code: .protocolViolation, "more than \(self.maximumOpenChunks) chunks begun at once")
            }
            var buffer = ChunkBufferAllocator.buffer(exactCapacity: FileID.byteCount + length)
            buffer.writeBytes(self.manifest.id.bytes)
            buffer.moveReaderIndex(forwardBy: FileID.byteCount)
            buffer.writeImmutableBuffer(piece)
            self.open[chunk] = buffer
            return nil
        }
        guard let sofar = self.open[chunk]?.readableBytes, sofar == offset else {
            throw P2PError(code: .protocolViolation, "a piece of chunk \(chunk) at \(offset), out of order")
        }
        guard offset + piece.readableBytes <= length else {
            throw P2PError(code: .protocolViolation, "a piece that runs past the end of chunk \(chunk)")
        }
        // Taken out while it grows, so that the write does not copy a shared buffer.
        var buffer = self.open.removeValue(forKey: chunk)!
        buffer.writeImmutableBuffer(piece)
        if buffer.readableBytes == length { return buffer }
        self.open[chunk] = buffer
        return nil
    }

    /// Forgets a chunk begun here (its sender will not finish it).
    /// - Returns: whether it was open.
    @discardableResult
    mutating func drop(_ chunk: Int) -> Bool {
        self.open.removeValue(forKey: chunk) != nil
    }
}
