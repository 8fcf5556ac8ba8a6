import Testing

@testable import P2P

@Suite("UnfinishedFrameBudget: bytes of unfinished frames across connections")
struct UnfinishedFrameBudgetTests {
    @Test("each connection's first free bytes cost nothing; beyond them the budget is shared")
    func freeBytes() {
        var budget = UnfinishedFrameBudget<Int>(capacity: 1000, freeBytesPerConnection: 100)
        for id in 0..<50 {
            let fits1 = budget.hold(100, for: id)
            #expect(fits1)
        }
        #expect(budget.used == 0)
        let fits2 = budget.hold(600, for: 1)
        #expect(fits2)
        let fits3 = budget.hold(600, for: 2)
        #expect(fits3)
        #expect(budget.used == 1000)
    }

    @Test("a connection that would go over is refused and gives back what it held")
    func overrun() {
        var budget = UnfinishedFrameBudget<Int>(capacity: 1000, freeBytesPerConnection: 0)
        let fits4 = budget.hold(700, for: 1)
        #expect(fits4)
        let fits5 = budget.hold(200, for: 2)
        #expect(fits5)
        let fits6 = budget.hold(400, for: 2)
        #expect(!fits6)
        #expect(budget.used == 700 && budget.overruns == 1)
        // Growing within the budget, shrinking as frames complete, and the close.
        let fits7 = budget.hold(1000, for: 1)
        #expect(fits7)
        let fits8 = budget.hold(1, for: 3)
        #expect(!fits8)
        let fits9 = budget.hold(0, for: 1)
        #expect(fits9)
        #expect(budget.used == 0)
        let fits10 = budget.hold(300, for: 3)
        #expect(fits10)
        budget.release(3)
        budget.release(3)
        #expect(budget.used == 0)
    }

    @Test("honest pushes fit the default: 256 connections, each mid-way through a 256 KiB chunk")
    func honestTraffic() {
        var budget = UnfinishedFrameBudget<Int>(
            capacity: TransferServer.Limits.defaultUnfinishedFrameBudget,
            freeBytesPerConnection: TransferServer.Limits.unbudgetedFrameBytesPerConnection
        )
        for id in 0..<256 {
            let fits11 = budget.hold(256 * 1024 + 44, for: id)
            #expect(fits11)
        }
    }
}
