/// Runs `body`, giving up with a `P2PError` (`timedOut`) if it takes longer than
/// `duration`. The body is cancelled on timeout.
/// - Parameters:
///   - duration: the limit.
///   - what: what is waited for, for the error message.
///   - body: the work.
/// - Returns: what the body returns.
/// - Throws: the body's error, or `P2PError` on timeout.
package func withTimeout<Result: Sendable>(
    _ duration: Duration,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw P2PError(code: .timedOut, "timed out after \(duration) waiting for \(what)")
        }
        return result
    }
}
