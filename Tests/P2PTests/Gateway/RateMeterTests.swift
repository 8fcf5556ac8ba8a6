import P2PGateway
import Testing

@Suite("Rates from counters")
struct RateMeterTests {
    @Test("a rate is the growth over at least the window; asked sooner, the last rates stand")
    func rates() {
        var meter = RateMeter(window: 1)
        #expect(meter.sample(["a": 0], now: 0) == [:])
        #expect(meter.sample(["a": 500], now: 0.5) == [:])
        #expect(meter.sample(["a": 2000], now: 2) == ["a": 1000])
        #expect(meter.sample(["a": 9000], now: 2.5) == ["a": 1000])
        #expect(meter.sample(["a": 2000, "b": 300], now: 3) == ["a": 0, "b": 300])
    }
}
