import NIOCore
import NIOPosix
import _NIOFileSystem

/// A file being assembled chunk by chunk: a download in progress, or the chunks of a file
/// that distribution pushed here.
///
/// The data lives in a sparse file at chunk offsets; a record beside it lists the
/// verified chunks. The record is append-only (the manifest, then one 4-byte index per
/// chunk, written after the chunk's data), so a peer killed at any moment leaves a record
/// that names only chunks whose data was written; on reopening, every recorded chunk is
/// hashed again anyway, and one that does not verify is fetched again.
public actor ChunkFile {
    /// What the file is.
    public let manifest: Manifest
    /// Where the data is.
    public let dataPath: FilePath
    /// Where the record is.
    public let recordPath: FilePath
    /// The chunks held and verified.
    public private(set) var bitmap: ChunkBitmap
    /// Each held chunk's fingerprint (`InternetChecksum.wordSum`) taken from the bytes that
    /// were verified against the manifest here, when they arrived or when the partial was
    /// reopened: what the read-back before the rename compares the disk's bytes with.
    private var verifiedSums: [UInt64]

    private var data: ReadWriteFileHandle?
    /// Writes whole blocks around the page cache, where the file system allows it.
    private var directWriter: DirectChunkWriter?
    private var record: WriteFileHandle?
    private var recordLength: Int64
    /// Tasks waiting for a chunk to be written (`waitForWrite`).
    private let writeSignals = ChunkWriteSignals()

    private init(
        manifest: Manifest,
        dataPath: FilePath,
        recordPath: FilePath,
        data: ReadWriteFileHandle,
        record: WriteFileHandle,
        recordLength: Int64,
        bitmap: ChunkBitmap,
        verifiedSums: [UInt64]
    ) {
        self.manifest = manifest
        self.verifiedSums = verifiedSums
        self.dataPath = dataPath
        self.recordPath = recordPath
        self.data = data
        self.record = record
        self.recordLength = recordLength
        self.bitmap = bitmap
        self.directWriter = DirectChunkWriter.open(dataPath)
    }

    /// Opens the file, resuming from its record if there is one.
    /// - Parameters:
    ///   - manifest: what the file is.
    ///   - dataPath: where the data goes.
    ///   - recordPath: where the record goes.
    /// - Returns: the file, with every recorded chunk that still verifies marked held.
    /// - Throws: `P2PError` (`storage`) if the files cannot be opened.
    public static func open(manifest: Manifest, dataPath: FilePath, recordPath: FilePath) async throws -> ChunkFile {
        let data: ReadWriteFileHandle
        do {
            data = try await FileSystem.shared.openFile(
                forReadingAndWritingAt: dataPath,
                options: LinkRefusingFiles.writing()
            )
        } catch {
            throw await LinkRefusingFiles.openError(error, at: dataPath, doing: "write")
        }
        do {
            return try await Self.open(manifest: manifest, dataPath: dataPath, recordPath: recordPath, data: data)
        } catch {
            // A handle must be closed before it is dropped.
            await closeEvenIfCancelled { try await data.close() }
            throw error
        }
    }

    private static func open(
        manifest: Manifest,
        dataPath: FilePath,
        recordPath: FilePath,
        data: ReadWriteFileHandle
    ) async throws -> ChunkFile {
        let fileSystem = FileSystem.shared
        let recorded = await Self.readRecord(at: recordPath, manifest: manifest)
        var bitmap = ChunkBitmap(count: manifest.chunkCount)
        var verifiedSums = [UInt64](repeating: 0, count: manifest.chunkCount)
        for index in recorded where !bitmap.contains(index) {
            let length = manifest.length(ofChunk: index)
            let bytes: ByteBuffer
            do {
                bytes = try await data.readChunk(
                    fromAbsoluteOffset: manifest.range(ofChunk: index).lowerBound,
                    length: .bytes(Int64(length))
                )
            } catch {
                throw P2PError(code: .storage, "cannot read \(dataPath) to resume it: \(error)")
            }
            if manifest.verify(bytes, chunk: index) {
                bitmap.insert(index)
                verifiedSums[index] = bytes.withUnsafeReadableBytes(InternetChecksum.wordSum)
            }
        }
        // The record is written anew: the manifest, then the chunks that verified. It is
        // opened in place, not as a new file: NIOFileSystem makes a new file visible only
        // when closed, and a killed peer must leave its record behind.
        let record: WriteFileHandle
        do {
            record = try await fileSystem.openFile(forWritingAt: recordPath, options: LinkRefusingFiles.writing())
        } catch {
            throw await LinkRefusingFiles.openError(error, at: recordPath, doing: "write")
        }
        let header = Self.recordContents(manifest, bitmap)
        do {
            try await record.resize(to: .bytes(0))
            try await record.write(contentsOf: header.readableBytesView, toAbsoluteOffset: 0)
        } catch {
            await closeEvenIfCancelled { try await record.close() }
            throw P2PError(code: .storage, "cannot write \(recordPath): \(error)")
        }
        return ChunkFile(
            manifest: manifest,
            dataPath: dataPath,
            recordPath: recordPath,
            data: data,
            record: record,
            recordLength: Int64(header.readableBytes),
            bitmap: bitmap,
            verifiedSums: verifiedSums
        )
    }

    /// The manifest stored in a record, if the record is readable and names one.
    /// - Parameter recordPath: the record.
    /// - Returns: the manifest, or `nil`.
    public static func manifest(inRecordAt recordPath: FilePath) async -> Manifest? {
        guard
            let handle = try? await FileSystem.shared.openFile(
                forReadingAt: recordPath,
                options: LinkRefusingFiles.reading
            )
        else {
            return nil
        }
        var manifest: Manifest? = nil
        if var head = try? await handle.readChunk(fromAbsoluteOffset: 0, length: .bytes(4)),
            let length = head.readInteger(as: UInt32.self), length <= UInt32(Frame.defaultMaximumPayloadLength),
            let body = try? await handle.readChunk(fromAbsoluteOffset: 4, length: .bytes(Int64(length))),
            body.readableBytes == Int(length)
        {
            manifest = try? Manifest.decode(Array(body.readableBytesView))
        }
        await closeEvenIfCancelled { try await handle.close() }
        return manifest
    }

    /// The chunk indices a record lists, if it is for this manifest.
    private static func readRecord(at path: FilePath, manifest: Manifest) async -> [Int] {
        guard let handle = try? await FileSystem.shared.openFile(forReadingAt: path, options: LinkRefusingFiles.reading)
        else {
            return []
        }
        var indices: [Int] = []
        do {
            let size = try await handle.info().size
            let expectedHead = 4 + Int64(manifest.encoded.count)
            if size >= expectedHead {
                let head = try await handle.readChunk(fromAbsoluteOffset: 0, length: .bytes(expectedHead))
                var check = head
                if check.readInteger(as: UInt32.self) == UInt32(manifest.encoded.count),
                    check.readBytes(length: manifest.encoded.count) == manifest.encoded
                {
                    // A torn last entry (fewer than 4 bytes) is ignored.
                    let entries = (size - expectedHead) / 4
                    let maximum = min(entries, Int64(manifest.chunkCount))
                    if maximum > 0 {
                        var body = try await handle.readChunk(
                            fromAbsoluteOffset: expectedHead,
                            length: .bytes(maximum * 4)
                        )
                        while let index = body.readInteger(as: UInt32.self) {
                            if Int(index) < manifest.chunkCount { indices.append(Int(index)) }
                        }
                    }
                }
            }
        } catch {
            indices = []
        }
        await closeEvenIfCancelled { try await handle.close() }
        return indices
    }

    /// Writes a chunk that the caller has verified, then records it.
    /// - Parameters:
    ///   - bytes: the chunk's bytes.
    ///   - index: the chunk.
    /// - Returns: true if the chunk is new here.
    /// - Throws: `P2PError` (`storage`) if the disk write fails; the record then does not
    ///   name the chunk, so nothing inconsistent is left.
    @discardableResult
    public func write(_ bytes: ByteBuffer, chunk index: Int) async throws -> Bool {
        guard !self.bitmap.contains(index) else { return false }
        guard let data = self.data, let record = self.record else {
            throw P2PError(code: .storage, "\(self.dataPath) is closed")
        }
        let sum = bytes.withUnsafeReadableBytes(InternetChecksum.wordSum)
        do {
            let offset = self.manifest.range(ofChunk: index).lowerBound
            if try await self.directWriter?.write(bytes, at: offset) != true {
                try await data.write(contentsOf: bytes.readableBytesView, toAbsoluteOffset: offset)
            }
            // Another writer may have recorded it while this one waited for the disk.
            guard !self.bitmap.contains(index) else { return false }
            var entry = ByteBuffer()
            entry.writeInteger(UInt32(index))
            let entryOffset = self.recordLength
            self.recordLength += 4
            self.bitmap.insert(index)
            self.verifiedSums[index] = sum
            self.writeSignals.signal(index)
            try await record.write(contentsOf: entry.readableBytesView, toAbsoluteOffset: entryOffset)
            return true
        } catch {
            self.writeSignals.signal(index)
            throw P2PError(code: .storage, "cannot write chunk \(index) to \(self.dataPath): \(error)")
        }
    }

    /// Returns once chunk `index` is held, its write has failed, the file has closed, or
    /// the calling task is cancelled: at once if it is held already. A chunk that this
    /// peer forwarded is verified and about to be written; a peer that heard of it may
    /// ask for it in that moment, and is answered when the write lands.
    public func waitForWrite(of index: Int) async {
        guard !self.bitmap.contains(index), self.data != nil else { return }
        await self.writeSignals.wait(for: index)
    }

    /// Reads a held chunk.
    /// - Parameter index: the chunk.
    /// - Returns: its bytes, or `nil` if it is not held.
    public func read(chunk index: Int) async throws -> ByteBuffer? {
        guard self.bitmap.contains(index), let data = self.data else { return nil }
        do {
            return try await data.readChunk(self.manifest.range(ofChunk: index), of: self.manifest.id)
        } catch {
            throw P2PError(code: .storage, "cannot read chunk \(index) of \(self.dataPath): \(error)")
        }
    }

    /// Reads every held chunk back from the disk and checks that it is what was verified,
    /// so that a file whose bytes changed after they were verified (another program
    /// writing to it, a failing disk, a truncated file) is never presented as the
    /// download. Chunks that fail are no longer held: the record is written anew without
    /// them, and they are fetched again.
    ///
    /// SHA-256 proved each chunk's bytes in memory, against the manifest, before they were
    /// written; the read-back proves the disk gives the same bytes back. It compares each
    /// chunk's fingerprint (`InternetChecksum.wordSum`, at memory speed) with the one
    /// taken from the verified bytes, rather than hashing the file a second time (0.57
    /// CPU-seconds per GiB here, on top of the disk read). A change goes unseen only if it
    /// keeps the 64-bit sum of the chunk's 32-bit words: 4-byte words exchanged within a
    /// chunk, or a coincidence of the sum. The chunks are read around the page cache where
    /// the file system allows (`DirectReadBack`), buffered elsewhere.
    /// - Returns: the chunks that no longer verify, in order; empty when all do.
    /// - Throws: `P2PError` (`storage`) if the file cannot be read.
    public func verifyHeldChunks() async throws -> [Int] {
        guard let data = self.data else { throw P2PError(code: .storage, "\(self.dataPath) is closed") }
        let manifest = self.manifest
        let held = self.bitmap
        let sums = self.verifiedSums
        let dataPath = self.dataPath
        // The file is read back in as many contiguous parts as there are cores, at once:
        // the reads wait on the device, and the fingerprints on a core each.
        let lanes = max(1, min(System.coreCount, manifest.chunkCount))
        let perLane = (manifest.chunkCount + lanes - 1) / lanes
        var failed: [Int] = []
        do {
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for lane in 0..<lanes {
                    let chunks = (lane * perLane)..<min(manifest.chunkCount, (lane + 1) * perLane)
                    guard !chunks.isEmpty else { continue }
                    group.addTask {
                        if let direct = DirectReadBack(dataPath, chunkSize: manifest.chunkSize) {
                            do {
                                return try await Self.chunksChangedOnDevice(
                                    chunks,
                                    of: manifest,
                                    held: held,
                                    sums: sums,
                                    reading: direct
                                )
                            } catch is DirectReadBack.Refused {
                                // Read buffered instead, below.
                            }
                        }
                        return try await Self.chunksFailingVerification(
                            chunks,
                            of: manifest,
                            held: held,
                            sums: sums,
                            in: data
                        )
                    }
                }
                for try await part in group { failed += part }
            }
        } catch {
            throw P2PError(code: .storage, "cannot read \(self.dataPath) back to verify it: \(error)")
        }
        guard !failed.isEmpty else { return [] }
        failed.sort()
        for index in failed {
            self.bitmap.remove(index)
            self.verifiedSums[index] = 0
        }
        try await self.rewriteRecord()
        return failed
    }

    /// The held chunks among `chunks` whose bytes on the device are not those verified,
    /// read directly (`DirectReadBack`).
    private static func chunksChangedOnDevice(
        _ chunks: Range<Int>,
        of manifest: Manifest,
        held: ChunkBitmap,
        sums: [UInt64],
        reading direct: borrowing DirectReadBack
    ) async throws -> [Int] {
        var failed: [Int] = []
        var index = chunks.lowerBound
        // Bounded: every pass moves `index` on by at least one chunk.
        while index < chunks.upperBound {
            guard held.contains(index) else {
                index += 1
                continue
            }
            // A run of held chunks, as many as one read takes.
            var lengths = [manifest.length(ofChunk: index)]
            var next = index + 1
            while next < chunks.upperBound, held.contains(next),
                lengths.reduce(0, +) + manifest.length(ofChunk: next) <= direct.capacity
            {
                lengths.append(manifest.length(ofChunk: next))
                next += 1
            }
            let read = try await direct.fingerprints(of: lengths, at: manifest.range(ofChunk: index).lowerBound)
            for (offset, sum) in read.enumerated() where sum != sums[index + offset] { failed.append(index + offset) }
            index = next
        }
        return failed
    }

    /// The held chunks among `chunks` whose bytes on disk are not those verified: their
    /// length or their fingerprint differs from the one in `sums`.
    private static func chunksFailingVerification(
        _ chunks: Range<Int>,
        of manifest: Manifest,
        held: ChunkBitmap,
        sums: [UInt64],
        in data: ReadWriteFileHandle
    ) async throws -> [Int] {
        var failed: [Int] = []
        var index = chunks.lowerBound
        let start = manifest.range(ofChunk: chunks.lowerBound).lowerBound
        let end = manifest.range(ofChunk: chunks.upperBound - 1).upperBound
        let reads = data.readChunks(in: start..<end, chunkLength: .bytes(Int64(manifest.chunkSize)))
        for try await bytes in reads where index < chunks.upperBound {
            if held.contains(index) {
                let unchanged =
                    bytes.readableBytes == manifest.length(ofChunk: index)
                    && bytes.withUnsafeReadableBytes(InternetChecksum.wordSum) == sums[index]
                if !unchanged { failed.append(index) }
            }
            index += 1
        }
        // A file cut short: what could not be read back is not held.
        if end > start { failed += (index..<chunks.upperBound).filter(held.contains) }
        return failed
    }

    /// Writes the record anew from the bitmap: the manifest, then every held chunk.
    private func rewriteRecord() async throws {
        guard let record = self.record else { throw P2PError(code: .storage, "\(self.recordPath) is closed") }
        let header = Self.recordContents(self.manifest, self.bitmap)
        do {
            try await record.resize(to: .bytes(0))
            try await record.write(contentsOf: header.readableBytesView, toAbsoluteOffset: 0)
            self.recordLength = Int64(header.readableBytes)
        } catch {
            throw P2PError(code: .storage, "cannot write \(self.recordPath): \(error)")
        }
    }

    /// A record's bytes: the manifest's length and encoding, then each held chunk's index.
    private static func recordContents(_ manifest: Manifest, _ bitmap: ChunkBitmap) -> ByteBuffer {
        var header = ByteBuffer()
        header.writeInteger(UInt32(manifest.encoded.count))
        header.writeBytes(manifest.encoded)
        for index in bitmap.indices { header.writeInteger(UInt32(index)) }
        return header
    }

    /// Closes both files, optionally removing the record (when the download is complete).
    /// - Parameter removingRecord: whether to delete the record.
    public func close(removingRecord: Bool = false) async {
        if let data = self.data {
            // Make the size exact: a file whose last chunk arrived first is already right,
            // but one that ends in a short chunk written early is not longer than needed.
            try? await data.resize(to: .bytes(Int64(self.manifest.size)))
            await closeEvenIfCancelled { try await data.close(makeChangesVisible: true) }
        }
        if let record = self.record { await closeEvenIfCancelled { try await record.close(makeChangesVisible: true) } }
        // Its descriptor closes once no write holds it.
        self.directWriter = nil
        self.writeSignals.signalAll()
        self.data = nil
        self.record = nil
        if removingRecord { _ = try? await FileSystem.shared.removeItem(at: self.recordPath) }
    }

    /// Bytes of data held.
    public var heldBytes: Int64 {
        self.bitmap.indices.reduce(0) { $0 + Int64(self.manifest.length(ofChunk: $1)) }
    }
}
