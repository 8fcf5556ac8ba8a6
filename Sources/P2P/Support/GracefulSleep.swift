import ServiceLifecycle

/// Sleeps unless the task is cancelled or graceful shutdown begins first.
/// - Parameter duration: how long.
/// - Returns: true if the whole duration passed; false if the loop that asked should end.
package func sleepUnlessShuttingDown(_ duration: Duration) async -> Bool {
    guard !Task.isShuttingDownGracefully else { return false }
    do {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
        return true
    } catch {
        return false
    }
}

/// Runs `body`, cancelling it when graceful shutdown begins; errors, including the
/// cancellation itself, end it quietly.
/// - Parameter body: the work, typically a `for await` loop.
package func cancelWhenGracefulShutdownIgnoringErrors(_ body: @escaping @Sendable () async throws -> Void) async {
    try? await cancelWhenGracefulShutdown { try await body() }
}
