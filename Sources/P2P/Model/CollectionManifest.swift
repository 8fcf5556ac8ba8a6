import NIOCore

/// What a shared folder is: its name, the relative path, file id and size of every file in
/// it, and its empty folders. Each file is an ordinary swarm file (its own manifest and
/// chunks); the collection id is the SHA-256 of the encoded collection manifest, so a peer
/// that hands one out cannot lie about it.
///
/// ```
/// "P2PC" | version u8 | 0 u8 | name length u16 | name (UTF-8)
///        | file count u32 | folder count u32
///        | file count × (path length u16 | path | file id 32 bytes | size u64)
///        | folder count × (path length u16 | path)
/// ```
///
/// The encoding is canonical: files and folders each in strictly increasing byte order of
/// their paths, every folder listed empty (it holds no other entry). So one folder has one
/// encoding and one id, and a decoder refuses any other arrangement of the same entries.
public struct CollectionManifest: Sendable, Equatable {
    /// A file of the collection.
    public struct Member: Sendable, Equatable {
        /// Where it goes, relative to the collection's folder.
        public var path: CollectionPath
        /// Its file id (the SHA-256 of its own manifest, named after the path's last
        /// component).
        public var fileID: FileID
        /// Its size in bytes.
        public var size: UInt64

        /// Creates a member.
        public init(path: CollectionPath, fileID: FileID, size: UInt64) {
            self.path = path
            self.fileID = fileID
            self.size = size
        }
    }

    /// The folder's name, the one top-level entry it is recreated as.
    public let name: FileName
    /// Its files, in canonical order.
    public let files: [Member]
    /// Its empty folders, in canonical order.
    public let emptyFolders: [CollectionPath]
    /// The manifest as encoded; what the id hashes.
    public let encoded: [UInt8]
    /// The collection id: SHA-256 of `encoded`.
    public let id: FileID

    /// The most entries (files and empty folders) in one collection.
    public static let maximumEntryCount = 100_000
    /// The largest encoded collection manifest accepted.
    public static let maximumEncodedLength = 4 << 20

    private static let magic: [UInt8] = Array("P2PC".utf8)
    private static let version: UInt8 = 1
    /// Bytes of a file entry besides its path.
    private static let fileEntryFixedLength = 2 + FileID.byteCount + 8

    /// The sum of the files' sizes.
    public var totalSize: UInt64 { self.files.reduce(0) { $0 + $1.size } }

    /// Creates a collection manifest from its entries, in any order.
    /// - Parameters:
    ///   - name: the folder's name.
    ///   - files: its files.
    ///   - emptyFolders: its folders that hold nothing.
    /// - Throws: `P2PError` (`protocolViolation`) when the entries do not make a tree:
    ///   a path listed twice, a path that is both a file and a folder, a listed folder
    ///   that is not empty, too many entries, sizes that overflow, too long an encoding.
    public init(name: FileName, files: [Member], emptyFolders: [CollectionPath]) throws(P2PError) {
        func refuse(_ why: String) -> P2PError {
            P2PError(code: .protocolViolation, "bad collection manifest for '\(name)': \(why)")
        }
        guard files.count + emptyFolders.count <= Self.maximumEntryCount else {
            throw refuse("\(files.count + emptyFolders.count) entries, more than \(Self.maximumEntryCount)")
        }
        let files = files.sorted { $0.path < $1.path }
        let folders = emptyFolders.sorted()
        var filePaths = Set<String>(minimumCapacity: files.count)
        var total: UInt64 = 0
        for file in files {
            guard filePaths.insert(file.path.value).inserted else { throw refuse("'\(file.path)' is listed twice") }
            let (sum, overflow) = total.addingReportingOverflow(file.size)
            guard !overflow else { throw refuse("the sizes add up past 2^64 bytes") }
            total = sum
        }
        var folderPaths = Set<String>(minimumCapacity: folders.count)
        for folder in folders {
            if filePaths.contains(folder.value) { throw refuse("'\(folder)' is both a file and a folder") }
            guard folderPaths.insert(folder.value).inserted else { throw refuse("'\(folder)' is listed twice") }
        }
        for path in files.map(\.path) + folders {
            for ancestor in path.ancestors {
                if filePaths.contains(ancestor) { throw refuse("'\(ancestor)' is both a file and a folder") }
                if folderPaths.contains(ancestor) {
                    throw refuse("folder '\(ancestor)' is listed as empty but holds '\(path)'")
                }
            }
        }
        var bytes: [UInt8] = Self.magic
        bytes.append(Self.version)
        bytes.append(0)
        Self.appendString(name.value, to: &bytes)
        Self.append(UInt32(files.count), to: &bytes)
        Self.append(UInt32(folders.count), to: &bytes)
        for file in files {
            Self.appendString(file.path.value, to: &bytes)
            bytes.append(contentsOf: file.fileID.bytes)
            Self.append(file.size, to: &bytes)
        }
        for folder in folders { Self.appendString(folder.value, to: &bytes) }
        guard bytes.count <= Self.maximumEncodedLength else {
            throw refuse("\(bytes.count) bytes encoded, more than \(Self.maximumEncodedLength)")
        }
        self.name = name
        self.files = files
        self.emptyFolders = folders
        self.encoded = bytes
        self.id = FileID(hashing: bytes)
    }

    /// Decodes a collection manifest received or stored. Hostile input: every count and
    /// length is checked against the bytes that are there before anything is allocated
    /// for it, every path is validated, and only the canonical encoding is accepted.
    /// - Parameters:
    ///   - bytes: the encoded manifest.
    ///   - expectedID: if given, the id the bytes must hash to.
    /// - Returns: the manifest.
    /// - Throws: `P2PError`: `protocolViolation` for malformed bytes or entries that do not
    ///   make a tree, `badName` for an unsafe name or path, `corrupt` when the bytes hash
    ///   to another id.
    public static func decode(_ bytes: [UInt8], expectedID: FileID? = nil) throws(P2PError) -> CollectionManifest {
        func fail(_ why: String) -> P2PError { P2PError(code: .protocolViolation, "bad collection manifest: \(why)") }
        guard bytes.count <= Self.maximumEncodedLength else {
            throw fail("\(bytes.count) bytes, more than \(Self.maximumEncodedLength)")
        }
        if let expectedID, FileID(hashing: bytes) != expectedID {
            throw P2PError(code: .corrupt, "collection manifest does not hash to collection id \(expectedID.short)")
        }
        var buffer = ByteBuffer(bytes: bytes)
        guard buffer.readBytes(length: 4) == Self.magic else { throw fail("bad magic") }
        guard buffer.readInteger(as: UInt8.self) == Self.version, buffer.readInteger(as: UInt8.self) == 0 else {
            throw fail("unsupported version")
        }
        func readString(_ what: String) throws(P2PError) -> String {
            guard let length = buffer.readInteger(as: UInt16.self), let raw = buffer.readBytes(length: Int(length))
            else { throw fail("truncated \(what)") }
            guard let string = String(validating: raw, as: UTF8.self) else { throw fail("\(what) is not UTF-8") }
            return string
        }
        let name = try FileName(try readString("name"))
        guard let fileCount = buffer.readInteger(as: UInt32.self), let folderCount = buffer.readInteger(as: UInt32.self)
        else { throw fail("truncated counts") }
        guard Int(fileCount) + Int(folderCount) <= Self.maximumEntryCount else {
            throw fail("\(Int(fileCount) + Int(folderCount)) entries, more than \(Self.maximumEntryCount)")
        }
        // Every entry takes at least its fixed bytes and one path byte: counts the bytes
        // cannot hold are refused before anything is reserved for them.
        let least = Int(fileCount) * (Self.fileEntryFixedLength + 1) + Int(folderCount) * 3
        guard least <= buffer.readableBytes else {
            throw fail("\(fileCount) files and \(folderCount) folders do not fit \(buffer.readableBytes) bytes")
        }
        var files: [Member] = []
        files.reserveCapacity(Int(fileCount))
        for _ in 0..<fileCount {
            let path = try CollectionPath(try readString("path"))
            guard let idBytes = buffer.readBytes(length: FileID.byteCount),
                let size = buffer.readInteger(as: UInt64.self)
            else { throw fail("truncated entry for '\(path)'") }
            files.append(Member(path: path, fileID: FileID(bytes: idBytes)!, size: size))
        }
        var folders: [CollectionPath] = []
        folders.reserveCapacity(Int(folderCount))
        for _ in 0..<folderCount { folders.append(try CollectionPath(try readString("folder path"))) }
        guard buffer.readableBytes == 0 else { throw fail("\(buffer.readableBytes) bytes after the last entry") }
        let manifest = try CollectionManifest(name: name, files: files, emptyFolders: folders)
        guard manifest.encoded == bytes else { throw fail("entries are not in canonical order") }
        return manifest
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendString(_ value: String, to bytes: inout [UInt8]) {
        let utf8 = Array(value.utf8)
        Self.append(UInt16(utf8.count), to: &bytes)
        bytes.append(contentsOf: utf8)
    }
}
