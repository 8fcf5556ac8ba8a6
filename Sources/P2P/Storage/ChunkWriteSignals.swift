import Synchronization

/// Wakes the tasks waiting for a chunk of a file to be written: when its write lands,
/// fails, or the file closes, or when the waiting task is cancelled. The file's actor
/// checks and registers in one step, so a write cannot fall between the two.
final class ChunkWriteSignals: Sendable {
    private struct State {
        var waiters: [Int: [UInt64: CheckedContinuation<Void, Never>]] = [:]
        var nextKey: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Waits until `signal(index)` or `signalAll()`, or until the task is cancelled.
    func wait(for index: Int) async {
        let key = self.state.withLock { state in
            defer { state.nextKey += 1 }
            return state.nextKey
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                self.state.withLock { $0.waiters[index, default: [:]][key] = continuation }
                if Task.isCancelled { self.resume(index, key) }
            }
        } onCancel: {
            self.resume(index, key)
        }
    }

    /// Wakes the waiters for chunk `index`.
    func signal(_ index: Int) {
        let waiters = self.state.withLock { $0.waiters.removeValue(forKey: index) } ?? [:]
        for waiter in waiters.values { waiter.resume() }
    }

    /// Wakes every waiter.
    func signalAll() {
        let waiters = self.state.withLock { state in
            defer { state.waiters.removeAll() }
            return state.waiters.values.flatMap(\.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    private func resume(_ index: Int, _ key: UInt64) {
        let waiter = self.state.withLock { $0.waiters[index]?.removeValue(forKey: key) }
        waiter?.resume()
    }
}
