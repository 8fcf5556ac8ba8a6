import NIOCore
import Synchronization

/// Hands out a seeder's chunks so that each leaves its uplink once (SPEC §7, flash crowd).
///
/// When many peers download one file from one seeder at once, the seeder's upload is the
/// bound; every chunk it sends twice is time lost for all. So downloaders ask it for work
/// rather than for chunk numbers: each work request gets the next chunk (in file order)
/// that nobody was handed yet in this round, and the downloader that gets it forwards it
/// to all the others. A downloader asks only while it keeps up with forwarding, so the
/// seeder's chunks go to whoever spreads them fastest.
///
/// A round ends when every chunk has been handed out (late askers then get "no work" and
/// fetch what they lack from the peers that hold it), or when nobody has asked for a
/// while: the next crowd starts a new round.
public final class WorkDispenser: Sendable {
    private struct Round {
        var given: ChunkBitmap
        var lastRequest: NIODeadline
        /// Every chunk before it has been handed out, so scans start here.
        var cursor = 0
    }

    private let rounds = Mutex<[FileID: Round]>([:])
    /// How long without a work request ends a round.
    public let roundIdleTimeout: TimeAmount

    /// Creates a dispenser.
    /// - Parameter roundIdleTimeout: quiet time after which the next request starts afresh.
    public init(roundIdleTimeout: TimeAmount = .seconds(3)) {
        self.roundIdleTimeout = roundIdleTimeout
    }

    /// The next chunk to hand a requester, marked as handed out.
    /// - Parameters:
    ///   - file: the file's id.
    ///   - chunkCount: its number of chunks.
    ///   - requesterHolds: what the requester holds or has been handed on this connection.
    ///   - now: the time, for ending idle rounds.
    /// - Returns: a chunk nobody was handed in this round and the requester lacks; `nil`
    ///   when there is none.
    public func next(
        of file: FileID,
        chunkCount: Int,
        requesterHolds: ChunkBitmap,
        now: NIODeadline = .now()
    ) -> Int? {
        self.rounds.withLock { rounds in
            var round = rounds[file] ?? Round(given: ChunkBitmap(count: chunkCount), lastRequest: now)
            if round.given.count != chunkCount || now - round.lastRequest > self.roundIdleTimeout {
                round.given = ChunkBitmap(count: chunkCount)
                round.cursor = 0
            }
            round.lastRequest = now
            defer { rounds[file] = round }
            guard round.given.setCount < chunkCount else { return nil }
            while round.cursor < chunkCount && round.given.contains(round.cursor) { round.cursor += 1 }
            for index in round.cursor..<chunkCount where !round.given.contains(index) && !requesterHolds.contains(index)
            {
                round.given.insert(index)
                return index
            }
            return nil
        }
    }

    /// Puts a handed-out chunk back, when it could not be sent after all.
    public func giveBack(_ chunk: Int, of file: FileID) {
        self.rounds.withLock { rounds in
            guard var round = rounds[file], round.given.remove(chunk) else { return }
            round.cursor = min(round.cursor, chunk)
            rounds[file] = round
        }
    }
}
