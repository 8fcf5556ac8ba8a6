/// A file name that is safe to use as one path component.
///
/// Names come from the network and from other people's folders; none is ever trusted as
/// a path. A valid name is one component: no `/` or `\`, no `..`, no NUL or other control
/// characters, no invisible formatting characters (bidirectional overrides, zero-width
/// spaces), not empty, not hidden (a leading `.`), no leading `-`, no `.partial` ending,
/// at most 255 bytes of UTF-8 (the common file system limit). Anything else is refused, never "cleaned up", so that what is written is
/// exactly what was asked for.
public struct FileName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The validated name.
    public let value: String

    /// The longest name accepted, in UTF-8 bytes.
    public static let maximumLength = 255

    /// Validates a name.
    /// - Parameter value: the candidate.
    /// - Throws: `P2PError` with code `badName`, saying what is wrong.
    public init(_ value: String) throws(P2PError) {
        if let problem = Self.problem(with: value) {
            throw P2PError(code: .badName, "refused file name \(Self.quoted(value)): \(problem)")
        }
        self.value = value
    }

    /// Validates a name as a peer sent it: UTF-8 bytes that must pass the rules too.
    /// - Parameter bytes: the name's bytes.
    /// - Throws: `P2PError` with code `badName`, saying what is wrong.
    public init(utf8 bytes: [UInt8]) throws(P2PError) {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw P2PError(code: .badName, "name is not UTF-8")
        }
        try self.init(text)
    }

    /// What is wrong with `value` as a file name, or `nil` if nothing is.
    public static func problem(with value: String) -> String? {
        let bytes = Array(value.utf8)
        if bytes.isEmpty { return "empty" }
        if bytes.count > Self.maximumLength { return "longer than \(Self.maximumLength) bytes" }
        if value == "." { return "'.' is not a file" }
        // On the bytes: String.contains compares Characters, so ".." followed by a combining
        // mark (one Character ".\u{345}") would slip through.
        if zip(bytes, bytes.dropFirst()).contains(where: { $0 == 0x2E && $1 == 0x2E }) { return "contains '..'" }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "/"), UInt8(ascii: "\\"): return "contains a path separator"
            case 0: return "contains NUL"
            case 0x01...0x1F, 0x7F: return "contains a control character"
            default: continue
            }
        }
        if let problem = Self.characterProblem(in: value) { return problem }
        // A name that reads as an option to the next command, hides itself, or looks like
        // a download in progress is not what anyone means to receive.
        if bytes[0] == UInt8(ascii: "-") { return "starts with '-'" }
        if bytes[0] == UInt8(ascii: ".") { return "starts with '.' (a hidden file)" }
        if value.hasSuffix(".partial") { return "ends in '.partial'" }
        return nil
    }

    /// What is wrong with the characters of a name shown to people (a file's, a peer's),
    /// or `nil`: control characters, invisible formatting characters and line breaks.
    static func characterProblem(in value: String) -> String? {
        for scalar in value.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control: return "contains a control character"
            // Bidirectional overrides make "gpj.exe" show as "exe.jpg"; zero-width
            // characters make two different names look the same.
            case .format: return "contains an invisible formatting character (U+\(Self.hex(scalar)))"
            case .lineSeparator, .paragraphSeparator: return "contains a line break"
            default: continue
            }
        }
        return nil
    }

    private static func hex(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The name quoted for a message, with control characters escaped.
    static func quoted(_ value: String) -> String {
        let escaped = value.unicodeScalars.map { scalar -> String in
            scalar.value < 0x20 || scalar.value == 0x7F ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }.joined()
        return "'\(escaped.prefix(80))'"
    }

    public var description: String { self.value }

    public static func < (lhs: FileName, rhs: FileName) -> Bool { lhs.value < rhs.value }
}
