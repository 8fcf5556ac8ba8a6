/// A peer's device name (`--name`, the host name by default): carried in its announcements,
/// shown by `peers`, `ls` and the shell, and usable to name the peer.
///
/// Names come from the network and are shown on terminals, so they follow the display
/// rules of file names (`FileName.characterProblem`): no control characters, no invisible
/// formatting characters (bidirectional overrides, zero-width spaces), no line breaks; not
/// empty, no leading or trailing space, at most `maximumLength` bytes of UTF-8. Anything
/// else is refused, never cleaned up, except the host name default, which is made valid.
/// Names are not unique: two peers may share one, and listings tell them apart by id.
public struct PeerName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The validated name.
    public let value: String

    /// The longest name accepted, in UTF-8 bytes: enough for any host name people type.
    public static let maximumLength = 64

    /// Validates a name.
    /// - Parameter value: the candidate.
    /// - Throws: `P2PError` with code `badName`, saying what is wrong.
    public init(_ value: String) throws(P2PError) {
        if let problem = Self.problem(with: value) {
            throw P2PError(code: .badName, "refused peer name \(FileName.quoted(value)): \(problem)")
        }
        self.value = value
    }

    /// What is wrong with `value` as a peer name, or `nil` if nothing is.
    public static func problem(with value: String) -> String? {
        let length = value.utf8.count
        if length == 0 { return "empty" }
        if length > Self.maximumLength { return "longer than \(Self.maximumLength) bytes" }
        if let problem = FileName.characterProblem(in: value) { return problem }
        if value.first!.isWhitespace || value.last!.isWhitespace { return "starts or ends with a space" }
        return nil
    }

    /// A valid name made from a host name: characters the rules refuse are left out,
    /// spaces at either end trimmed, the rest cut to `maximumLength` bytes on a character
    /// boundary; `peer` if nothing is left.
    /// - Parameter hostName: the machine's host name.
    /// - Returns: the name.
    public static func fromHostName(_ hostName: String) -> PeerName {
        var kept = String.UnicodeScalarView()
        for scalar in hostName.unicodeScalars where FileName.characterProblem(in: String(scalar)) == nil {
            kept.append(scalar)
        }
        var text = String(kept).trimmingWhitespace()
        while text.utf8.count > Self.maximumLength { text.removeLast() }
        text = text.trimmingWhitespace()
        return (try? PeerName(text)) ?? PeerName(unchecked: "peer")
    }

    private init(unchecked value: String) {
        self.value = value
    }

    public var description: String { self.value }

    public static func < (lhs: PeerName, rhs: PeerName) -> Bool { lhs.value < rhs.value }
}

extension String {
    /// The string without white space at either end.
    fileprivate func trimmingWhitespace() -> String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
