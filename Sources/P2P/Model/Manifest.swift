import Crypto
import NIOCore

/// What a file is: its name, size, chunk size and the SHA-256 of every chunk. The file id
/// is the SHA-256 of the encoded manifest, so a peer that hands out a manifest cannot lie
/// about it: the receiver hashes it and compares with the id it asked for.
///
/// ```
/// "P2PM" | version u8 | 0 u8 | name length u16 | name (UTF-8)
///        | size u64 | chunk size u32 | chunk count u32 | chunk count × 32-byte SHA-256
/// ```
public struct Manifest: Sendable, Equatable {
    /// The file's name, safe as a path component.
    public let name: FileName
    /// The file's size in bytes.
    public let size: UInt64
    /// Bytes in every chunk but the last.
    public let chunkSize: Int
    /// The SHA-256 of each chunk, in order, 32 bytes each, back to back.
    public let chunkHashes: [UInt8]
    /// The manifest as encoded; what the id hashes.
    public let encoded: [UInt8]
    /// The file id: SHA-256 of `encoded`.
    public let id: FileID

    private static let magic: [UInt8] = Array("P2PM".utf8)
    private static let version: UInt8 = 1

    /// The number of chunks.
    public var chunkCount: Int { self.chunkHashes.count / 32 }

    /// Creates a manifest.
    /// - Parameters:
    ///   - name: the file name.
    ///   - size: the file size.
    ///   - chunkSize: the chunk size.
    ///   - chunkHashes: the 32-byte SHA-256 of each chunk, back to back.
    /// - Throws: `P2PError` if the chunk count does not fit the size.
    public init(name: FileName, size: UInt64, chunkSize: Int, chunkHashes: [UInt8]) throws(P2PError) {
        guard chunkSize > 0, chunkSize <= ChunkSizing.maximumChunkSize else {
            throw P2PError(code: .protocolViolation, "manifest chunk size \(chunkSize) out of range")
        }
        let count = chunkHashes.count / 32
        guard chunkHashes.count % 32 == 0, count == ChunkSizing.chunkCount(fileSize: size, chunkSize: chunkSize) else {
            throw P2PError(code: .protocolViolation, "manifest has \(count) chunk hashes for \(size) bytes")
        }
        self.name = name
        self.size = size
        self.chunkSize = chunkSize
        self.chunkHashes = chunkHashes
        var bytes: [UInt8] = Self.magic
        bytes.append(Self.version)
        bytes.append(0)
        let nameBytes = Array(name.value.utf8)
        bytes.append(contentsOf: Self.bigEndian(UInt16(nameBytes.count)))
        bytes.append(contentsOf: nameBytes)
        bytes.append(contentsOf: Self.bigEndian(size))
        bytes.append(contentsOf: Self.bigEndian(UInt32(chunkSize)))
        bytes.append(contentsOf: Self.bigEndian(UInt32(count)))
        bytes.append(contentsOf: chunkHashes)
        self.encoded = bytes
        self.id = FileID(hashing: bytes)
    }

    /// Decodes a manifest received or stored.
    /// - Parameters:
    ///   - bytes: the encoded manifest.
    ///   - expectedID: if given, the id the bytes must hash to.
    /// - Returns: the manifest.
    /// - Throws: `P2PError` if the bytes are malformed, or hash to another id.
    public static func decode(_ bytes: [UInt8], expectedID: FileID? = nil) throws(P2PError) -> Manifest {
        var buffer = ByteBuffer(bytes: bytes)
        func fail(_ why: String) -> P2PError { P2PError(code: .protocolViolation, "bad manifest: \(why)") }
        guard buffer.readBytes(length: 4) == Self.magic else { throw fail("bad magic") }
        guard buffer.readInteger(as: UInt8.self) == Self.version, buffer.readInteger(as: UInt8.self) == 0 else {
            throw fail("unsupported version")
        }
        guard let nameLength = buffer.readInteger(as: UInt16.self),
            let nameBytes = buffer.readBytes(length: Int(nameLength)),
            let size = buffer.readInteger(as: UInt64.self),
            let chunkSize = buffer.readInteger(as: UInt32.self),
            let count = buffer.readInteger(as: UInt32.self)
        else { throw fail("truncated") }
        guard let name = String(validating: nameBytes, as: UTF8.self) else { throw fail("name is not UTF-8") }
        guard Int(count) <= ChunkSizing.maximumManifestChunkCount, buffer.readableBytes == Int(count) * 32 else {
            throw fail("\(count) chunk hashes do not match \(buffer.readableBytes) bytes")
        }
        let hashes = buffer.readBytes(length: buffer.readableBytes)!
        let manifest = try Manifest(
            name: try FileName(name),
            size: size,
            chunkSize: Int(chunkSize),
            chunkHashes: hashes
        )
        if let expectedID, manifest.id != expectedID {
            throw P2PError(code: .corrupt, "manifest does not hash to file id \(expectedID.short)")
        }
        return manifest
    }

    /// The byte range of a chunk within the file.
    /// - Parameter index: the chunk.
    public func range(ofChunk index: Int) -> Range<Int64> {
        let start = Int64(index) * Int64(self.chunkSize)
        let end = min(start + Int64(self.chunkSize), Int64(self.size))
        return start..<end
    }

    /// The length of a chunk.
    public func length(ofChunk index: Int) -> Int {
        let range = self.range(ofChunk: index)
        return Int(range.upperBound - range.lowerBound)
    }

    /// Whether `data` is chunk `index`: right length and right SHA-256.
    /// - Parameters:
    ///   - data: the bytes received.
    ///   - index: the chunk they claim to be.
    public func verify(_ data: ByteBuffer, chunk index: Int) -> Bool {
        guard index >= 0, index < self.chunkCount, data.readableBytes == self.length(ofChunk: index) else {
            return false
        }
        let digest = data.withUnsafeReadableBytes { SHA256.hash(data: $0) }
        return digest.elementsEqual(self.chunkHashes[index * 32..<(index + 1) * 32])
    }

    private static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
