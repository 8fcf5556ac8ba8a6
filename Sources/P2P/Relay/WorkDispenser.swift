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
    private let handout: Mutex<WorkHandout>
    /// How long without a work request ends a round.
    public var roundIdleTimeout: TimeAmount { self.handout.withLock { $0.roundIdleTimeout } }

    /// How long without a work request ends a round, by default. A crowd's first requests
    /// can book the seeder's uplink for several seconds (each downloader asks for a full
    /// window before anyone subscribes to its relays), during which nobody asks again; a
    /// round that ended then would hand every chunk out a second time. A crowd of 63 at
    /// 25 Mbit/s books it for about 9 s (`p2p-sim`); ten seconds outlasts that.
    public static let defaultRoundIdleTimeout: TimeAmount = .seconds(10)

    /// Creates a dispenser.
    /// - Parameter roundIdleTimeout: quiet time after which the next request starts afresh.
    public init(roundIdleTimeout: TimeAmount = WorkDispenser.defaultRoundIdleTimeout) {
        self.handout = Mutex(WorkHandout(roundIdleTimeout: roundIdleTimeout))
    }

    /// The next chunk to hand a requester, marked as handed out (see `WorkHandout`).
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
        self.handout.withLock { $0.next(of: file, chunkCount: chunkCount, requesterHolds: requesterHolds, now: now) }
    }

    /// Puts a handed-out chunk back, when it could not be sent after all.
    public func giveBack(_ chunk: Int, of file: FileID) {
        self.handout.withLock { $0.giveBack(chunk, of: file) }
    }
}
