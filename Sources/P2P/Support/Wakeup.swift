import NIOCore
import Synchronization

/// Wakes one waiting task: the way a download's workers sleep until something they care
/// about changes (an answer came, a peer's holdings changed, forwarding caught up) instead
/// of polling on a timer.
///
/// A signal sent while nobody waits is kept, so a wake-up between "nothing to do" and
/// "wait" is never lost; several signals before one wait count as one.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>? = nil
    }

    private let state = Mutex(State())

    init() {}

    /// Wakes the waiter, or the next one to wait.
    func signal() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Waits for a signal; returns at once if one came since the last wait, or if the task
    /// is cancelled. One task waits at a time.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.signal()
        }
    }

    /// Waits for a signal or until `timeout` has passed, whichever is first.
    /// - Parameters:
    ///   - timeout: the longest wait.
    ///   - eventLoop: where the timer runs.
    func wait(atMost timeout: TimeAmount, on eventLoop: any EventLoop) async {
        let timer = eventLoop.scheduleTask(in: timeout) { self.signal() }
        await self.wait()
        timer.cancel()
    }
}
