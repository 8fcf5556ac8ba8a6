import NIOCore
import Testing

@testable import P2P

/// The seeder's hand-out of work as a value, with the time passed in.
@Suite("WorkHandout")
struct WorkHandoutTests {
    let file = FileID(bytes: [UInt8](repeating: 7, count: 32))!

    @Test("across many requesters every chunk is handed out exactly once per round")
    func exactlyOnce() {
        var handout = WorkHandout(roundIdleTimeout: .seconds(3))
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var handed: [Int] = []
        // Seven requesters take turns, each holding a different chunk already.
        var requester = 0
        while handed.count < 64, requester < 1000 {
            var holds = ChunkBitmap(count: 64)
            holds.insert((requester * 9) % 64)
            if let chunk = handout.next(of: self.file, chunkCount: 64, requesterHolds: holds, now: now) {
                #expect(!holds.contains(chunk))
                handed.append(chunk)
            }
            requester += 1
        }
        #expect(handed.sorted() == Array(0..<64))
        #expect(handout.next(of: self.file, chunkCount: 64, requesterHolds: ChunkBitmap(count: 64), now: now) == nil)
    }

    @Test("a round ends after the quiet time, or when the file's chunk count differs")
    func roundsEnd() {
        var handout = WorkHandout(roundIdleTimeout: .seconds(3))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let none = ChunkBitmap(count: 4)
        #expect(handout.next(of: self.file, chunkCount: 4, requesterHolds: none, now: start) == 0)
        #expect(handout.next(of: self.file, chunkCount: 4, requesterHolds: none, now: start + .seconds(2)) == 1)
        // Asked within the quiet time: the round goes on.
        #expect(handout.next(of: self.file, chunkCount: 4, requesterHolds: none, now: start + .seconds(4)) == 2)
        // Quiet for longer: a new round.
        #expect(handout.next(of: self.file, chunkCount: 4, requesterHolds: none, now: start + .seconds(8)) == 0)
        // Another chunk count is another file as far as the round goes.
        let six = ChunkBitmap(count: 6)
        #expect(handout.next(of: self.file, chunkCount: 6, requesterHolds: six, now: start + .seconds(8)) == 0)
    }
}
