/// Closes a file (or anything else) even from a cancelled task.
///
/// Why: NIO's file handles close on its thread pool, which refuses work for a cancelled
/// task (`CancellationError`), and a handle dropped without being closed is a fatal error
/// ("Leaking file descriptor"). A download whose task is cancelled closes its files on the
/// way out, and a connection's task reading a chunk may be cancelled as it closes a handle;
/// so the close runs in a task of its own, which the caller's cancellation does not reach.
/// - Parameter close: the closing; an error is dropped, as a failed close leaves nothing
///   to do.
func closeEvenIfCancelled(_ close: @escaping @Sendable () async throws -> Void) async {
    await Task { try? await close() }.value
}
