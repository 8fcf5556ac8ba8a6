import P2P
import Testing

@Suite("ChunkBitmap")
struct ChunkBitmapTests {
    @Test("insert, contains, counts, full and missing", arguments: [0, 1, 7, 8, 9, 64, 65, 1000])
    func basics(count: Int) {
        var bitmap = ChunkBitmap(count: count)
        #expect(bitmap.bytes.count == (count + 7) / 8)
        #expect(bitmap.setCount == 0)
        #expect(bitmap.isComplete == (count == 0))
        for index in stride(from: 0, to: count, by: 3) {
            let inserted = bitmap.insert(index)
            let again = bitmap.insert(index)
            #expect(inserted)
            #expect(!again)
        }
        let expected = Array(stride(from: 0, to: count, by: 3))
        #expect(bitmap.indices == expected)
        #expect(bitmap.setCount == expected.count)
        #expect(bitmap.missing.count == count - expected.count)
        #expect(!bitmap.contains(-1) && !bitmap.contains(count))
        let outOfRange = bitmap.insert(count)
        #expect(!outOfRange)
        #expect(ChunkBitmap.full(count: count).isComplete)
    }

    @Test("forEachIndex visits exactly the chunks held, in order", arguments: [0, 1, 7, 8, 9, 63, 64, 65, 1000])
    func forEachIndex(count: Int) {
        var random = SystemRandomNumberGenerator()
        var bitmap = ChunkBitmap(count: count)
        var expected: [Int] = []
        for index in 0..<count where Bool.random(using: &random) || index == count - 1 {
            bitmap.insert(index)
            expected.append(index)
        }
        var visited: [Int] = []
        bitmap.forEachIndex { visited.append($0) }
        #expect(visited == expected)
        #expect(bitmap.indices == expected)
        #expect(ChunkBitmap.full(count: count).indices == Array(0..<count))
    }

    @Test("chunk 0 is the high bit of byte 0")
    func bitOrder() {
        var bitmap = ChunkBitmap(count: 10)
        bitmap.insert(0)
        bitmap.insert(9)
        #expect(bitmap.bytes == [0x80, 0x40])
    }

    @Test("bytes from the network: wrong length or spare bits set are refused")
    func fromBytes() {
        #expect(ChunkBitmap(bytes: [0xFF], count: 8)?.setCount == 8)
        #expect(ChunkBitmap(bytes: [0xFF, 0x80], count: 9)?.setCount == 9)
        #expect(ChunkBitmap(bytes: [0xFF, 0x40], count: 9) == nil)
        #expect(ChunkBitmap(bytes: [0xFF], count: 9) == nil)
        #expect(ChunkBitmap(bytes: [0xFF, 0, 0], count: 9) == nil)
        #expect(ChunkBitmap(bytes: [], count: -1) == nil)
    }
}
