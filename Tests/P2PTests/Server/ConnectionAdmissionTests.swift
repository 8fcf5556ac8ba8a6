import Testing

@testable import P2P

@Suite("ConnectionAdmission: who gets a connection, who is shed")
struct ConnectionAdmissionTests {
    let start = ContinuousClock.now

    @Test("an address at its limit is refused; others are admitted")
    func perAddress() {
        var table = ConnectionAdmission<Int>(maximumConnections: 10, maximumPerAddress: 2)
        let decision1 = table.admit(1, from: "a", at: self.start)
        #expect(decision1 == .admit)
        let decision2 = table.admit(2, from: "a", at: self.start)
        #expect(decision2 == .admit)
        let decision3 = table.admit(3, from: "a", at: self.start)
        #expect(decision3 == .refuse)
        let decision4 = table.admit(4, from: "b", at: self.start)
        #expect(decision4 == .admit)
        #expect(table.refused == 1 && table.count == 3)
        // A closed connection frees its address's place.
        table.remove(1)
        let decision5 = table.admit(5, from: "a", at: self.start)
        #expect(decision5 == .admit)
    }

    @Test("when full, the newcomer is admitted and the connection that did least is shed")
    func shedsLeastUseful() {
        var table = ConnectionAdmission<Int>(maximumConnections: 3, maximumPerAddress: 3)
        let decision6 = table.admit(1, from: "flood", at: self.start)
        #expect(decision6 == .admit)
        let decision7 = table.admit(2, from: "flood", at: self.start + .seconds(1))
        #expect(decision7 == .admit)
        let decision8 = table.admit(3, from: "honest", at: self.start + .seconds(2))
        #expect(decision8 == .admit)
        table.recordFrames(5, of: 3, at: self.start + .seconds(3))
        // 1 and 2 completed no frame; 1 has been idle longest.
        let decision9 = table.admit(4, from: "newcomer", at: self.start + .seconds(4))
        #expect(decision9 == .admitShedding(1))
        // Then 2 (no frame) before 4 (one frame), and never 3 (five).
        table.recordFrames(1, of: 4, at: self.start + .seconds(5))
        let decision10 = table.admit(5, from: "newcomer", at: self.start + .seconds(6))
        #expect(decision10 == .admitShedding(2))
        let decision11 = table.admit(6, from: "other", at: self.start + .seconds(7))
        #expect(decision11 == .admitShedding(5))
        #expect(table.shed == 3 && table.count == 3)
        // A shed connection's place is free for its address at once, and its own close is
        // ignored.
        table.remove(1)
        #expect(table.count == 3)
    }

    @Test("the per-address limit holds when full: a flooding address is refused, not shed for")
    func perAddressWhenFull() {
        var table = ConnectionAdmission<Int>(maximumConnections: 2, maximumPerAddress: 2)
        let decision12 = table.admit(1, from: "flood", at: self.start)
        #expect(decision12 == .admit)
        let decision13 = table.admit(2, from: "flood", at: self.start + .seconds(1))
        #expect(decision13 == .admit)
        let decision14 = table.admit(3, from: "flood", at: self.start)
        #expect(decision14 == .refuse)
        let decision15 = table.admit(4, from: "honest", at: self.start)
        #expect(decision15 == .admitShedding(1))
        #expect(table.refused == 1 && table.shed == 1)
    }

    @Test("ties in frames go to the one idle longest, counted from its last complete frame")
    func idleLongest() {
        var table = ConnectionAdmission<Int>(maximumConnections: 2, maximumPerAddress: 5)
        _ = table.admit(1, from: "a", at: self.start)
        _ = table.admit(2, from: "a", at: self.start + .seconds(1))
        table.recordFrames(2, of: 1, at: self.start + .seconds(10))
        table.recordFrames(2, of: 2, at: self.start + .seconds(5))
        let decision16 = table.admit(3, from: "b", at: self.start + .seconds(11))
        #expect(decision16 == .admitShedding(2))
    }
}
