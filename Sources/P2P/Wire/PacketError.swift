/// Why bytes could not be read as a frame.
///
/// Each case names one way a frame can be malformed, so that a log line or a test can say
/// exactly what was wrong. None of them is ever a reason to crash: the caller drops the
/// frame and, on a stream, closes that one connection.
public enum PacketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than a frame header.
    case truncatedHeader(available: Int)
    /// The header announces more payload than the bytes hold.
    case truncatedPayload(declared: Int, available: Int)
    /// The header announces a payload larger than the receiver accepts.
    case frameTooLarge(declared: Int, maximum: Int)
    /// A protocol version this peer does not speak.
    case unsupportedVersion(UInt8)
    /// A frame type this peer does not know.
    case unknownType(UInt8)
    /// The checksum over header and payload does not verify.
    case badChecksum(expected: UInt16, actual: UInt16)
    /// Bytes after the end of a frame in a datagram-style, one-frame parse.
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .truncatedHeader(let available):
            "truncated frame header: \(available) of \(Frame.headerLength) bytes"
        case .truncatedPayload(let declared, let available):
            "truncated frame payload: \(available) of \(declared) bytes"
        case .frameTooLarge(let declared, let maximum):
            "frame payload of \(declared) bytes exceeds the maximum of \(maximum)"
        case .unsupportedVersion(let version):
            "unsupported protocol version \(version) (this peer speaks \(Frame.protocolVersion))"
        case .unknownType(let type):
            "unknown frame type \(type)"
        case .badChecksum(let expected, let actual):
            "bad frame checksum: header says 0x\(String(expected, radix: 16)), data gives 0x\(String(actual, radix: 16))"
        case .trailingBytes(let count):
            "\(count) unexpected bytes after the frame"
        }
    }
}
