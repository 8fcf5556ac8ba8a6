/// A relative path inside a collection (a shared folder): one or more components joined
/// by `/`, each a valid `FileName`.
///
/// Paths come from the network. A valid one cannot leave the folder it is recreated
/// under: no component is empty, `.` or contains `..`, nothing is absolute, no NUL or
/// control characters, each component at most 255 bytes, the whole at most
/// `maximumLength` bytes and `maximumDepth` components. Anything else is refused, never
/// "cleaned up".
public struct CollectionPath: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The path, components joined by `/`.
    public let value: String
    /// Its components, outermost first.
    public let components: [FileName]

    /// The longest path accepted, in UTF-8 bytes: well within Linux's 4096-byte PATH_MAX
    /// once the downloads folder and the collection's name are put in front.
    public static let maximumLength = 1024
    /// The most components a path may have.
    public static let maximumDepth = 32

    /// Validates a path.
    /// - Parameter value: the candidate, components joined by `/`.
    /// - Throws: `P2PError` with code `badName`, saying what is wrong.
    public init(_ value: String) throws(P2PError) {
        let bytes = Array(value.utf8)
        func refuse(_ problem: String) -> P2PError {
            P2PError(code: .badName, "refused path \(FileName.quoted(value)): \(problem)")
        }
        if bytes.isEmpty { throw refuse("empty") }
        if bytes.contains(0) { throw refuse("contains NUL") }
        if bytes.count > Self.maximumLength { throw refuse("longer than \(Self.maximumLength) bytes") }
        if bytes[0] == UInt8(ascii: "/") { throw refuse("absolute") }
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count > Self.maximumDepth { throw refuse("deeper than \(Self.maximumDepth) folders") }
        var components: [FileName] = []
        components.reserveCapacity(parts.count)
        for part in parts {
            if part.isEmpty { throw refuse("an empty component") }
            if let problem = FileName.problem(with: String(part)) {
                throw refuse("component \(FileName.quoted(String(part))) \(problem)")
            }
            components.append(try FileName(String(part)))
        }
        self.value = value
        self.components = components
    }

    /// The last component: the name of the file or folder.
    public var name: FileName { self.components[self.components.count - 1] }

    /// The paths of the folders that hold this one, outermost first (`a`, `a/b` for
    /// `a/b/c`).
    public var ancestors: [String] {
        var result: [String] = []
        var path = ""
        for component in self.components.dropLast() {
            path = path.isEmpty ? component.value : path + "/" + component.value
            result.append(path)
        }
        return result
    }

    public var description: String { self.value }

    /// Byte order of the UTF-8 encoding: the canonical order of a collection's entries.
    public static func < (lhs: CollectionPath, rhs: CollectionPath) -> Bool {
        lhs.value.utf8.lexicographicallyPrecedes(rhs.value.utf8)
    }
}
