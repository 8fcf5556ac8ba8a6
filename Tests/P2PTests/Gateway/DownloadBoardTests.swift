import P2P
import P2PGateway
import Testing

@Suite("The gateway's downloads, as a value")
struct DownloadBoardTests {
    static let a = FileID(hashing: [1])
    static let b = FileID(hashing: [2])

    static func progress(_ held: Int64, of total: Int64, rate: Double = 100) -> DownloadProgress {
        DownloadProgress(name: "f", bytesHeld: held, totalBytes: total, bytesPerSecond: rate, activePeers: 2)
    }

    @Test("a request starts a download; another for the same file follows it")
    func follow() {
        var board = DownloadBoard()
        let (first, event) = board.request(Self.a, name: "f", size: 10, now: 0)
        #expect(first == .begin)
        #expect(event?.state == .starting)
        let second = board.request(Self.a, name: "f", size: 10, now: 1)
        #expect(second.0 == .follow)
        #expect(second.1 == nil)
        let other = board.request(Self.b, name: "g", size: nil, now: 1)
        #expect(other.0 == .begin)
    }

    @Test("progress moves a download to fetching with an event at once, then at most one a second")
    func progressEvents() throws {
        var board = DownloadBoard(progressInterval: 1)
        _ = board.request(Self.a, name: "f", size: 1000, now: 0)
        let firstEvent = board.progress(Self.a, Self.progress(100, of: 1000), now: 0.2)
        let first = try #require(firstEvent)
        #expect(first.state == .fetching)
        #expect(first.bytes == 100)
        #expect(first.etaSeconds == 9)
        let early = board.progress(Self.a, Self.progress(200, of: 1000), now: 0.4)
        #expect(early == nil)
        #expect(board.info(Self.a, now: 0.4)?.bytes == 200)
        let due = board.progress(Self.a, Self.progress(500, of: 1000), now: 1.3)
        #expect(due?.bytes == 500)
    }

    @Test("an ended download says how, takes no more progress, and may start again")
    func end() throws {
        var board = DownloadBoard()
        _ = board.request(Self.a, name: "f", size: 1000, now: 0)
        let event = board.end(Self.a, as: .finished, size: 1000, now: 4)
        let ended = try #require(event)
        #expect(ended.state == .finished)
        #expect(ended.bytes == 1000)
        #expect(ended.seconds == 4)
        let again = board.end(Self.a, as: .failed, now: 5)
        #expect(again == nil)
        let late = board.progress(Self.a, Self.progress(1, of: 1000), now: 5)
        #expect(late == nil)
        let restart = board.request(Self.a, name: "f", size: 1000, now: 6)
        #expect(restart.0 == .begin)
    }

    @Test("only the latest ended downloads are kept; those under way come first")
    func bounded() {
        var board = DownloadBoard(maximumEnded: 2)
        let ids = (0..<4).map { FileID(hashing: [UInt8($0) + 10]) }
        for (index, id) in ids.enumerated() {
            _ = board.request(id, name: "f\(index)", size: 1, now: Double(index))
            _ = board.end(id, as: .failed, error: "gone", now: Double(index) + 0.5)
        }
        _ = board.request(Self.a, name: "live", size: 1, now: 10)
        let all = board.all(now: 11)
        #expect(all.map(\.name) == ["live", "f2", "f3"])
    }
}
