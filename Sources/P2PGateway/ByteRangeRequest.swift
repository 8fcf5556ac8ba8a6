/// What a `Range` header (RFC 9110 §14) asks of a file of a known size, and so which
/// status the answer has.
///
/// One range is served as 206; a header that does not parse, names another unit, or asks
/// for several ranges is answered with the whole file (200), which RFC 9110 allows: a
/// client that asks for several ranges at once (browsers do not; download managers open
/// one connection per range) gets everything in one response.
public enum ByteRangeRequest: Sendable, Equatable {
    /// The whole file: 200.
    case whole
    /// These bytes, first to last inclusive: 206 with `Content-Range`.
    case part(ClosedRange<UInt64>)
    /// A range that starts past the end: 416 with `Content-Range: bytes */SIZE`.
    case unsatisfiable

    /// Reads a request's range headers.
    /// - Parameters:
    ///   - range: the `Range` header, if any.
    ///   - ifRange: the `If-Range` header, if any: a range is served only while it names
    ///     the current entity tag.
    ///   - entityTag: the file's entity tag, quotes included.
    ///   - size: the file's size in bytes.
    public init(range: String?, ifRange: String? = nil, entityTag: String, size: UInt64) {
        guard let range else {
            self = .whole
            return
        }
        if let ifRange, ifRange.trimmingSpaces != entityTag {
            self = .whole
            return
        }
        let parts = range.trimmingSpaces.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bytes" else {
            self = .whole
            return
        }
        let specs = parts[1].split(separator: ",", omittingEmptySubsequences: false)
        guard specs.count == 1, let spec = Spec(String(specs[0]).trimmingSpaces) else {
            self = .whole
            return
        }
        self = spec.resolve(size: size)
    }

    /// One `first-last`, `first-` or `-suffix`.
    private enum Spec {
        case from(UInt64, through: UInt64?)
        case suffix(UInt64)

        init?(_ text: String) {
            guard let dash = text.firstIndex(of: "-") else { return nil }
            let first = text[..<dash]
            let last = text[text.index(after: dash)...]
            guard first.allSatisfy(\.isASCIIDigit), last.allSatisfy(\.isASCIIDigit) else { return nil }
            if first.isEmpty {
                guard let suffix = UInt64(last) else { return nil }
                self = .suffix(suffix)
                return
            }
            guard let start = UInt64(first) else { return nil }
            if last.isEmpty {
                self = .from(start, through: nil)
                return
            }
            // A last position too large for 64 bits still means "to the end".
            let end = UInt64(last) ?? .max
            guard end >= start else { return nil }
            self = .from(start, through: end)
        }

        func resolve(size: UInt64) -> ByteRangeRequest {
            switch self {
            case .from(let start, let end):
                guard start < size else { return .unsatisfiable }
                return .part(start...min(end ?? .max, size - 1))
            case .suffix(let length):
                guard length > 0, size > 0 else { return .unsatisfiable }
                return .part((size - min(length, size))...(size - 1))
            }
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(
            self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed()
        )
    }
}
