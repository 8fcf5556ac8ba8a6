import P2P

/// What a run measured, against the bound.
struct Report {
    /// What the shared cores did, from the release to the end of the run.
    struct CPU {
        let cores: Int
        /// CPU-seconds spent.
        let seconds: Double
        /// Cores busy on average.
        let busyCores: Double
    }

    let scenario: Scenario
    let overlay: RelayOverlay
    let chunkSize: Int
    /// Downloaders that finished, and those that were to (every one that did not leave).
    let completed: Int
    let expected: Int
    /// When each finished (seconds from the release), sorted.
    let completionTimes: [Double]
    /// Bytes the seeder uploaded, in copies of the file.
    let seederUploadCopies: Double
    /// Of the file bytes downloaders received, the share that were duplicates.
    let duplicateShare: Double
    /// Open connections per downloader at the end: fewest, mean, most.
    let connectionsPerDownloader: (min: Int, mean: Double, max: Int)
    let seederConnections: Int
    let totalConnections: Int
    let events: UInt64
    /// Chunks by how they came, summed over downloaders; duplicates likewise.
    let arrivals: [ChunkArrival: Int]
    let duplicates: [ChunkArrival: Int]
    /// Chunks a relayer could not queue for an onward partner (its queue was full).
    let relayDrops: Int
    /// With shared cores, what they did.
    var cpu: CPU? = nil

    /// The bound with the wire's header overhead: what the payload can do on these links.
    var payloadBound: Double { self.scenario.bound / self.scenario.wireEfficiency }

    func percentile(_ fraction: Double) -> Double? {
        guard !self.completionTimes.isEmpty else { return nil }
        let index = min(
            self.completionTimes.count - 1,
            max(0, Int((fraction * Double(self.completionTimes.count)).rounded(.up)) - 1)
        )
        return self.completionTimes[index]
    }

    var last: Double? { self.completionTimes.last }

    private static func format(_ value: Double?, _ digits: Int = 2) -> String {
        guard let value else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(rounded)"
        let decimals = text.split(separator: ".").last.map(\.count) ?? 0
        if !text.contains(".") {
            text += "."
        }
        text += String(repeating: "0", count: max(0, digits - decimals))
        return text
    }

    private static func megabits(_ bits: Double) -> String {
        bits >= 1e9 ? "\(format(bits / 1e9, 1)) Gbit/s" : "\(format(bits / 1e6, 0)) Mbit/s"
    }

    /// A short human-readable summary.
    var text: String {
        let s = self.scenario
        let ratio = self.last.map { $0 / self.payloadBound }
        let nominal = self.last.map { $0 / s.bound }
        var cpu = ""
        if let c = self.cpu {
            let received = Double(self.completed) * Double(s.fileSize) / 1_073_741_824
            cpu = """

                cpu        \(c.cores) core(s) shared by all hosts, \(Self.format(s.cpuSecondsPerGiB, 2)) CPU-s per GiB moved, \
                \(Self.format(s.readBackCPUSecondsPerGiB, 2)) per GiB read back: \(Self.format(c.seconds, 1)) CPU-s \
                (\(Self.format(received > 0 ? c.seconds / received : nil, 2)) per GiB received), \
                \(Self.format(c.busyCores, 2)) of \(c.cores) busy from the release to the end
                """
        }
        return """
            crowd      1 + \(s.downloaders), \(Self.format(Double(s.fileSize) / 1_048_576, 0)) MiB in \
            \(self.chunkSize >> 10) KiB chunks, uplinks \(Self.megabits(s.uplinkBitsPerSecond)) \
            (seeder \(Self.megabits(s.seederUplink))), downlinks \(Self.megabits(s.downlinkBitsPerSecond)), \
            latency \(Self.format(s.latency * 1000, 1)) ms, seed \(s.seed)
            overlay    \(self.overlay.dimensions) digit(s) of bases \(self.overlay.bases.map(String.init).joined(separator: " x ")): \
            at most \(self.overlay.maximumPartners) relay partners; relay queues \(s.relayQueueBytes >> 10) KiB, \
            grace \(Self.format(s.configuration.relayGrace.seconds, 2)) s a hop, round idle \(Self.format(s.roundIdleSeconds, 1)) s\
            \(s.dropNotices ? ", drop notices" : "")
            done       \(self.completed) of \(self.expected)\(s.leavers > 0 ? " (\(s.leavers) left at \(s.leaveAtSeconds) s)" : "")
            last       \(Self.format(self.last)) s = \(Self.format(ratio, 3)) x payload bound \
            (\(Self.format(self.payloadBound)) s), \(Self.format(nominal, 3)) x nominal (\(Self.format(s.bound)) s)
            p50 / p99  \(Self.format(self.percentile(0.5))) s / \(Self.format(self.percentile(0.99))) s
            seeder     uploaded \(Self.format(self.seederUploadCopies, 3)) x F, \(self.seederConnections) connections
            per peer   \(self.connectionsPerDownloader.min) / \(Self.format(self.connectionsPerDownloader.mean, 1)) / \
            \(self.connectionsPerDownloader.max) connections (min / mean / max), \(self.totalConnections) in all
            duplicates \(Self.format(self.duplicateShare * 100, 2)) % of bytes received
            chunks     \(Self.kinds(self.arrivals)); duplicates \(Self.kinds(self.duplicates)); \
            \(self.relayDrops) relays dropped at full queues
            events     \(self.events)\(cpu)
            """
    }

    private static func kinds(_ counts: [ChunkArrival: Int]) -> String {
        [ChunkArrival.assigned, .relayed, .pulled].map { "\(counts[$0] ?? 0) \($0.rawValue)" }
            .joined(separator: ", ")
    }

    /// The figures as one JSON object.
    var json: String {
        let s = self.scenario
        func number(_ value: Double?) -> String { value.map { "\($0)" } ?? "null" }
        var fields: [(String, String)] = [
            ("downloaders", "\(s.downloaders)"),
            ("fileBytes", "\(s.fileSize)"),
            ("chunkBytes", "\(self.chunkSize)"),
            ("uplinkBitsPerSecond", "\(s.uplinkBitsPerSecond)"),
            ("seederUplinkBitsPerSecond", "\(s.seederUplink)"),
            ("downlinkBitsPerSecond", "\(s.downlinkBitsPerSecond)"),
            ("latencySeconds", "\(s.latency)"),
            ("seed", "\(s.seed)"),
            ("overlayDimensions", "\(self.overlay.dimensions)"),
            ("overlayBases", "\(self.overlay.bases)"),
            ("maximumPartners", "\(self.overlay.maximumPartners)"),
            ("relayQueueBytes", "\(s.relayQueueBytes)"),
            ("relayGraceSeconds", "\(s.configuration.relayGrace.seconds)"),
            ("roundIdleSeconds", "\(s.roundIdleSeconds)"),
            ("completed", "\(self.completed)"),
            ("expected", "\(self.expected)"),
            ("boundSeconds", number(s.bound)),
            ("payloadBoundSeconds", number(self.payloadBound)),
            ("lastSeconds", number(self.last)),
            ("ratioToPayloadBound", number(self.last.map { $0 / self.payloadBound })),
            ("p50Seconds", number(self.percentile(0.5))),
            ("p99Seconds", number(self.percentile(0.99))),
            ("seederUploadCopies", number(self.seederUploadCopies)),
            ("duplicateShare", number(self.duplicateShare)),
            ("connectionsPerDownloaderMean", number(self.connectionsPerDownloader.mean)),
            ("connectionsPerDownloaderMax", "\(self.connectionsPerDownloader.max)"),
            ("seederConnections", "\(self.seederConnections)"),
            ("totalConnections", "\(self.totalConnections)"),
            ("events", "\(self.events)"),
        ]
        if let c = self.cpu {
            fields += [
                ("sharedCores", "\(c.cores)"),
                ("cpuSecondsPerGiB", "\(s.cpuSecondsPerGiB)"),
                ("readBackCPUSecondsPerGiB", "\(s.readBackCPUSecondsPerGiB)"),
                ("cpuSeconds", number(c.seconds)),
                ("cpuBusyCores", number(c.busyCores)),
            ]
        }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}
