import CoreMetrics
import P2P
import Prometheus
import Synchronization

/// The peer's counters in Prometheus' text format (`/metrics`), through swift-metrics
/// with swift-prometheus as its backend.
///
/// The peer keeps its own running totals (`TransferStatistics`, the transfer server's and
/// discovery's counters, the peer table); a scrape reads them and moves the metrics on by
/// what they grew (`CounterDeltas`), so there is one bookkeeping, not two. Download
/// durations are recorded as downloads end. The metrics live in a registry of this
/// gateway's own, not the process-wide one, so that tests can run several gateways.
public final class GatewayMetrics: Sendable {
    private struct State {
        var deltas = CounterDeltas()
        var counters: [String: CoreMetrics.Counter] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
    }

    private let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let state = Mutex(State())
    private let downloadsFinished: CoreMetrics.Counter
    private let downloadDurations: CoreMetrics.Timer

    /// The name of the download-duration histogram.
    static let downloadDurationName = "p2p_download_duration_seconds"

    /// Metrics with nothing recorded yet.
    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.downloadDurationName] = [
            .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600), .seconds(1800),
        ]
        self.factory = factory
        self.downloadsFinished = CoreMetrics.Counter(label: "p2p_downloads_finished_total", factory: factory)
        self.downloadDurations = CoreMetrics.Timer(label: Self.downloadDurationName, factory: factory)
        // Present from the first scrape, at zero.
        self.downloadsFinished.increment(by: 0)
    }

    /// Counts a finished download and its duration.
    /// - Parameter seconds: from start to the verified file.
    public func recordDownload(seconds: Double) {
        self.downloadsFinished.increment()
        self.downloadDurations.recordNanoseconds(Int64(seconds * 1e9))
    }

    /// The metrics now, in Prometheus' text format.
    /// - Parameter peer: whose counters to read.
    /// - Returns: the exposition text.
    public func render(peer: Peer) -> String {
        let statistics = peer.statistics.snapshot
        let connections = peer.connectionStatistics
        var totals: [String: Int64] = [
            "p2p_chunks_served_total": Int64(statistics.chunksServed),
            "p2p_chunks_verified_total|source|download": Int64(statistics.chunksVerified),
            "p2p_chunks_verified_total|source|push": Int64(statistics.pushesStored + statistics.pushesDuplicate),
            "p2p_chunks_rejected_total|source|download": Int64(statistics.chunksRejected),
            "p2p_chunks_rejected_total|source|push": Int64(statistics.pushesCorrupt),
            "p2p_connections_refused_total": Int64(connections.refused),
            "p2p_connections_shed_total": Int64(connections.shed),
            "p2p_discovery_datagrams_refused_total": Int64(peer.discoveryStatistics.malformed),
        ]
        for (address, bytes) in statistics.bytesServedTo {
            totals["p2p_sent_bytes_total|address|\(address)"] = bytes
        }
        for (source, bytes) in statistics.bytesReceivedFrom {
            totals["p2p_received_bytes_total|peer|\(source?.description ?? TransferStatistics.otherSource)"] = bytes
        }
        let gauges: [String: Double] = [
            "p2p_connections_open": Double(connections.open),
            "p2p_peers_known": Double(peer.table.servingPeers().count),
        ]
        self.state.withLock { state in
            // Every counter is made at its first scrape, so it shows (at zero) from then on.
            for key in totals.keys where state.counters[key] == nil {
                let (label, dimensions) = Self.split(key)
                state.counters[key] = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: self.factory)
                state.counters[key]?.increment(by: 0)
            }
            for (key, delta) in state.deltas.take(totals) {
                state.counters[key]?.increment(by: delta)
            }
            for (key, value) in gauges {
                if state.gauges[key] == nil {
                    let (label, dimensions) = Self.split(key)
                    state.gauges[key] = CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: self.factory)
                }
                state.gauges[key]?.record(value)
            }
        }
        return self.registry.emitToString()
    }

    /// A key `name|label|value` as a metric label and its one dimension.
    private static func split(_ key: String) -> (String, [(String, String)]) {
        let parts = key.split(separator: "|", maxSplits: 2).map(String.init)
        guard parts.count == 3 else { return (key, []) }
        return (parts[0], [(parts[1], parts[2])])
    }
}
