import Testing

@testable import P2P

@Suite("WorkerPacing: when a worker asks for inventories and work")
struct WorkerPacingTests {
    let pacing = WorkerPacing(configuration: Downloader.Configuration(), chunkSize: 256 << 10)

    @Test("an inventory is asked for again after the refresh interval, one at a time, never of a seeder")
    func refresh() {
        let interval = Downloader.Configuration().refreshInterval
        #expect(self.pacing.isRefreshDue(peerHoldsAll: false, sinceLastRefresh: interval, expectingInventory: false))
        #expect(
            !self.pacing.isRefreshDue(
                peerHoldsAll: false,
                sinceLastRefresh: interval - .milliseconds(1),
                expectingInventory: false
            )
        )
        #expect(!self.pacing.isRefreshDue(peerHoldsAll: false, sinceLastRefresh: interval, expectingInventory: true))
        #expect(
            !self.pacing.isRefreshDue(peerHoldsAll: true, sinceLastRefresh: .seconds(60), expectingInventory: false)
        )
    }

    @Test("work: the window alone, or two in flight while relaying, each within one chunk of the backlog limit")
    func work() {
        let limit = Downloader.Configuration().forwardingBacklogLimit
        let chunk = 256 << 10
        #expect(self.pacing.workRequestLimit(relaying: false, window: 8) == 8)
        #expect(self.pacing.workRequestLimit(relaying: true, window: 8) == 2)
        #expect(self.pacing.backlogBound(inFlight: 0) == limit + chunk)
        #expect(self.pacing.backlogBound(inFlight: 1) == limit)
        #expect(self.pacing.backlogBound(inFlight: 2) == limit - chunk)
        #expect(self.pacing.pieceLength(relaying: true) == Downloader.Configuration().relayPieceLength)
        #expect(self.pacing.pieceLength(relaying: false) == 0)
    }
}
