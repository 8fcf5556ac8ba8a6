import Testing

@testable import P2P
@testable import P2PCLI

/// The progress line's figures for every rate a download can have, a stalled one
/// included: a source that stops sending decays the rate towards zero, and the ETA must
/// say "?" rather than overflow.
@Suite("Progress line figures")
struct ProgressFormatTests {
    static let durations: [(Double, String)] = [
        (0.4, "0.4s"), (3, "3s"), (59.4, "59s"), (125, "2m05s"), (3720, "1h02m"), (-1, "?"), (.infinity, "?"),
        (.nan, "?"), (1e300, "?"), (Double(Int.max), "?"), (99 * 24 * 3600 + 1, "?"),
    ]

    @Test("durations people read, and '?' for what cannot be told", arguments: Self.durations)
    func duration(_ seconds: Double, _ expected: String) {
        #expect(Format.duration(seconds) == expected)
    }

    @Test("a rate that decays to almost nothing gives no ETA, and the line still prints")
    func stalledRate() {
        for rate in [1e-300, 1e-13, 0.5, 0] {
            let progress = DownloadProgress(
                name: "big.bin",
                bytesHeld: 1 << 20,
                totalBytes: 1 << 30,
                bytesPerSecond: rate,
                activePeers: 0
            )
            #expect(progress.secondsLeft == nil)
            #expect(ProgressPrinter.line(for: progress).hasSuffix("ETA ?"))
        }
    }
}
