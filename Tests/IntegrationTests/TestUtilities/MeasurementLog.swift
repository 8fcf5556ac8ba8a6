import Foundation

/// Prints what a test measured (latencies, counts), in a form easy to find in the log.
enum MeasurementLog {
    /// Prints one measurement, prefixed `[p2p measured]`.
    static func record(_ text: String) {
        print("[p2p measured] \(text)")
        fflush(nil)
    }
}
