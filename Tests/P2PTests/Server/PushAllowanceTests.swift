import NIOCore
import Testing

@testable import P2P

@Suite("PushAllowance: pushed bytes taken per address")
struct PushAllowanceTests {
    let start = ContinuousClock.now

    @Test("an address gets the allowance at once, then what refills; a refusal takes nothing")
    func bucket() {
        let allowance = PushAllowance(bytesPerInterval: 1000, interval: .seconds(10))
        #expect(allowance.admit(bytes: 600, from: "10.0.0.1", at: self.start))
        #expect(allowance.admit(bytes: 400, from: "10.0.0.1", at: self.start))
        #expect(!allowance.admit(bytes: 1, from: "10.0.0.1", at: self.start))
        // Refills at 100 bytes a second; the refused push took nothing.
        #expect(!allowance.admit(bytes: 300, from: "10.0.0.1", at: self.start + .seconds(2)))
        #expect(allowance.admit(bytes: 200, from: "10.0.0.1", at: self.start + .seconds(2)))
        // Never more than the allowance, however long the address was quiet.
        #expect(!allowance.admit(bytes: 1001, from: "10.0.0.1", at: self.start + .seconds(3600)))
        #expect(allowance.admit(bytes: 1000, from: "10.0.0.1", at: self.start + .seconds(3600)))
        // A time earlier than the last one seen (clock skew between callers) refills nothing.
        #expect(!allowance.admit(bytes: 1, from: "10.0.0.1", at: self.start))
    }

    @Test("addresses are independent; the port does not matter")
    func perAddress() throws {
        let allowance = PushAllowance(bytesPerInterval: 1000, interval: .seconds(10))
        let first = try SocketAddress(ipAddress: "127.0.0.2", port: 40000)
        let samePeerOtherPort = try SocketAddress(ipAddress: "127.0.0.2", port: 40001)
        let other = try SocketAddress(ipAddress: "127.0.0.3", port: 40000)
        #expect(allowance.admit(bytes: 1000, from: first))
        #expect(!allowance.admit(bytes: 1, from: samePeerOtherPort))
        #expect(allowance.admit(bytes: 1000, from: other))
    }

    @Test("an allowance of zero takes no pushes")
    func zero() {
        let allowance = PushAllowance(bytesPerInterval: 0)
        #expect(!allowance.admit(bytes: 0, from: "10.0.0.1", at: self.start))
        #expect(!allowance.admit(bytes: 1, from: "10.0.0.1", at: self.start + .seconds(60)))
    }

    @Test("the table of addresses is bounded: full ones are forgotten, past the bound new ones are refused")
    func boundedTable() {
        let allowance = PushAllowance(bytesPerInterval: 1000, interval: .seconds(10))
        for index in 0..<PushAllowance.maximumAddresses {
            #expect(allowance.admit(bytes: 10, from: "a\(index)", at: self.start))
        }
        #expect(!allowance.admit(bytes: 10, from: "newcomer", at: self.start + .seconds(5)))
        // Known addresses go on as before.
        #expect(allowance.admit(bytes: 10, from: "a0", at: self.start + .seconds(5)))
        // Once a whole interval has passed, the quiet addresses are full again and forgotten.
        #expect(allowance.admit(bytes: 10, from: "newcomer", at: self.start + .seconds(11)))
    }

    @Test("a connection's gate drops pushes over the allowance, counts them, and closes after a streak")
    func gate() throws {
        let allowance = PushAllowance(bytesPerInterval: 100, interval: .seconds(3600))
        let statistics = TransferStatistics()
        var gate = PushAllowance.Gate(
            allowance,
            remote: try SocketAddress(ipAddress: "127.0.0.9", port: 1),
            statistics: statistics,
            logger: StorageFixture.logger
        )
        let chunk = Frame(type: .pushedChunk, payload: ByteBuffer(repeating: 1, count: 100))
        let manifest = Frame(type: .manifest, payload: ByteBuffer(repeating: 2, count: 50))
        #expect(try gate.admit(chunk))
        #expect(try !gate.admit(manifest))
        for _ in 2..<PushAllowance.refusalsBeforeClosing {
            #expect(try !gate.admit(chunk))
        }
        // Manifests are dropped too, but only chunks are counted as refused pushes.
        #expect(statistics.snapshot.pushesRefused == PushAllowance.refusalsBeforeClosing - 2)
        #expect(throws: P2PError.self) { try gate.admit(chunk) }
    }
}
