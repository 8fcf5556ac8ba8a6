import NIOCore
import P2P
import Testing

/// A broadcast address the network refuses rests, longer after each refusal in a row, and
/// is used again as soon as a send to it works.
@Suite("BroadcastRest")
struct BroadcastRestTests {
    static let subnet = try! SocketAddress(ipAddress: "198.18.0.255", port: 7777)
    static let other = try! SocketAddress(ipAddress: "198.18.1.255", port: 7777)

    @Test("a refused address rests 5 s, then 10, 20, 40, and never more than 60 s; others go on")
    func restsLongerEachTime() {
        var rest = BroadcastRest()
        let start = ContinuousClock.now
        #expect(rest.allows(Self.subnet, now: start))
        var now = start
        var rests: [Duration] = []
        for _ in 0..<7 {
            let resting = rest.failed(Self.subnet, now: now)
            rests.append(resting)
            #expect(!rest.allows(Self.subnet, now: now + resting - .milliseconds(1)))
            #expect(rest.allows(Self.other, now: now))
            now += resting
            #expect(rest.allows(Self.subnet, now: now))
        }
        #expect(
            rests == [.seconds(5), .seconds(10), .seconds(20), .seconds(40), .seconds(60), .seconds(60), .seconds(60)]
        )
    }

    @Test("a send that works ends the rest: the next refusal rests 5 s again")
    func successResets() {
        var rest = BroadcastRest()
        let now = ContinuousClock.now
        rest.failed(Self.subnet, now: now)
        rest.failed(Self.subnet, now: now + .seconds(5))
        rest.succeeded(Self.subnet)
        #expect(rest.allows(Self.subnet, now: now + .seconds(6)))
        let again = rest.failed(Self.subnet, now: now + .seconds(20))
        #expect(again == BroadcastRest.firstRest)
    }
}
