import P2P
import Testing

@Suite("InternetChecksum")
struct InternetChecksumTests {
    @Test("RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2, checksum 0x220d")
    func rfcExample() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        var checksum = InternetChecksum()
        checksum.update(bytes)
        #expect(checksum.sum == 0xDDF2)
        #expect(checksum.value == 0x220D)
        #expect(InternetChecksum.checksum(bytes) == 0x220D)
        #expect(bytes.withUnsafeBytes { InternetChecksum.checksum($0) } == 0x220D)
    }

    @Test("no data: sum 0, checksum 0xFFFF")
    func empty() {
        #expect(InternetChecksum().sum == 0)
        #expect(InternetChecksum().value == 0xFFFF)
        #expect(InternetChecksum.checksum([UInt8]()) == 0xFFFF)
        #expect(InternetChecksum.checksum(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xFFFF)
    }

    static let handCheckedCases: [([UInt8], UInt16)] = [
        ([0x01], 0x0100),
        ([0x01, 0x02], 0x0102),
        ([0x01, 0x02, 0x03], 0x0402),
        ([0xFF, 0xFF], 0xFFFF),
        ([0xFF, 0xFF, 0x00, 0x01], 0x0001),  // end-around carry
        ([0x80, 0x00, 0x80, 0x00], 0x0001),
        ([0x00, 0x00, 0x00], 0x0000),
        ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 0xFF00),
    ]

    @Test("small hand-checked cases, odd lengths padded with a zero byte", arguments: Self.handCheckedCases)
    func handChecked(bytes: [UInt8], sum: UInt16) {
        var checksum = InternetChecksum()
        checksum.update(bytes)
        #expect(checksum.sum == sum)
        #expect(checksum.value == ~sum)
        #expect(ReferenceChecksum.sum(bytes) == sum)
    }

    @Test("matches the byte-pair reference on random data of every length 0...2000")
    func everyLengthAgainstReference() {
        var generator = SeededGenerator(seed: 0x1071)
        for length in 0...2000 {
            let bytes = generator.bytes(length)
            let expected = ReferenceChecksum.checksum(bytes)
            let actual = InternetChecksum.checksum(bytes)
            #expect(actual == expected, "length \(length)")
            if actual != expected { return }
        }
    }

    @Test(
        "matches the byte-pair reference on large data",
        arguments: [65_535, 65_536, 65_537, 1_048_576, 1_048_577, 4 * 1_048_576 + 3]
    )
    func largeAgainstReference(length: Int) {
        var generator = SeededGenerator(seed: UInt64(length))
        let bytes = generator.bytes(length)
        #expect(InternetChecksum.checksum(bytes) == ReferenceChecksum.checksum(bytes))
    }

    @Test(
        "all 0xFF bytes: every addition carries; 0xFFFF words leave the sum alone",
        arguments: [1, 2, 3, 4, 1001, 1_048_576, 1_048_579]
    )
    func allOnes(length: Int) {
        let bytes = [UInt8](repeating: 0xFF, count: length)
        var checksum = InternetChecksum()
        checksum.update(bytes)
        // An odd length ends in the padded word 0xFF00; adding 0xFFFF (negative zero) to a
        // nonzero one's-complement sum does not change it.
        let expected: UInt16 = length % 2 == 0 ? 0xFFFF : 0xFF00
        #expect(checksum.sum == expected)
        #expect(ReferenceChecksum.sum(bytes) == expected)
    }

    @Test("the same bytes at offsets 1, 2 and 3 of a bigger buffer give the same checksum")
    func unalignedInput() {
        var generator = SeededGenerator(seed: 0xA11C)
        for length in [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 255, 1000, 4097, 65_539] {
            let data = generator.bytes(length)
            let expected = ReferenceChecksum.checksum(data)
            for offset in 0...3 {
                // Random bytes around the data, so a read past either end changes the result.
                var storage = generator.bytes(offset + length + 8)
                storage.replaceSubrange(offset..<(offset + length), with: data)
                let actual = storage.withUnsafeBytes { raw in
                    InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
                }
                #expect(actual == expected, "length \(length) at offset \(offset)")
            }
        }
    }

    @Test("data fed in pieces of random odd and even sizes gives the one-shot checksum")
    func piecewiseEqualsOneShot() {
        var generator = SeededGenerator(seed: 0x9EC5)
        for round in 0..<300 {
            let length = Int.random(in: 0...5000, using: &generator)
            let data = generator.bytes(length)
            let expected = ReferenceChecksum.checksum(data)

            var pieces = InternetChecksum()
            var start = 0
            while start < length {
                let size = min(length - start, Int.random(in: 0...(round % 3 == 0 ? 7 : 600), using: &generator))
                data.withUnsafeBytes { raw in
                    pieces.update(UnsafeRawBufferPointer(rebasing: raw[start..<(start + size)]))
                }
                start += size
            }
            #expect(pieces.value == expected, "round \(round), length \(length)")
        }
    }

    @Test("single bytes one at a time give the one-shot checksum")
    func byteByByte() {
        var generator = SeededGenerator(seed: 7)
        let data = generator.bytes(1001)
        var checksum = InternetChecksum()
        for byte in data {
            checksum.update(CollectionOfOne(byte))
        }
        #expect(checksum.value == ReferenceChecksum.checksum(data))
    }

    @Test("sequences without contiguous storage are summed like arrays")
    func nonContiguousSequence() {
        var generator = SeededGenerator(seed: 11)
        let data = generator.bytes(777)
        // A lazy map has no contiguous storage: this takes the copying path.
        let sequence = data.lazy.map { $0 }
        var checksum = InternetChecksum()
        checksum.update(sequence.prefix(333))
        checksum.update(sequence.dropFirst(333))
        #expect(checksum.value == ReferenceChecksum.checksum(data))
        #expect(InternetChecksum.checksum(sequence) == ReferenceChecksum.checksum(data))
    }

    @Test("the checksum written into its own zeroed field makes the checksum of the whole 0")
    func verifyingProperty() {
        var generator = SeededGenerator(seed: 0xC0DE)
        for length in [2, 4, 10, 30, 31, 100, 1001, 65_536] {
            for _ in 0..<5 {
                var data = generator.bytes(length)
                // An even offset, so the field is one big-endian word.
                let field = Int.random(in: 0..<(length / 2), using: &generator) * 2
                data[field] = 0
                data[field + 1] = 0
                let checksum = InternetChecksum.checksum(data)
                data[field] = UInt8(checksum >> 8)
                data[field + 1] = UInt8(checksum & 0xFF)
                #expect(InternetChecksum.checksum(data) == 0, "length \(length), field at \(field)")
                // And one flipped bit anywhere is caught.
                let bit = Int.random(in: 0..<(length * 8), using: &generator)
                data[bit / 8] ^= 1 << (bit % 8)
                #expect(InternetChecksum.checksum(data) != 0, "length \(length), bit \(bit) flipped")
            }
        }
    }

    @Test("all-zero data gets checksum 0xFFFF, which also verifies")
    func zeroData() {
        var data = [UInt8](repeating: 0, count: 20)
        let checksum = InternetChecksum.checksum(data)
        #expect(checksum == 0xFFFF)
        data[0] = 0xFF
        data[1] = 0xFF
        #expect(InternetChecksum.checksum(data) == 0)
    }

    @Test("wordSum: the plain sum of native 32-bit words, a 1-3 byte tail zero-padded, and one changed byte changes it")
    func wordSum() {
        var generator = SeededGenerator(seed: 0x5A5A)
        for length in [0, 1, 2, 3, 4, 5, 7, 8, 1023, 4096, 262_144, 262_147] {
            var bytes = generator.bytes(length)
            let padded = bytes + [UInt8](repeating: 0, count: (4 - length % 4) % 4)
            var expected: UInt64 = 0
            padded.withUnsafeBytes { raw in
                for word in stride(from: 0, to: raw.count, by: 4) {
                    expected &+= UInt64(raw.loadUnaligned(fromByteOffset: word, as: UInt32.self))
                }
            }
            let sum = bytes.withUnsafeBytes { InternetChecksum.wordSum($0) }
            #expect(sum == expected, "length \(length)")
            guard length > 0 else { continue }
            bytes[length / 2] ^= 0x01
            #expect(bytes.withUnsafeBytes { InternetChecksum.wordSum($0) } != sum, "length \(length)")
        }
    }
}
