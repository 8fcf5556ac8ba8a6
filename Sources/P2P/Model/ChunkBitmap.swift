/// Which chunks of a file a peer holds: one bit per chunk, chunk 0 in the high bit of
/// byte 0 (the BitTorrent order, so a dump reads left to right).
public struct ChunkBitmap: Sendable, Equatable {
    /// The number of chunks the bitmap covers.
    public let count: Int
    /// The bits, `(count + 7) / 8` bytes; spare bits at the end are zero.
    public private(set) var bytes: [UInt8]
    /// How many bits are set.
    public private(set) var setCount: Int

    /// An empty bitmap.
    /// - Parameter count: the number of chunks.
    public init(count: Int) {
        self.count = count
        self.bytes = [UInt8](repeating: 0, count: (count + 7) / 8)
        self.setCount = 0
    }

    /// A full bitmap.
    /// - Parameter count: the number of chunks.
    public static func full(count: Int) -> ChunkBitmap {
        var bitmap = ChunkBitmap(count: count)
        for index in 0..<count { bitmap.insert(index) }
        return bitmap
    }

    /// A bitmap received from the network.
    /// - Parameters:
    ///   - bytes: exactly `(count + 7) / 8` bytes, spare bits zero.
    ///   - count: the number of chunks.
    public init?(bytes: [UInt8], count: Int) {
        // `count / 8` rounded up, without the `count + 7` that overflows for a huge count.
        guard count >= 0, bytes.count == count / 8 + (count % 8 == 0 ? 0 : 1) else { return nil }
        if count % 8 != 0, let last = bytes.last, last & (0xFF >> UInt8(count % 8)) != 0 { return nil }
        self.count = count
        self.bytes = bytes
        self.setCount = bytes.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Whether every chunk is held.
    public var isComplete: Bool { self.setCount == self.count }

    /// Whether chunk `index` is held.
    public func contains(_ index: Int) -> Bool {
        guard index >= 0 && index < self.count else { return false }
        return self.bytes[index >> 3] & (0x80 >> UInt8(index & 7)) != 0
    }

    /// Marks chunk `index` held.
    /// - Returns: true if it was not held before.
    @discardableResult
    public mutating func insert(_ index: Int) -> Bool {
        guard index >= 0 && index < self.count, !self.contains(index) else { return false }
        self.bytes[index >> 3] |= 0x80 >> UInt8(index & 7)
        self.setCount += 1
        return true
    }

    /// Marks every chunk `other` holds as held.
    /// - Returns: false, changing nothing, if any of them was held already (or the counts
    ///   differ).
    public mutating func insert(contentsOf other: ChunkBitmap) -> Bool {
        guard other.count == self.count,
            !zip(self.bytes, other.bytes).contains(where: { $0 & $1 != 0 })
        else { return false }
        for index in self.bytes.indices { self.bytes[index] |= other.bytes[index] }
        self.setCount += other.setCount
        return true
    }

    /// Marks chunk `index` not held.
    /// - Returns: true if it was held before.
    @discardableResult
    public mutating func remove(_ index: Int) -> Bool {
        guard self.contains(index) else { return false }
        self.bytes[index >> 3] &= ~(0x80 >> UInt8(index & 7))
        self.setCount -= 1
        return true
    }

    /// The chunks held, in order.
    public var indices: [Int] {
        var indices: [Int] = []
        indices.reserveCapacity(self.setCount)
        self.forEachIndex { indices.append($0) }
        return indices
    }

    /// Calls `body` with each chunk held, in order, a byte of the bitmap at a time (an
    /// empty byte costs one test).
    public func forEachIndex(_ body: (Int) throws -> Void) rethrows {
        guard self.setCount > 0 else { return }
        for (byteIndex, byte) in self.bytes.enumerated() where byte != 0 {
            var mask = byte
            while mask != 0 {
                let bit = mask.leadingZeroBitCount
                mask &= ~(0x80 >> UInt8(bit))
                try body(byteIndex << 3 + bit)
            }
        }
    }

    /// The chunks not held, in order.
    public var missing: [Int] { (0..<self.count).filter { !self.contains($0) } }

    /// Sorted chunk indices as ranges for a message: "0-3, 7, 9-12", the first 20 ranges
    /// and "…" after them.
    static func ranges(_ sorted: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.count > 20 ? parts.prefix(20).joined(separator: ", ") + ", …" : parts.joined(separator: ", ")
    }
}
