/// How a download worker paces its requests to one peer, as a value: when to ask for the
/// peer's inventory again, how many work requests to keep in flight to the seeder a crowd
/// shares, under what relay backlog one more may go out, and in what piece length.
/// `Downloader`'s workers and `p2p-sim` both ask it, so the simulator paces as the engine.
package struct WorkerPacing: Sendable {
    package let configuration: Downloader.Configuration
    /// The file's chunk size.
    package let chunkSize: Int

    package init(configuration: Downloader.Configuration, chunkSize: Int) {
        self.configuration = configuration
        self.chunkSize = chunkSize
    }

    /// Whether to ask the peer for its inventory again: its holdings change while it
    /// downloads (a seeder's do not), at most every `refreshInterval`, one request at a time.
    package func isRefreshDue(peerHoldsAll: Bool, sinceLastRefresh: Duration, expectingInventory: Bool) -> Bool {
        !peerHoldsAll && sinceLastRefresh >= self.configuration.refreshInterval && !expectingInventory
    }

    /// The most work requests in flight to the seeder. With nobody to relay to (no
    /// subscriber, and no partner in the relay overlay to become one), work is just chunks,
    /// as fast as the window allows; otherwise two, each asked only while this peer keeps
    /// up forwarding (`backlogBound`). So a crowd's first requests do not each take a
    /// window before anyone has subscribed: the chunks they brought would reach nobody.
    package func workRequestLimit(relaying: Bool, window: Int) -> Int {
        relaying ? 2 : window
    }

    /// The relay backlog (the longest queue to one subscriber) under which one more work
    /// request may go out with `inFlight` asked for already: each chunk asked for is one
    /// more chunk in every subscriber's queue, so the longest queue plus what is in flight
    /// stays within one chunk of `forwardingBacklogLimit` (SPEC §7).
    package func backlogBound(inFlight: Int) -> Int {
        self.configuration.forwardingBacklogLimit + self.chunkSize * (1 - inFlight)
    }

    /// The piece length to ask for work in: pieces while relaying, so that forwarding
    /// starts with the first; whole chunks otherwise.
    package func pieceLength(relaying: Bool) -> Int {
        relaying ? self.configuration.relayPieceLength : 0
    }
}
