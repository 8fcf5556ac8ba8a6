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

    @Test("the same seed gives the same run; another seed another one")
    func deterministic() throws {
        let scenario: (inout Scenario) -> Void = {
            $0.downloaders = 20
            $0.maximumPartners = 6
            $0.joinSpreadSeconds = 0.5
            $0.seed = 7
        }
        let first = try self.run(scenario)
        let second = try self.run(scenario)
        #expect(first.json == second.json)
        #expect(first.events == second.events)
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
