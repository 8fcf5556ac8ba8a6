/// Thrown when a bounded wait runs out.
struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

/// Checks `condition` every `interval` until it holds or `timeout` passes.
/// - Returns: whether it held in time.
func poll(
    every interval: Duration = .milliseconds(20),
    timeout: Duration,
    until condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// Runs `body`, cancelling it and throwing `TimedOut` if it takes longer than `timeout`.
/// `body` must end when cancelled (as `AsyncStream` iteration does).
func withTimeout<Result: Sendable>(
    _ timeout: Duration,
    what: String,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let result = next { return result }
            throw TimedOut(what: what)
        }
        throw TimedOut(what: what)
    }
}
