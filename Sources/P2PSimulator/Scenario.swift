import NIOCore
import P2P

/// What one simulated run models: the crowd, the file, the links and the protocol's knobs.
struct Scenario: Sendable {
    /// Downloaders; one seeder besides them.
    var downloaders = 8
    /// The file's size in bytes.
    var fileSize: Int64 = 128 << 20
    /// Every host's uplink, bits a second (the seeder's too unless `seederUplink` is set).
    var uplinkBitsPerSecond = 100e6
    /// The seeder's uplink, bits a second.
    var seederUplinkBitsPerSecond: Double? = nil
    /// Every host's downlink, bits a second.
    var downlinkBitsPerSecond = 10e9
    /// One-way latency between any two hosts, seconds.
    var latency = 0.000_2
    /// Payload bytes per byte on the wire: TCP/IP and Ethernet headers (1448 of 1514 with
    /// timestamps) that a rate limiter counts.
    var wireEfficiency = 1448.0 / 1514.0
    /// From a downloader's start to its first requests: the lookup and the manifest.
    var startupSeconds = 0.15
    /// Downloaders start spread uniformly over this many seconds after time zero.
    var joinSpreadSeconds = 0.05
    /// The most relay partners per downloader (`RelayOverlay`); zero for every other
    /// downloader (one full mesh, whatever the crowd).
    var maximumPartners = 16
    /// How long without a work request ends the seeder's round of work (`WorkHandout`).
    var roundIdleSeconds = Double(WorkDispenser.defaultRoundIdleTimeout.nanoseconds) / 1e9
    /// With relays past one hop: the most bytes a downloader's relay queues may hold in
    /// all for it to ask the seeder for more work (zero: only the longest queue counts, as
    /// in one full mesh).
    var totalBacklogLimit = 1_500_000
    /// The most bytes one relay subscriber's queue holds (`RelayHub`'s bound by default).
    var relayQueueBytes = RelayHub().maximumQueuedBytes
    /// Whether a relay with no room for a chunk tells the subscriber at once (`unrelayed`),
    /// so that it fetches the chunk without waiting out the grace: a design the engine does
    /// not use (on the testbed it is not shown to help), modelled to weigh it.
    var dropNotices = false
    /// Downloaders that leave, and when (seconds).
    var leavers = 0
    var leaveAtSeconds = 5.0
    /// Bytes an uplink sends of one message before the next connection's turn.
    var unitBytes = 64 << 10
    /// Seeds every random choice.
    var seed: UInt64 = 1
    /// The download engine's tuning, as the real `get` uses it.
    var configuration = Downloader.Configuration()
    /// How fast a finished download reads its file back to check it whole, bytes a second
    /// (the pair's disk and SHA-256 on this machine); zero to skip.
    var readBackBytesPerSecond = 350e6
    /// Stop after this much virtual time.
    var timeLimitSeconds = 3_600.0
    /// Cores that every host shares, as the testbed's peers share one machine's (`CPUPool`);
    /// zero for a CPU of each host's own that never holds anything up.
    var sharedCores = 0
    /// With shared cores: the CPU-seconds one GiB moved from host to host costs, the
    /// sender's, the receiver's and the kernel's path between them together.
    var cpuSecondsPerGiB = 0.0
    /// With shared cores: the CPU-seconds a finished download's read-back costs per GiB
    /// (direct reads and a fingerprint per chunk: 0.14 CPU-s for 1 GiB on the testbed's
    /// machine, `DirectReadBack`). Its time on the disk stays `readBackBytesPerSecond`'s.
    var readBackCPUSecondsPerGiB = 0.14

    var readBackSeconds: Double {
        self.readBackBytesPerSecond > 0 ? Double(self.fileSize) / self.readBackBytesPerSecond : 0
    }

    /// With shared cores: the CPU-seconds one byte moved from host to host costs.
    var cpuSecondsPerByte: Double { self.cpuSecondsPerGiB / 1_073_741_824 }

    /// With shared cores: the CPU-seconds one read-back costs.
    var readBackCPUSeconds: Double {
        self.readBackBytesPerSecond > 0 ? Double(self.fileSize) / 1_073_741_824 * self.readBackCPUSecondsPerGiB : 0
    }

    var seederUplink: Double { self.seederUplinkBitsPerSecond ?? self.uplinkBitsPerSecond }

    /// The Kumar-Ross lower bound on the time to give every downloader the file (seconds):
    /// the seeder must send it once, every downloader must receive it, and all of it must
    /// cross the crowd's summed uplinks N times. Nominal rates, no header overhead.
    var bound: Double {
        let size = Double(self.fileSize) * 8
        let total = self.seederUplink + Double(self.downloaders) * self.uplinkBitsPerSecond
        return max(
            size / self.seederUplink,
            size / self.downlinkBitsPerSecond,
            Double(self.downloaders) * size / total
        )
    }
}
