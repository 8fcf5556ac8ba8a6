import NIOCore
import P2P

extension SeededGenerator {
    /// A buffer of `count` random bytes.
    mutating func buffer(_ count: Int) -> ByteBuffer {
        ByteBuffer(bytes: self.bytes(count))
    }

    /// A frame of any type with a random chunk number and `payloadLength` random bytes.
    mutating func frame(payloadLength: Int, type: FrameType? = nil) -> Frame {
        Frame(
            type: type ?? FrameType.allCases.randomElement(using: &self)!,
            chunkNumber: UInt32.random(in: 0...UInt32.max, using: &self),
            payload: self.buffer(payloadLength)
        )
    }
}

extension ByteBuffer {
    /// The readable bytes as an array.
    var bytes: [UInt8] { Array(self.readableBytesView) }
}

/// The bytes of a frame header, written field by field from the layout in `Frame`'s
/// documentation, independent of `Frame`'s own encoder.
func referenceHeader(length: UInt32, version: UInt8, type: UInt8, checksum: UInt16, chunkNumber: UInt32) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes += withUnsafeBytes(of: length.bigEndian, Array.init)
    bytes += [version, type]
    bytes += withUnsafeBytes(of: checksum.bigEndian, Array.init)
    bytes += withUnsafeBytes(of: chunkNumber.bigEndian, Array.init)
    return bytes
}

/// The error `Frame.parse` throws for `bytes`, or `nil` if it parses.
func parseError(_ bytes: ByteBuffer, maximumPayloadLength: Int = Frame.defaultMaximumPayloadLength) -> PacketError? {
    do {
        _ = try Frame.parse(bytes, maximumPayloadLength: maximumPayloadLength)
        return nil
    } catch {
        return error
    }
}
