/// How much each counter grew since it was last exported: Prometheus counters only go up
/// by increments, while the peer keeps running totals (`TransferStatistics`), so each
/// scrape adds the growth since the one before.
public struct CounterDeltas: Sendable {
    private var exported: [String: Int64] = [:]

    /// Nothing exported yet.
    public init() {}

    /// The growth of each counter since the last call, and records the totals as exported.
    /// - Parameter totals: each counter's running total, by a key naming it.
    /// - Returns: the positive growths, by key.
    public mutating func take(_ totals: [String: Int64]) -> [String: Int64] {
        var growth: [String: Int64] = [:]
        for (key, total) in totals {
            let delta = total - (self.exported[key] ?? 0)
            if delta > 0 {
                growth[key] = delta
                self.exported[key] = total
            }
        }
        return growth
    }
}
