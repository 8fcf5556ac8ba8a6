// Helpers shared by the fuzz targets: invariant checks that libFuzzer reports as crashes,
// a deterministic random source derived from the input, and the seed writer.
import CFuzzDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fails the run (libFuzzer sees a deadly signal and saves the input) if `condition` is
/// false. Unlike `precondition`, it prints what went wrong in release builds too.
@inline(__always)
public func invariant(
    _ condition: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() {
        fail(message(), file: file, line: line)
    }
}

/// Fails the run unconditionally.
public func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    printError("==p2p-fuzz== INVARIANT VIOLATED at \(file):\(line): \(message)")
    abort()
}

/// Writes a line to standard error, unbuffered.
public func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        guard written > 0 else { return }
        offset += written
    }
}

/// The bytes libFuzzer hands over, as an array.
public func inputBytes(_ start: UnsafeRawPointer?, _ count: Int) -> [UInt8] {
    guard let start, count > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: start, count: count))
}

/// FNV-1a over the input: seeds the random choices a target makes, so that the same input
/// always takes the same path (a saved crash reproduces).
public func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}

/// SplitMix64: a tiny deterministic generator for split points and the like.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Big-endian integer at `offset` of `bytes` (which must hold it).
public func bigEndian<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as: T.Type = T.self) -> T {
    var value: T = 0
    for index in 0..<(T.bitWidth / 8) {
        value = value << 8 | T(bytes[offset + index])
    }
    return value
}

/// Writes `value` big-endian into `bytes` at `offset`.
public func setBigEndian<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
    let count = T.bitWidth / 8
    for index in 0..<count {
        bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * (count - 1 - index)))
    }
}

/// The seed mode of every target: if `P2P_FUZZ_WRITE_SEEDS` names a folder, the target
/// writes its seeds there (one file per seed) and exits instead of fuzzing.
/// `scripts/fuzz.sh --write-seeds` uses this to regenerate `Fuzz/Corpus/<target>/`.
///
/// `runFuzzer` calls it.
func writeSeedsIfAsked(_ seeds: () -> [(name: String, bytes: [UInt8])]) {
    guard let folder = getenv("P2P_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return }
    var names = Set<String>()
    for seed in seeds() {
        precondition(names.insert(seed.name).inserted, "duplicate seed name \(seed.name)")
        let path = folder + "/" + seed.name
        guard let file = fopen(path, "wb") else {
            printError("cannot write \(path)")
            exit(1)
        }
        let written = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        guard written == seed.bytes.count else {
            printError("short write to \(path)")
            exit(1)
        }
    }
    print("wrote \(names.count) seeds to \(folder)")
    exit(0)
}

/// The fuzz target's main: writes the seeds if asked to (see `writeSeedsIfAsked`), else
/// hands the command line to libFuzzer, which calls `test` with each input.
///
/// SwiftPM links an executable with `main` defined as the target's own entry point, so
/// libFuzzer's `main` is never used; `LLVMFuzzerRunDriver` is its documented replacement
/// and takes the same flags.
public func runFuzzer(
    seeds: () -> [(name: String, bytes: [UInt8])],
    test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> Never {
    writeSeedsIfAsked(seeds)
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}
