import NIOCore

/// Which of a seeder's chunks to hand out next, as a value: each chunk once per round, in
/// file order, never one the requester holds; a round ends when every chunk has been
/// handed out, or when nobody has asked for `roundIdleTimeout`. Time is passed in;
/// `WorkDispenser` holds it in a `Mutex` for the connections that ask.
package struct WorkHandout {
    private struct Round {
        var given: ChunkBitmap
        var lastRequest: NIODeadline
        /// Every chunk before it has been handed out, so scans start here.
        var cursor = 0
    }

    private var rounds: [FileID: Round] = [:]
    /// How long without a work request ends a round.
    package let roundIdleTimeout: TimeAmount

    package init(roundIdleTimeout: TimeAmount) {
        self.roundIdleTimeout = roundIdleTimeout
    }

    /// The next chunk to hand a requester, marked as handed out.
    /// - Returns: a chunk nobody was handed in this round and the requester lacks; `nil`
    ///   when there is none.
    package mutating func next(of file: FileID, chunkCount: Int, requesterHolds: ChunkBitmap, now: NIODeadline) -> Int?
    {
        var round = self.rounds[file] ?? Round(given: ChunkBitmap(count: chunkCount), lastRequest: now)
        if round.given.count != chunkCount || now - round.lastRequest > self.roundIdleTimeout {
            round.given = ChunkBitmap(count: chunkCount)
            round.cursor = 0
        }
        round.lastRequest = now
        defer { self.rounds[file] = round }
        guard round.given.setCount < chunkCount else { return nil }
        while round.cursor < chunkCount && round.given.contains(round.cursor) { round.cursor += 1 }
        for index in round.cursor..<chunkCount where !round.given.contains(index) && !requesterHolds.contains(index) {
            round.given.insert(index)
            return index
        }
        return nil
    }

    /// Puts a handed-out chunk back, when it could not be sent after all.
    package mutating func giveBack(_ chunk: Int, of file: FileID) {
        guard var round = self.rounds[file], round.given.remove(chunk) else { return }
        round.cursor = min(round.cursor, chunk)
        self.rounds[file] = round
    }
}
