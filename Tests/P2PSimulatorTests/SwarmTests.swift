import P2P
import Testing

@testable import P2PSimulator

@Suite("p2p-sim: crowds in virtual time, on the real state machines")
struct SwarmTests {
    func run(_ adjust: (inout Scenario) -> Void) throws -> Report {
        var scenario = Scenario()
        scenario.fileSize = 16 << 20
        adjust(&scenario)
        let swarm = try Swarm(scenario)
        swarm.run()
        return swarm.report()
    }

    @Test("a crowd of 8 gets the file near the bound, the seeder sending each chunk once, without duplicates")
    func smallCrowd() throws {
        let report = try self.run {
            $0.downloaders = 8
            $0.fileSize = 64 << 20
        }
        #expect(report.completed == 8 && report.expected == 8)
        let last = try #require(report.last)
        #expect(last >= report.payloadBound, "\(last) s against \(report.payloadBound) s")
        #expect(last <= report.payloadBound * 1.10, "\(last) s against \(report.payloadBound) s")
        #expect(report.seederUploadCopies >= 1 && report.seederUploadCopies < 1.01)
        #expect(report.duplicateShare == 0)
        // One full mesh: each downloader is connected to the seeder and both ways to the 7 others.
        #expect(report.overlay.dimensions == 1)
        #expect(report.connectionsPerDownloader.max == 15)
    }

    @Test("past the partner budget, connections per downloader stay bounded and every download completes")
    func boundedFanOut() throws {
        let report = try self.run {
            $0.downloaders = 40
            $0.maximumPartners = 8
            $0.uplinkBitsPerSecond = 50e6
            // Four chunks a downloader or more: with fewer, the first work requests (a
            // window each, before anyone subscribes to relays) hand out the whole file
            // unrelayed, and the rest is pulled, whatever the overlay.
            $0.fileSize = 64 << 20
        }
        #expect(report.completed == 40)
        #expect(report.overlay.dimensions > 1 && report.overlay.maximumPartners <= 8)
        // Each partner both ways, and the seeder.
        #expect(report.connectionsPerDownloader.max <= 2 * report.overlay.maximumPartners + 1)
        #expect(report.totalConnections < 40 * 39 / 2)
        #expect(report.seederUploadCopies < 1.2)
        let last = try #require(report.last)
        #expect(last <= report.payloadBound * 1.5, "\(last) s against \(report.payloadBound) s")
    }

    @Test(
        "the same seed gives the same run, on the hosts' own cores or on shared ones; another seed another one",
        arguments: [0, 2]
    )
    func deterministic(sharedCores: Int) throws {
        let scenario: (inout Scenario) -> Void = {
            $0.downloaders = 20
            $0.maximumPartners = 6
            $0.joinSpreadSeconds = 0.5
            $0.sharedCores = sharedCores
            $0.cpuSecondsPerGiB = sharedCores > 0 ? 40 : 0
            $0.seed = 7
        }
        let first = try self.run(scenario)
        let second = try self.run(scenario)
        #expect(first.completed == 20)
        #expect(first.json == second.json)
        #expect(first.events == second.events)
        #expect(first.json.contains("\"cpuBusyCores\"") == (sharedCores > 0))
        let other = try self.run {
            scenario(&$0)
            $0.seed = 8
        }
        #expect(other.completionTimes != first.completionTimes)
    }

    @Test("downloaders that leave mid-way do not keep the others from finishing")
    func leavers() throws {
        let report = try self.run {
            $0.downloaders = 12
            $0.leavers = 3
            $0.leaveAtSeconds = 0.8
        }
        #expect(report.expected == 9)
        #expect(report.completed == 9)
    }

    @Test("on shared cores, a crowd whose bytes need more CPU than the cores give takes that CPU over the cores")
    func sharedCoresBind() throws {
        // 8 copies of 16 MiB at 80 CPU-s per GiB: at least 10 CPU-s, against about 1.5 s
        // of the links' time. No read-back, which would wait behind all the work queued
        // before it: the time must come from the units themselves.
        let needed = 8.0 * 16 / 1024 * 80
        var lasts: [Double] = []
        for cores in [1, 2] {
            let report = try self.run {
                $0.downloaders = 8
                $0.sharedCores = cores
                $0.cpuSecondsPerGiB = 80
                $0.readBackBytesPerSecond = 0
            }
            #expect(report.completed == 8)
            let last = try #require(report.last)
            let cpu = try #require(report.cpu)
            #expect(last >= needed / Double(cores), "\(last) s on \(cores) core(s)")
            // Every byte moved is charged: copies, requests and any duplicates.
            #expect(cpu.seconds >= needed)
            #expect(cpu.busyCores <= Double(cores) + 1e-9 && cpu.busyCores >= 0.9 * Double(cores))
            lasts.append(last)
        }
        #expect(lasts[1] < lasts[0] * 0.6, "two cores: \(lasts[1]) s, one: \(lasts[0]) s")
    }

    @Test("without shared cores nothing changes; with a core free for every unit, faster than the links, no time does")
    func sharedCoresOff() throws {
        let crowd: (inout Scenario) -> Void = {
            $0.downloaders = 12
            $0.maximumPartners = 4
        }
        let plain = try self.run(crowd)
        let costOnly = try self.run {
            crowd(&$0)
            $0.cpuSecondsPerGiB = 1_000
            $0.readBackCPUSecondsPerGiB = 1_000
        }
        #expect(plain.cpu == nil && costOnly.cpu == nil)
        #expect(costOnly.json == plain.json && costOnly.text == plain.text)
        // A unit of 64 KiB at 1 CPU-s per GiB takes 61 µs, under its 5.5 ms on the link;
        // each host holds at most one unit and one read-back on the cores at a time.
        let roomy = try self.run {
            crowd(&$0)
            $0.sharedCores = 2 * 13
            $0.cpuSecondsPerGiB = 1
        }
        #expect(roomy.completionTimes == plain.completionTimes)
        #expect(roomy.events == plain.events)
        let cpu = try #require(roomy.cpu)
        #expect(cpu.seconds > 12.0 * 16 / 1024 && cpu.busyCores < 1)
    }

    @Test("the bound: the seeder's uplink for one downloader, the crowd's summed uplinks for many")
    func bound() {
        var one = Scenario()
        one.downloaders = 1
        one.fileSize = 100_000_000
        one.uplinkBitsPerSecond = 100e6
        #expect(abs(one.bound - 8) < 1e-9)
        var many = one
        many.downloaders = 9
        // 9 copies through 10 uplinks of 100 Mbit/s: 7.2 s, under the seeder's 8 s.
        #expect(abs(many.bound - 8) < 1e-9)
        many.seederUplinkBitsPerSecond = 1e9
        #expect(abs(many.bound - 9 * 8e8 / 1.9e9) < 1e-9)
    }
}
