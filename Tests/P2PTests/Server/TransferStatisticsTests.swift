import NIOCore
import Testing

@testable import P2P

@Suite("Transfer statistics")
struct TransferStatisticsTests {
    @Test("bytes served are counted by the host they went to, whatever the port")
    func servedByHost() throws {
        let statistics = TransferStatistics()
        statistics.recordServed(bytes: 100, to: try SocketAddress(ipAddress: "127.0.0.2", port: 4000))
        statistics.recordServed(bytes: 50, to: try SocketAddress(ipAddress: "127.0.0.2", port: 4001))
        statistics.recordServed(bytes: 7, to: nil)
        let snapshot = statistics.snapshot
        #expect(snapshot.bytesServedTo == ["127.0.0.2": 150, TransferStatistics.otherSource: 7])
        #expect(snapshot.bytesServed == 157)
        #expect(snapshot.chunksServed == 3)
    }

    @Test("the per-source counters stop telling sources apart at their bound, and totals go on")
    func bounded() throws {
        let statistics = TransferStatistics()
        let bound = TransferStatistics.maximumCountedSources
        for number in 0..<(bound + 10) {
            let address = try SocketAddress(ipAddress: "10.0.\(number / 250).\(number % 250)", port: 1)
            statistics.recordServed(bytes: 1, to: address)
            statistics.recordVerified(bytes: 2, from: PeerID(high: 0, low: UInt64(number)))
        }
        let snapshot = statistics.snapshot
        #expect(snapshot.bytesServedTo.count == bound + 1)
        #expect(snapshot.bytesServedTo[TransferStatistics.otherSource] == 10)
        #expect(snapshot.bytesReceivedFrom.count == bound + 1)
        #expect(snapshot.bytesReceivedFrom[nil] == 20)
        #expect(snapshot.bytesReceived == Int64(2 * (bound + 10)))
        #expect(snapshot.chunksVerified == bound + 10)
    }

    @Test("rejected chunks are counted apart from verified ones")
    func rejected() {
        let statistics = TransferStatistics()
        statistics.recordRejected()
        statistics.recordVerified(bytes: 5, from: PeerID(high: 1, low: 1))
        #expect(statistics.snapshot.chunksRejected == 1)
        #expect(statistics.snapshot.chunksVerified == 1)
    }
}
