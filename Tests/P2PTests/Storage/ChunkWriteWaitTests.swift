import Foundation
import NIOCore
import Synchronization
import Testing

@testable import P2P

/// A read of a chunk that is verified but not yet written waits for the write to land,
/// woken by it: no polling, and never longer than the write, the file or the task lasts.
@Suite("Waiting for a chunk's write", .timeLimit(.minutes(1)))
struct ChunkWriteWaitTests {
    @Test("a waiter wakes when the chunk's write lands, and not before")
    func wakesOnWrite() async throws {
        try await StorageFixture.withOriginAndSink(sharing: "w.bin", size: 600_000) { origin, store, _ in
            let file = try await store.beginDownload(origin.manifest)
            let woke = ManagedFlag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    await store.waitForWrite(origin.manifest.id, index: 1)
                    woke.set()
                }
                try await Task.sleep(for: .milliseconds(50))
                #expect(!woke.isSet)
                try await file.write(origin.chunks[1], chunk: 1)
                try await group.waitForAll()
            }
            #expect(woke.isSet)
            #expect(try await store.readChunk(origin.manifest.id, index: 1) != nil)
            // Held already: no wait at all.
            await store.waitForWrite(origin.manifest.id, index: 1)
        }
    }

    @Test("a waiter wakes when the download closes, and when its task is cancelled")
    func wakesOnCloseAndCancel() async throws {
        try await StorageFixture.withOriginAndSink(sharing: "w.bin", size: 600_000) { origin, store, _ in
            _ = try await store.beginDownload(origin.manifest)
            let cancelled = Task { await store.waitForWrite(origin.manifest.id, index: 0) }
            try await Task.sleep(for: .milliseconds(20))
            cancelled.cancel()
            await cancelled.value

            async let closing: Void = store.waitForWrite(origin.manifest.id, index: 2)
            try await Task.sleep(for: .milliseconds(20))
            await store.suspendDownload(origin.manifest.id)
            await closing
        }
    }
}

/// A flag set once, read from another task.
private final class ManagedFlag: Sendable {
    private let value = Mutex(false)
    func set() { self.value.withLock { $0 = true } }
    var isSet: Bool { self.value.withLock { $0 } }
}
