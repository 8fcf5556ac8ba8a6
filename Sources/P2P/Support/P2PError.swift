/// An error a person can act on: what happened, in words, and a code for programs.
///
/// The description is written to be printed as the one line a command shows before it
/// exits non-zero, so it says what went wrong and, where there is one, what to do.
public struct P2PError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Kinds of failure, for code that reacts to some of them.
    public enum Code: String, Sendable, Equatable {
        /// A port could not be bound: in use, or not permitted.
        case portUnavailable
        /// A folder is missing, unreadable or not writable.
        case badFolder
        /// A name or path from the network or the user is unsafe or malformed.
        case badName
        /// A file could not be found in the swarm.
        case notFound
        /// A name matches several different files.
        case ambiguous
        /// A download did not finish in time.
        case timedOut
        /// A peer broke the protocol.
        case protocolViolation
        /// Data failed verification.
        case corrupt
        /// A different file already stands where a download would go.
        case fileExists
        /// Reading or writing the disk failed.
        case storage
        /// An argument is not valid.
        case invalidArgument
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, in one line.
    public var message: String

    /// Creates an error.
    /// - Parameters:
    ///   - code: the kind of failure.
    ///   - message: what happened, in one line.
    public init(code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
