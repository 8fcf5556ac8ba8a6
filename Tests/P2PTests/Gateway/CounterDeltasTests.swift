import P2PGateway
import Testing

@Suite("Counter growth between scrapes")
struct CounterDeltasTests {
    @Test("each scrape takes what grew since the one before, and only that")
    func growth() {
        var deltas = CounterDeltas()
        #expect(deltas.take(["a": 5, "b": 0]) == ["a": 5])
        #expect(deltas.take(["a": 5, "b": 2]) == ["b": 2])
        #expect(deltas.take(["a": 9, "b": 2, "c": 1]) == ["a": 4, "c": 1])
        #expect(deltas.take(["a": 9, "b": 2, "c": 1]) == [:])
    }

    @Test("a total that went down adds nothing, and growth counts again from the highest seen")
    func neverBackwards() {
        var deltas = CounterDeltas()
        _ = deltas.take(["a": 10])
        #expect(deltas.take(["a": 3]) == [:])
        #expect(deltas.take(["a": 12]) == ["a": 2])
    }
}
