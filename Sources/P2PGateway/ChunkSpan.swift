import P2P

/// Which chunks a byte range of a file covers, and which bytes of each: how a range is cut
/// from chunks that are read (and verified) whole.
public struct ChunkSpan: Sendable, Equatable {
    /// The bytes asked for, first to last inclusive.
    public let bytes: ClosedRange<UInt64>
    /// The length of every chunk but the last.
    public let chunkSize: Int

    /// - Parameters:
    ///   - bytes: a range inside the file.
    ///   - chunkSize: the manifest's chunk size.
    public init(bytes: ClosedRange<UInt64>, chunkSize: Int) {
        precondition(chunkSize > 0, "a manifest's chunk size is positive")
        self.bytes = bytes
        self.chunkSize = chunkSize
    }

    /// The chunks that hold the range, in order.
    public var chunks: ClosedRange<Int> {
        Int(self.bytes.lowerBound / UInt64(self.chunkSize))...Int(self.bytes.upperBound / UInt64(self.chunkSize))
    }

    /// The part of chunk `index` inside the range, as offsets into the chunk.
    /// - Parameter index: one of `chunks`.
    /// - Returns: the offsets to send.
    public func slice(ofChunk index: Int) -> Range<Int> {
        let chunkStart = UInt64(index) * UInt64(self.chunkSize)
        let first = max(self.bytes.lowerBound, chunkStart)
        let last = min(self.bytes.upperBound, chunkStart + UInt64(self.chunkSize) - 1)
        return Int(first - chunkStart)..<Int(last - chunkStart + 1)
    }

    /// The number of bytes in the range.
    public var length: UInt64 { self.bytes.upperBound - self.bytes.lowerBound + 1 }
}
