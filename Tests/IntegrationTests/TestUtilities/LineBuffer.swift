import Synchronization

/// One line a child process wrote, and when the test saw it.
struct OutputLine: Sendable, CustomStringConvertible {
    /// The line, without its newline.
    var text: String
    /// When it was read.
    var time: ContinuousClock.Instant

    var description: String { self.text }
}

/// The lines read so far from one of a child's output streams, safe to read from any task
/// while a reader thread appends.
final class LineBuffer: Sendable {
    private struct State {
        var lines: [OutputLine] = []
        var partial: [UInt8] = []
        var isFinished = false
    }

    private let state = Mutex(State())

    /// Adds bytes read from the stream; every complete line becomes an `OutputLine`.
    /// - Parameter bytes: the bytes, in order.
    func append(_ bytes: UnsafeRawBufferPointer) {
        let now = ContinuousClock.now
        self.state.withLock { state in
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    state.lines.append(OutputLine(text: String(decoding: state.partial, as: UTF8.self), time: now))
                    state.partial.removeAll(keepingCapacity: true)
                } else {
                    state.partial.append(byte)
                }
            }
        }
    }

    /// Marks the end of the stream; an unterminated last line counts as a line.
    func finish() {
        let now = ContinuousClock.now
        self.state.withLock { state in
            if !state.partial.isEmpty {
                state.lines.append(OutputLine(text: String(decoding: state.partial, as: UTF8.self), time: now))
                state.partial.removeAll()
            }
            state.isFinished = true
        }
    }

    /// The lines so far.
    var lines: [OutputLine] { self.state.withLock { $0.lines } }

    /// How many lines so far.
    var count: Int { self.state.withLock { $0.lines.count } }

    /// Whether the stream has ended.
    var isFinished: Bool { self.state.withLock { $0.isFinished } }

    /// The first line at or after `index` that matches.
    /// - Parameters:
    ///   - index: where to start looking.
    ///   - predicate: the test for a line.
    /// - Returns: the line and its index, or nil if none yet, and whether the stream ended.
    func firstLine(
        from index: Int,
        where predicate: (String) -> Bool
    ) -> (match: (line: OutputLine, index: Int)?, isFinished: Bool) {
        self.state.withLock { state in
            var position = max(0, index)
            while position < state.lines.count {
                if predicate(state.lines[position].text) {
                    return ((state.lines[position], position), state.isFinished)
                }
                position += 1
            }
            return (nil, state.isFinished)
        }
    }
}
