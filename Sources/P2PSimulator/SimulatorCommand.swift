import ArgumentParser
import NIOCore
import P2P

#if canImport(Glibc)
import Glibc
#endif

/// `p2p-sim`: a flash crowd in virtual time, driving the real download, relay and serving
/// state machines over modelled links. The same arguments and seed give the same output.
@main
struct SimulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p2p-sim",
        abstract: "Simulates a crowd of p2p downloaders in virtual time, with the real state machines.",
        discussion: """
            One seeder and N downloaders released together (spread over --join-spread). \
            Reports the last download against the Kumar-Ross bound, p50 and p99, the \
            seeder's upload per copy, and connections per peer.
            Every host has a CPU of its own that never holds anything up, unless \
            --shared-cores K puts them all on K cores, as the testbed's peers share one \
            machine's: then every unit an uplink sends needs --cpu-seconds-per-gib of CPU \
            for its bytes on the core that frees first, and leaves at the later of its link \
            time and its CPU time; each read-back needs --read-back-cpu-seconds-per-gib. \
            The testbed's machine (2 cores) spends about 16 CPU-s per GiB moved \
            (docs/scale.md, "Against the testbed, with its CPU").
            Example: p2p-sim --downloaders 63 --size-mib 128 --uplink-mbit 25
            Example: p2p-sim --downloaders 15 --shared-cores 2 --cpu-seconds-per-gib 16
            """
    )

    @Option(help: "Downloaders (besides the one seeder).")
    var downloaders = 8
    @Option(help: "File size in MiB.")
    var sizeMib = 128.0
    @Option(help: "Every host's uplink in Mbit/s.")
    var uplinkMbit = 100.0
    @Option(help: "The seeder's uplink in Mbit/s (default: --uplink-mbit).")
    var seederUplinkMbit: Double? = nil
    @Option(help: "Every host's downlink in Mbit/s.")
    var downlinkMbit = 10_000.0
    @Option(help: "One-way latency in milliseconds.")
    var latencyMs = 0.2
    @Option(help: "The most relay partners per downloader; 0 for every other downloader.")
    var maximumPartners = 16
    @Option(help: "With relays past one hop: most bytes queued in all for a downloader to ask for work (0: off).")
    var totalBacklogBytes = 1_500_000
    @Option(help: "Seconds per overlay hop a chunk seen at a partner may take to arrive relayed before it is pulled.")
    var relayGrace = Downloader.Configuration().relayGrace.seconds
    @Option(help: "KiB one relay subscriber's queue holds at most.")
    var relayQueueKib = RelayHub().maximumQueuedBytes >> 10
    @Flag(help: "A relay with no room for a chunk tells the subscriber at once (not what the engine does).")
    var dropNotices = false
    @Option(help: "Seconds without a work request that end the seeder's round.")
    var roundIdle = Double(WorkDispenser.defaultRoundIdleTimeout.nanoseconds) / 1e9
    @Option(help: "Downloaders start spread over this many seconds.")
    var joinSpread = 0.05
    @Option(help: "Seconds from a downloader's start to its first request (lookup, manifest).")
    var startup = 0.15
    @Option(help: "Downloaders that leave before finishing.")
    var leavers = 0
    @Option(help: "When they leave, seconds after the release.")
    var leaveAt = 5.0
    @Option(help: "Payload share of the bytes a rate limiter counts (TCP/IP and Ethernet headers).")
    var wireEfficiency = 1448.0 / 1514.0
    @Option(help: "Read-back rate of a finished file, MB/s (0: none).")
    var readBackMBps = 350.0
    @Option(help: "Bytes an uplink sends of one message before another connection's turn.")
    var unitKib = 64
    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 1
    @Option(help: "Cores shared by every host (0: each host has a CPU of its own that holds nothing up).")
    var sharedCores = 0
    @Option(help: "With --shared-cores: CPU-seconds per GiB moved host to host, sender, receiver and kernel together.")
    var cpuSecondsPerGib: Double? = nil
    @Option(help: "With --shared-cores: CPU-seconds per GiB of a finished download's read-back.")
    var readBackCpuSecondsPerGib = Scenario().readBackCPUSecondsPerGiB
    @Flag(help: "Print the figures as one JSON object.")
    var json = false
    @Flag(help: "Report progress on standard error every million events.")
    var progress = false

    mutating func validate() throws {
        guard self.downloaders >= 1 && self.downloaders <= 100_000 else {
            throw ValidationError("--downloaders must be 1 to 100000")
        }
        guard self.sizeMib > 0, self.uplinkMbit > 0, self.downlinkMbit > 0, self.latencyMs >= 0 else {
            throw ValidationError("sizes, rates and latency must be positive")
        }
        guard self.leavers >= 0 && self.leavers < self.downloaders else {
            throw ValidationError("--leavers must leave at least one downloader")
        }
        guard self.relayGrace >= 0, self.relayQueueKib >= 1 else {
            throw ValidationError("--relay-grace must be at least 0 and --relay-queue-kib at least 1")
        }
        guard self.unitKib >= 1 else { throw ValidationError("--unit-kib must be at least 1") }
        guard self.sharedCores >= 0 && self.sharedCores <= 4096 else {
            throw ValidationError("--shared-cores must be 0 to 4096")
        }
        guard self.sharedCores > 0 || self.cpuSecondsPerGib == nil else {
            throw ValidationError("--cpu-seconds-per-gib needs --shared-cores")
        }
        guard self.sharedCores == 0 || (self.cpuSecondsPerGib ?? -1) >= 0 else {
            throw ValidationError("--shared-cores needs --cpu-seconds-per-gib (at least 0)")
        }
        guard self.readBackCpuSecondsPerGib >= 0 else {
            throw ValidationError("--read-back-cpu-seconds-per-gib must be at least 0")
        }
    }

    func run() throws {
        Self.makeHashingDeterministic()
        var scenario = Scenario()
        scenario.downloaders = self.downloaders
        scenario.fileSize = Int64(self.sizeMib * 1_048_576)
        scenario.uplinkBitsPerSecond = self.uplinkMbit * 1e6
        scenario.seederUplinkBitsPerSecond = self.seederUplinkMbit.map { $0 * 1e6 }
        scenario.downlinkBitsPerSecond = self.downlinkMbit * 1e6
        scenario.latency = self.latencyMs / 1000
        scenario.maximumPartners = self.maximumPartners
        scenario.totalBacklogLimit = self.totalBacklogBytes
        scenario.roundIdleSeconds = self.roundIdle
        scenario.configuration.relayGrace = .nanoseconds(Int64(self.relayGrace * 1e9))
        scenario.relayQueueBytes = self.relayQueueKib << 10
        scenario.dropNotices = self.dropNotices
        scenario.joinSpreadSeconds = self.joinSpread
        scenario.startupSeconds = self.startup
        scenario.leavers = self.leavers
        scenario.leaveAtSeconds = self.leaveAt
        scenario.wireEfficiency = self.wireEfficiency
        scenario.readBackBytesPerSecond = self.readBackMBps * 1e6
        scenario.unitBytes = self.unitKib << 10
        scenario.seed = self.seed
        scenario.sharedCores = self.sharedCores
        scenario.cpuSecondsPerGiB = self.cpuSecondsPerGib ?? 0
        scenario.readBackCPUSecondsPerGiB = self.readBackCpuSecondsPerGib
        let swarm = try Swarm(scenario)
        swarm.run(
            progress: self.progress
                ? { seconds, done, events in
                    let line =
                        "p2p-sim: \(events / 1_000_000)M events, \((seconds * 100).rounded() / 100) s simulated, \(done) of \(scenario.downloaders) done\n"
                    _ = line.withCString { write(2, $0, strlen($0)) }
                } : nil
        )
        let report = swarm.report()
        print(self.json ? report.json : report.text)
        if report.completed < report.expected { throw ExitCode(1) }
    }

    /// Swift seeds its hashing per process, and dictionaries iterate in hash order; the
    /// state machines iterate dictionaries when they break ties. The same seed gives the
    /// same run only with deterministic hashing, which is read at start: so the simulator
    /// runs itself again with it set.
    static func makeHashingDeterministic() {
        #if canImport(Glibc)
        guard getenv("SWIFT_DETERMINISTIC_HASHING") == nil else { return }
        setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
        var arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &arguments)
        // Only if exec failed: run on, without the guarantee.
        for argument in arguments { free(argument) }
        #endif
    }
}
