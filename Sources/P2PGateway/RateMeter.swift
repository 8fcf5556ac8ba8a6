/// Rates from growing byte counters, sampled when asked: a rate is the growth since the
/// previous sample, once at least `window` seconds have passed; until then the last rates
/// stand.
public struct RateMeter: Sendable {
    private var lastTotals: [String: Int64] = [:]
    private var lastTime: Double? = nil
    private var rates: [String: Double] = [:]
    /// The shortest interval a rate is measured over.
    public let window: Double

    /// - Parameter window: the shortest interval, in seconds, a rate is measured over.
    public init(window: Double = 1) {
        self.window = window
    }

    /// Takes the counters now.
    /// - Parameters:
    ///   - totals: each key's count so far.
    ///   - now: the time, in seconds.
    /// - Returns: each key's bytes per second.
    public mutating func sample(_ totals: [String: Int64], now: Double) -> [String: Double] {
        guard let last = self.lastTime else {
            self.lastTotals = totals
            self.lastTime = now
            return [:]
        }
        let elapsed = now - last
        guard elapsed >= self.window else { return self.rates }
        self.rates = totals.mapValues { _ in 0 }
        for (key, total) in totals {
            self.rates[key] = Double(max(0, total - (self.lastTotals[key] ?? 0))) / elapsed
        }
        self.lastTotals = totals
        self.lastTime = now
        return self.rates
    }
}
