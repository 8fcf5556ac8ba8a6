import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process the tests started, usually `p2p`: its stdout and stderr lines are
/// collected as they come, lines can be written to its stdin, and it is always killed
/// (SIGKILL, by PID) when this object goes away, so a failing test leaks nothing.
final class PeerProcess: Sendable {
    /// Which output stream.
    enum Stream: Sendable, CustomStringConvertible {
        case stdout
        case stderr

        var description: String {
            switch self {
            case .stdout: "stdout"
            case .stderr: "stderr"
            }
        }
    }

    /// How the process ended.
    struct Termination: Sendable, Equatable, CustomStringConvertible {
        /// The exit code, or the signal number if it was killed by a signal.
        var status: Int32
        /// Whether `status` is a signal number.
        var bySignal: Bool

        var description: String { self.bySignal ? "killed by signal \(self.status)" : "exit \(self.status)" }
    }

    /// Why waiting failed.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A short name for messages, such as `peer2`.
    let name: String
    /// When `run()` returned: the process had been started.
    let launchTime: ContinuousClock.Instant
    /// The process id.
    let pid: Int32

    private let process: Process
    private let stdoutLines = LineBuffer()
    private let stderrLines = LineBuffer()
    private let stdin: Mutex<FileHandle?>
    /// Shared with the termination handler, which runs before `self` exists fully.
    private final class TerminationBox: Sendable {
        let value = Mutex<Termination?>(nil)
    }

    private let terminationBox = TerminationBox()

    /// Starts a process.
    /// - Parameters:
    ///   - name: a short name for messages.
    ///   - executable: the program.
    ///   - arguments: its arguments.
    ///   - workingDirectory: its working directory.
    /// - Throws: if it cannot be started.
    init(name: String, executable: URL, arguments: [String], workingDirectory: URL) throws {
        PeerProcess.ignoreBrokenPipes
        self.name = name
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        // Foundation closes every other descriptor in the child, so one peer never holds
        // another's stdin open.
        let input = Pipe()
        let output = Pipe()
        let error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        let termination = self.terminationBox
        process.terminationHandler = { process in
            let ended = Termination(
                status: process.terminationStatus,
                bySignal: process.terminationReason == .uncaughtSignal
            )
            termination.value.withLock { $0 = ended }
        }
        try process.run()
        self.launchTime = .now
        self.process = process
        self.pid = process.processIdentifier
        self.stdin = Mutex(input.fileHandleForWriting)
        Self.startReading(output.fileHandleForReading, into: self.stdoutLines, name: "\(name) stdout")
        Self.startReading(error.fileHandleForReading, into: self.stderrLines, name: "\(name) stderr")
    }

    deinit {
        self.kill()
        self.closeStandardInput()
    }

    /// Writing to a process that has exited must fail with EPIPE, not kill the test runner.
    private static let ignoreBrokenPipes: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// Reads a stream on a thread of its own until end of file: the child's exit (or its
    /// closing the stream) ends the thread.
    private static func startReading(_ handle: FileHandle, into buffer: LineBuffer, name: String) {
        let thread = Thread {
            let descriptor = handle.fileDescriptor
            let capacity = 16 * 1024
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
            defer { storage.deallocate() }
            while true {
                let count = read(descriptor, storage.baseAddress, capacity)
                if count > 0 {
                    buffer.append(UnsafeRawBufferPointer(rebasing: storage[..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            buffer.finish()
            try? handle.close()
        }
        thread.name = name
        thread.start()
    }

    // MARK: Output

    /// The lines written so far to a stream.
    func lines(_ stream: Stream) -> [OutputLine] {
        self.buffer(stream).lines
    }

    /// How many lines have been written so far to a stream.
    func lineCount(_ stream: Stream) -> Int {
        self.buffer(stream).count
    }

    /// Waits for a line on a stream that matches, polling every few milliseconds.
    /// - Parameters:
    ///   - stream: stdout or stderr.
    ///   - index: the first line index to consider, to skip lines already seen.
    ///   - predicate: the test a line must pass.
    ///   - timeout: how long to wait at most.
    /// - Returns: the line (with the time it was read) and its index.
    /// - Throws: `Failure` if the time runs out or the stream ends first.
    @discardableResult
    func waitForLine(
        in stream: Stream,
        from index: Int = 0,
        matching predicate: (String) -> Bool,
        timeout: Duration
    ) async throws -> (line: OutputLine, index: Int) {
        let buffer = self.buffer(stream)
        let deadline = ContinuousClock.now + timeout
        while true {
            let (match, finished) = buffer.firstLine(from: index, where: predicate)
            if let match { return match }
            if finished {
                throw Failure(
                    description: "\(self.name): \(stream) ended without the line expected; \(self.transcript())"
                )
            }
            if ContinuousClock.now >= deadline {
                throw Failure(
                    description: "\(self.name): no such line on \(stream) within \(timeout); \(self.transcript())"
                )
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits for a line that contains `text`.
    @discardableResult
    func waitForLine(
        in stream: Stream,
        from index: Int = 0,
        containing text: String,
        timeout: Duration
    ) async throws -> (line: OutputLine, index: Int) {
        try await self.waitForLine(in: stream, from: index, matching: { $0.contains(text) }, timeout: timeout)
    }

    /// Both streams, trimmed, for failure messages.
    func transcript(maximumLines: Int = 20) -> String {
        let out = self.lines(.stdout).suffix(maximumLines).map(\.text).joined(separator: "\n  ")
        let err = self.lines(.stderr).suffix(maximumLines).map(\.text).joined(separator: "\n  ")
        return "\(self.exitDescription)\n stdout:\n  \(out)\n stderr:\n  \(err)"
    }

    private var exitDescription: String {
        self.terminationBox.value.withLock { $0 }.map { "\(self.name) \($0)" } ?? "\(self.name) running"
    }

    private func buffer(_ stream: Stream) -> LineBuffer {
        switch stream {
        case .stdout: self.stdoutLines
        case .stderr: self.stderrLines
        }
    }

    // MARK: Input

    /// Writes one line to the process's stdin.
    /// - Parameter line: the line, without a newline.
    /// - Throws: if stdin is closed or the process has gone.
    func send(_ line: String) throws {
        try self.stdin.withLock { handle in
            guard let handle else { throw Failure(description: "\(self.name): stdin is closed") }
            try handle.write(contentsOf: Data((line + "\n").utf8))
        }
    }

    /// Closes stdin: the process sees end of input.
    func closeStandardInput() {
        self.stdin.withLock { handle in
            try? handle?.close()
            handle = nil
        }
    }

    // MARK: Signals and exit

    /// Whether the process has not been seen to exit yet.
    var isRunning: Bool { self.terminationBox.value.withLock { $0 == nil } }

    /// How it ended, once it has.
    var terminationStatus: Termination? { self.terminationBox.value.withLock { $0 } }

    /// Sends SIGTERM.
    func terminate() { self.deliver(SIGTERM) }

    /// Sends SIGINT.
    func interrupt() { self.deliver(SIGINT) }

    /// Sends SIGKILL.
    func kill() { self.deliver(SIGKILL) }

    private func deliver(_ signalNumber: Int32) {
        // Only while it has not been reaped: after that the PID may belong to someone else.
        self.terminationBox.value.withLock { ended in
            if ended == nil { _ = sendSignal(signalNumber, to: self.pid) }
        }
    }

    /// Waits for the process to exit.
    /// - Parameter timeout: how long at most.
    /// - Returns: the exit code.
    /// - Throws: `Failure` if it is still running after `timeout`, or died by a signal.
    @discardableResult
    func waitForExit(timeout: Duration) async throws -> Int32 {
        let ended = try await self.waitForTermination(timeout: timeout)
        guard !ended.bySignal else {
            throw Failure(description: "\(self.name) was \(ended); \(self.transcript(maximumLines: 400))")
        }
        return ended.status
    }

    /// Waits for the process to end, by exit or signal.
    /// - Parameter timeout: how long at most.
    /// - Returns: how it ended.
    /// - Throws: `Failure` if it is still running after `timeout`.
    func waitForTermination(timeout: Duration) async throws -> Termination {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let ended = self.terminationStatus { return ended }
            if ContinuousClock.now >= deadline {
                throw Failure(description: "\(self.name) still running after \(timeout); \(self.transcript())")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until both output streams have ended, so every line is in.
    /// - Parameter timeout: how long at most.
    func waitForOutputToEnd(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(self.stdoutLines.isFinished && self.stderrLines.isFinished) {
            if ContinuousClock.now >= deadline {
                throw Failure(description: "\(self.name): output still open after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// `kill(2)`, under a name the methods above do not shadow.
private func sendSignal(_ signalNumber: Int32, to pid: Int32) -> Int32 {
    kill(pid, signalNumber)
}
