import Foundation
import NIOCore
import NIOPosix
import P2P
import Testing

/// Issue 19 against a real `p2p serve`: connections that trickle bytes fill its table, and
/// connections that hold unfinished 16 MiB frames try to fill its memory.
@Suite("Trickling and unfinished frames against p2p serve", .timeLimit(.minutes(4)))
struct HostileFloodTests {
    /// Starts `p2p serve` with `arguments`; returns it and its transfer port.
    static func serve(_ arguments: [String], name: String, in swarm: TestSwarm) async throws -> (PeerProcess, Int) {
        let server = try swarm.launch(["serve"] + arguments, name: name)
        let (line, _) = try await server.waitForLine(
            in: .stderr,
            matching: { $0.contains(ServeCommandTests.ready) },
            timeout: .seconds(20)
        )
        return (server, try #require(line.text.firstMatch(of: ServeCommandTests.ready).flatMap { Int($0.2) }))
    }

    /// Opens `perAddress` connections from each of 127.0.0.2 … 127.0.0.(addresses+1).
    static func open(
        _ perAddress: Int,
        fromAddresses addresses: Int,
        to port: Int
    ) async throws
        -> [ConnectionFloodTests.FloodConnection]
    {
        var flood: [ConnectionFloodTests.FloodConnection] = []
        for host in 2..<(2 + addresses) {
            flood += try await ConnectionFloodTests.open(perAddress, from: "127.0.0.\(host)", to: port)
        }
        return flood
    }

    @Test("256 connections from 8 addresses dripping bytes fill the table; honest gets still succeed")
    func dripFloodFillsTheTable() async throws {
        ConnectionFloodTests.raiseFileLimit(to: 4096)
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let data = try TransferFixtures.share("wanted.bin", size: 8 << 20, seed: 19, peer: "server", in: swarm)
        let (server, port) = try await Self.serve([], name: "server", in: swarm)
        // The whole table (256, 32 from each of 8 addresses), each connection one byte into a
        // frame it never finishes.
        let flood = try await Self.open(32, fromAddresses: 8, to: port)
        defer { for connection in flood { connection.channel.close(promise: nil) } }
        for connection in flood { connection.channel.writeAndFlush(ByteBuffer(bytes: [0]), promise: nil) }
        let full = try await Polling.until(timeout: .seconds(15)) {
            ConnectionFloodTests.serverConnections(port: port) == 256
        }
        #expect(full, "the server holds \(ConnectionFloodTests.serverConnections(port: port) ?? -1)")
        // An honest download now, and again after the drips have outlived a frame's 30 s.
        let started = ContinuousClock.now
        try await ConnectionFloodTests.honestGet("wanted.bin", as: "fetch1", in: swarm, data: data)
        let firstGet = ContinuousClock.now - started
        let shedLines = server.lines(.stderr).filter { $0.text.contains("shed transfer connections") }
        #expect(!shedLines.isEmpty, "the server logged no shedding")
        let peak = try #require(TransferFixtures.peakRSS(pid: server.pid))
        #expect(server.isRunning, "\(server.transcript())")
        MeasurementLog.record(
            "drip flood of 256 connections: honest get in \(firstGet); \(shedLines.count) shedding lines; "
                + "\(flood.filter { $0.closedAfter != nil }.count) flood connections closed; peak RSS \(peak >> 20) MiB"
        )
    }

    @Test("64 connections holding 16 MiB frames: memory stays bounded; with --secret they are refused at once")
    func unfinishedFramesBounded() async throws {
        ConnectionFloodTests.raiseFileLimit(to: 4096)
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        _ = try TransferFixtures.share("small.bin", size: 1 << 20, seed: 20, peer: "plain", in: swarm)
        var generator = SystemRandomNumberGenerator()
        var body = ByteBuffer()
        body.writeBytes((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })

        for keyed in [false, true] {
            let name = keyed ? "keyed" : "plain"
            let (server, port) = try await Self.serve(keyed ? ["--secret", "issue 19"] : [], name: name, in: swarm)
            let atStart = try #require(TransferFixtures.peakRSS(pid: server.pid))
            let flood = try await Self.open(8, fromAddresses: 8, to: port)
            defer { for connection in flood { connection.channel.close(promise: nil) } }
            // Each: a request (so that an unkeyed server takes full-size frames), then
            // 16 MiB - 100 B of a 16 MiB push, in 1 MiB writes.
            var header = ByteBuffer()
            if !keyed { TransferMessage.inventoryRequest.frame().write(to: &header) }
            header.writeInteger(UInt32(16 << 20))
            header.writeBytes([
                Frame.protocolVersion, keyed ? FrameType.hello.rawValue : FrameType.pushedChunk.rawValue,
            ])
            header.writeBytes([0, 0, 0, 0, 0, 0])
            for connection in flood { connection.channel.writeAndFlush(header, promise: nil) }
            for index in 0..<16 {
                let length = index == 15 ? (1 << 20) - 100 : 1 << 20
                let piece = body.getSlice(at: 0, length: length)!
                for connection in flood where connection.closedAfter == nil {
                    connection.channel.writeAndFlush(piece, promise: nil)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(2))
            let peak = try #require(TransferFixtures.peakRSS(pid: server.pid))
            let closed = flood.filter { $0.closedAfter != nil }
            let slowest = closed.compactMap(\.closedAfter).max() ?? .zero
            MeasurementLog.record(
                "64 connections sending 16 MiB frames (\(name)): \(closed.count) closed (slowest after \(slowest)); "
                    + "peak RSS \(atStart >> 20) MiB at start, \(peak >> 20) MiB after"
            )
            #expect(server.isRunning, "\(server.transcript())")
            if keyed {
                // Refused from the header: a hello frame holds 32 bytes.
                #expect(closed.count == 64, "\(closed.count) of 64 closed")
                #expect(slowest < .seconds(3), "the slowest was closed after \(slowest)")
            } else {
                // 64 MiB of budget: at most a few connections hold their frames.
                #expect(closed.count >= 56, "\(closed.count) of 64 closed")
                let over = server.lines(.stderr).filter { $0.text.contains("over the shared budget") }
                #expect(!over.isEmpty, "the server logged no budget closures")
            }
            // Before the bounds, 1.16 GB (plain) and 1.18 GB (keyed), release build.
            #expect(peak - atStart < 256 << 20, "the server grew by \((peak - atStart) >> 20) MiB")
        }
    }
}
