import Crypto
import NIOCore
import Testing

@testable import P2P

@Suite("PieceAssembler")
struct PieceAssemblerTests {
    /// A manifest of three chunks: 1000, 1000 and 500 bytes.
    static let data = (0..<2500).map { UInt8(truncatingIfNeeded: $0 * 7) }
    static let manifest = try! Manifest(
        name: FileName("pieces.bin"),
        size: 2500,
        chunkSize: 1000,
        chunkHashes: stride(from: 0, to: 2500, by: 1000).flatMap { start in
            Array(SHA256.hash(data: data[start..<min(start + 1000, 2500)]))
        }
    )

    static func piece(_ chunk: Int, _ range: Range<Int>) -> ByteBuffer {
        ByteBuffer(bytes: Self.data[(chunk * 1000 + range.lowerBound)..<(chunk * 1000 + range.upperBound)])
    }

    /// One connection's assembler, as a reference so that `#expect` can call into it.
    final class Connection {
        var assembler: PieceAssembler

        init(maximumOpenChunks: Int = 4) {
            self.assembler = PieceAssembler(
                manifest: PieceAssemblerTests.manifest,
                maximumOpenChunks: maximumOpenChunks
            )
        }

        func add(_ piece: ByteBuffer, chunk: Int, offset: Int) throws -> ByteBuffer? {
            try self.assembler.add(piece, chunk: chunk, offset: offset)
        }

        /// Whether the piece is refused (which ends the connection it came on).
        func refuses(_ piece: ByteBuffer, chunk: Int, offset: Int) -> Bool {
            do {
                _ = try self.add(piece, chunk: chunk, offset: offset)
                return false
            } catch {
                return true
            }
        }

        func drop(_ chunk: Int) -> Bool { self.assembler.drop(chunk) }
        var openChunks: [Int] { self.assembler.openChunks }
    }

    @Test("pieces in order make the chunk, which verifies; its file id sits in front for framing")
    func assemblesInOrder() throws {
        let assembler = Connection()
        #expect(try assembler.add(Self.piece(1, 0..<300), chunk: 1, offset: 0) == nil)
        #expect(try assembler.add(Self.piece(1, 300..<900), chunk: 1, offset: 300) == nil)
        #expect(assembler.openChunks == [1])
        let whole = try #require(try assembler.add(Self.piece(1, 900..<1000), chunk: 1, offset: 900))
        #expect(Self.manifest.verify(whole, chunk: 1))
        #expect(whole.readerIndex == FileID.byteCount)
        var framed = whole
        framed.moveReaderIndex(to: 0)
        #expect(Array(framed.readableBytesView.prefix(FileID.byteCount)) == Self.manifest.id.bytes)
        #expect(assembler.openChunks.isEmpty)
        // A chunk in one piece is the piece; the short last chunk is whole at 500 bytes.
        #expect(try assembler.add(Self.piece(2, 0..<500), chunk: 2, offset: 0) == Self.piece(2, 0..<500))
    }

    @Test("chunks of one connection may interleave, each in order")
    func interleaves() throws {
        let assembler = Connection()
        #expect(try assembler.add(Self.piece(0, 0..<500), chunk: 0, offset: 0) == nil)
        #expect(try assembler.add(Self.piece(1, 0..<500), chunk: 1, offset: 0) == nil)
        #expect(
            Self.manifest.verify(
                try #require(try assembler.add(Self.piece(0, 500..<1000), chunk: 0, offset: 500)),
                chunk: 0
            )
        )
        #expect(
            Self.manifest.verify(
                try #require(try assembler.add(Self.piece(1, 500..<1000), chunk: 1, offset: 500)),
                chunk: 1
            )
        )
    }

    @Test("a dropped chunk is forgotten and may begin again")
    func dropsAborted() throws {
        let assembler = Connection()
        #expect(try assembler.add(Self.piece(0, 0..<400), chunk: 0, offset: 0) == nil)
        #expect(assembler.drop(0))
        #expect(!assembler.drop(0))
        #expect(assembler.refuses(Self.piece(0, 400..<1000), chunk: 0, offset: 400))
        #expect(try assembler.add(Self.piece(0, 0..<400), chunk: 0, offset: 0) == nil)
    }

    @Test("pieces out of order, overlong, empty, of no chunk, or opening too many chunks are refused")
    func refusesLies() throws {
        // A piece that does not begin a chunk, with nothing open.
        #expect(Connection().refuses(Self.piece(0, 100..<200), chunk: 0, offset: 100))
        // Longer than the chunk; empty; a chunk the file does not have.
        #expect(Connection().refuses(ByteBuffer(bytes: Self.data), chunk: 0, offset: 0))
        #expect(Connection().refuses(ByteBuffer(), chunk: 0, offset: 0))
        #expect(Connection().refuses(Self.piece(0, 0..<100), chunk: 3, offset: 0))
        #expect(Connection().refuses(Self.piece(0, 0..<100), chunk: -1, offset: 0))
        // A gap; a piece past the end; a chunk begun again while open. None of them
        // changes what is open.
        let connection = Connection(maximumOpenChunks: 2)
        #expect(try connection.add(Self.piece(0, 0..<100), chunk: 0, offset: 0) == nil)
        #expect(connection.refuses(Self.piece(0, 200..<300), chunk: 0, offset: 200))
        #expect(connection.refuses(ByteBuffer(bytes: Self.data[0..<950]), chunk: 0, offset: 100))
        #expect(connection.refuses(Self.piece(0, 0..<100), chunk: 0, offset: 0))
        #expect(connection.openChunks == [0])
        // A third chunk open at once.
        #expect(try connection.add(Self.piece(1, 0..<100), chunk: 1, offset: 0) == nil)
        #expect(connection.refuses(Self.piece(2, 0..<100), chunk: 2, offset: 0))
        #expect(Set(connection.openChunks) == [0, 1])
        // Still whole and verified when the rest comes in order.
        let whole = try #require(try connection.add(Self.piece(0, 100..<1000), chunk: 0, offset: 100))
        #expect(Self.manifest.verify(whole, chunk: 0))
    }
}
