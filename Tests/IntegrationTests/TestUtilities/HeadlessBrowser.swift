import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// JSON messages, each ended by a NUL byte, on file descriptors 3 and 4), so that a test can
/// open a page and read its live DOM while the page runs, without screenshots and without a
/// WebSocket client. The browser starts with a fresh profile and is closed (then killed, by
/// PID) by `close()` or when the swarm shuts down.
final class HeadlessBrowser: Sendable {
    /// Why the browser did not do what was asked.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Debian's package, the one `.ci/run` installs.
    static let executable: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// What the reader thread reads as its cue to stop: only this side writes it.
    private static let endOfReading = #"{"p2p-test":"end"}"#

    private let process: PeerProcess
    /// Commands to the browser (fd 3 there); held read-write, so opening never waited.
    private let toBrowser: Int32
    /// Messages from the browser (fd 4 there); held read-write, so the end marker can be
    /// written into it.
    private let fromBrowser: Int32
    private let replies = Mutex<[Int: Data]>([:])
    private let nextID = Mutex(1)
    private let session = Mutex<String?>(nil)

    private init(process: PeerProcess, toBrowser: Int32, fromBrowser: Int32) {
        self.process = process
        self.toBrowser = toBrowser
        self.fromBrowser = fromBrowser
    }

    /// Starts the browser with `url` open in a tab.
    /// - Parameters:
    ///   - url: the page.
    ///   - swarm: the test's swarm, which keeps the process and its folder.
    /// - Returns: the browser, attached to the tab.
    static func open(_ url: String, in swarm: TestSwarm) async throws -> HeadlessBrowser {
        guard let chromium = Self.executable else { throw Failure(description: "chromium is not installed") }
        let folder = swarm.directory.appendingPathComponent("browser-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let input = folder.appendingPathComponent("to-browser").path
        let output = folder.appendingPathComponent("from-browser").path
        guard mkfifo(input, 0o600) == 0, mkfifo(output, 0o600) == 0 else {
            throw Failure(description: "mkfifo failed: errno \(errno)")
        }
        let writer = Glibc.open(input, O_RDWR | O_CLOEXEC)
        let reader = Glibc.open(output, O_RDWR | O_CLOEXEC)
        guard writer >= 0, reader >= 0 else { throw Failure(description: "cannot open the pipes: errno \(errno)") }
        let command =
            "exec \"$0\" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
            + "--no-default-browser-check --disable-extensions --disable-background-networking "
            + "--disable-component-update --disable-sync --user-data-dir=\"$1/profile\" "
            + "--remote-debugging-pipe about:blank 3<\"$1/to-browser\" 4>\"$1/from-browser\""
        let process = try swarm.launch(
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", command, chromium, folder.path],
            name: "chromium"
        )
        let browser = HeadlessBrowser(process: process, toBrowser: writer, fromBrowser: reader)
        browser.startReading()
        do {
            try await browser.attach(to: url)
        } catch {
            await browser.close()
            throw error
        }
        return browser
    }

    private func attach(to url: String) async throws {
        let target = try await self.call("Target.createTarget", ["url": url], inPage: false)
        guard let targetID = target["targetId"] as? String else {
            throw Failure(description: "no tab: \(target)")
        }
        let attached = try await self.call(
            "Target.attachToTarget",
            ["targetId": targetID, "flatten": true],
            inPage: false
        )
        guard let session = attached["sessionId"] as? String else {
            throw Failure(description: "not attached to the tab: \(attached)")
        }
        self.session.withLock { $0 = session }
    }

    private func startReading() {
        let descriptor = self.fromBrowser
        // The thread holds the browser until `close()` writes the end marker.
        let thread = Thread { [self] in
            var pending = [UInt8]()
            let capacity = 64 * 1024
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
            defer {
                storage.deallocate()
                Glibc.close(descriptor)
            }
            while true {
                let count = read(descriptor, storage.baseAddress, capacity)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return }
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: storage[..<count]))
                while let end = pending.firstIndex(of: 0) {
                    let message = Data(pending[..<end])
                    pending.removeSubrange(...end)
                    if message == Data(Self.endOfReading.utf8) { return }
                    if let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
                        let id = object["id"] as? Int
                    {
                        self.replies.withLock { $0[id] = message }
                    }
                }
            }
        }
        thread.name = "chromium pipe"
        thread.start()
    }

    /// Sends a DevTools command and waits for its answer.
    /// - Returns: the answer's `result`.
    private func call(
        _ method: String,
        _ parameters: [String: Any],
        inPage: Bool = true,
        timeout: Duration = .seconds(30)
    ) async throws -> [String: Any] {
        let id = self.nextID.withLock { id in
            defer { id += 1 }
            return id
        }
        var message: [String: Any] = ["id": id, "method": method, "params": parameters]
        if inPage, let session = self.session.withLock({ $0 }) { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        let written = bytes.withUnsafeBytes { write(self.toBrowser, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw Failure(description: "cannot write to the browser: errno \(errno)") }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let reply = self.replies.withLock({ $0.removeValue(forKey: id) }) {
                let object = (try JSONSerialization.jsonObject(with: reply) as? [String: Any]) ?? [:]
                if let error = object["error"] { throw Failure(description: "\(method) failed: \(error)") }
                return object["result"] as? [String: Any] ?? [:]
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Failure(description: "no answer to \(method) within \(timeout); \(self.process.transcript())")
    }

    /// Evaluates a JavaScript expression in the page.
    /// - Returns: its value as a string; `nil` for `null` or `undefined`.
    func evaluate(_ expression: String) async throws -> String? {
        let wrapped = "(() => { const value = (\(expression)); return value == null ? null : String(value); })()"
        let reply = try await self.call("Runtime.evaluate", ["expression": wrapped, "returnByValue": true])
        if let exception = reply["exceptionDetails"] { throw Failure(description: "the page threw: \(exception)") }
        return (reply["result"] as? [String: Any])?["value"] as? String
    }

    /// Reads an expression every 100 ms until `predicate` holds of it or `timeout` passes.
    /// - Returns: whether it held, and the last value read.
    func waitFor(
        _ expression: String,
        timeout: Duration,
        until predicate: (String?) -> Bool
    ) async throws -> (held: Bool, last: String?) {
        let deadline = ContinuousClock.now + timeout
        var last: String? = nil
        let rounds = Int(timeout / .milliseconds(100)) + 1
        for _ in 0..<rounds where ContinuousClock.now < deadline {
            last = try await self.evaluate(expression)
            if predicate(last) { return (true, last) }
            try await Task.sleep(for: .milliseconds(100))
        }
        return (false, last)
    }

    /// Asks the browser to close, and kills it if it has not within five seconds.
    func close() async {
        _ = try? await self.call("Browser.close", [:], inPage: false, timeout: .seconds(5))
        if (try? await self.process.waitForTermination(timeout: .seconds(5))) == nil { self.process.kill() }
        var marker = [UInt8](Self.endOfReading.utf8)
        marker.append(0)
        _ = marker.withUnsafeBytes { write(self.fromBrowser, $0.baseAddress, $0.count) }
        Glibc.close(self.toBrowser)
    }
}
