import P2PGateway
import Testing

@Suite("Byte ranges cut from chunks")
struct ChunkSpanTests {
    @Test("a range inside one chunk")
    func insideOne() {
        let span = ChunkSpan(bytes: 110...119, chunkSize: 100)
        #expect(span.chunks == 1...1)
        #expect(span.slice(ofChunk: 1) == 10..<20)
        #expect(span.length == 10)
    }

    @Test("a range over several chunks takes the tail of the first, whole middles and the head of the last")
    func several() {
        let span = ChunkSpan(bytes: 50...349, chunkSize: 100)
        #expect(span.chunks == 0...3)
        #expect(span.slice(ofChunk: 0) == 50..<100)
        #expect(span.slice(ofChunk: 1) == 0..<100)
        #expect(span.slice(ofChunk: 2) == 0..<100)
        #expect(span.slice(ofChunk: 3) == 0..<50)
        #expect(span.length == 300)
    }

    @Test("the slices add up to the range, byte for byte", arguments: [1, 7, 64, 100, 1000])
    func slicesCover(chunkSize: Int) {
        let size: UInt64 = 1234
        for (first, last) in [(0, 1233), (5, 5), (99, 100), (100, 999), (1233, 1233), (0, 0)] {
            let span = ChunkSpan(bytes: UInt64(first)...UInt64(last), chunkSize: chunkSize)
            var covered: [UInt64] = []
            for index in span.chunks {
                let start = UInt64(index * chunkSize)
                let slice = span.slice(ofChunk: index)
                #expect(!slice.isEmpty)
                covered += slice.map { start + UInt64($0) }
            }
            #expect(covered == Array(UInt64(first)...UInt64(last)), "\(first)-\(last) of \(size) by \(chunkSize)")
        }
    }
}
