import NIOCore
import SystemPackage
import _NIOFileSystem

extension FileHandleProtocol {
    /// Reads one chunk into a buffer that has the chunk's file id just before its readable
    /// bytes.
    ///
    /// Why: a chunk goes out in a frame whose payload is the file id and then the chunk.
    /// With the id already in front, `TransferMessage` frames the buffer as it is; a chunk
    /// read into a buffer of its own was copied once more, behind its id, for every answer.
    /// - Parameters:
    ///   - range: the chunk's bytes in the file.
    ///   - id: the file's id.
    /// - Returns: the whole chunk.
    /// - Throws: if the file cannot be read, or `P2PError` (`storage`) if it ends before the
    ///   chunk does (cut short since it was hashed or recorded).
    func readChunk(_ range: Range<Int64>, of id: FileID) async throws -> ByteBuffer {
        try await self.withUnsafeDescriptor { descriptor in
            let length = range.count
            // Exactly the frame's payload (see `ChunkBufferAllocator.buffer(exactCapacity:)`).
            var buffer = ChunkBufferAllocator.buffer(exactCapacity: FileID.byteCount + length)
            buffer.writeBytes(id.bytes)
            buffer.moveReaderIndex(forwardBy: FileID.byteCount)
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { free in
                // `pread` may return less than asked (a signal, a file that ends): go on from
                // where it stopped until the chunk is whole or the file ends.
                var done = 0
                while done < length {
                    let read = try descriptor.read(
                        fromAbsoluteOffset: range.lowerBound + Int64(done),
                        into: UnsafeMutableRawBufferPointer(rebasing: free[done..<length])
                    )
                    if read == 0 {
                        throw P2PError(
                            code: .storage,
                            "the file ends \(done) bytes into the \(length)-byte chunk at offset \(range.lowerBound)"
                        )
                    }
                    done += read
                }
                return done
            }
            return buffer
        }
    }
}
