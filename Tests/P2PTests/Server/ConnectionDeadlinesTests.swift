import Testing

@testable import P2P

@Suite("ConnectionDeadlines: idle means no complete frame; a frame must finish in time")
struct ConnectionDeadlinesTests {
    let start = ContinuousClock.now

    func deadlines() -> ConnectionDeadlines {
        ConnectionDeadlines(idleTimeout: .seconds(60), frameTimeout: .seconds(30), openedAt: self.start)
    }

    @Test("bytes that complete no frame do not keep a connection alive")
    func dripIsIdle() {
        var deadlines = self.deadlines()
        // A byte of a header every 20 s; each read leaves a frame unfinished.
        deadlines.bytesRead(holdingUnfinishedFrame: true, at: self.start + .seconds(20))
        let verdict1 = deadlines.check(at: self.start + .seconds(40), reading: true)
        #expect(verdict1 == .keep(until: self.start + .seconds(50)))
        // Thirty seconds after its first byte the frame is still not whole.
        let verdict2 = deadlines.check(at: self.start + .seconds(50), reading: true)
        #expect(verdict2 == .frameTooSlow)
    }

    @Test("a connection that sends nothing is idle after the idle timeout")
    func idle() {
        var deadlines = self.deadlines()
        let verdict3 = deadlines.check(at: self.start + .seconds(59), reading: true)
        #expect(verdict3 == .keep(until: self.start + .seconds(60)))
        let verdict4 = deadlines.check(at: self.start + .seconds(60), reading: true)
        #expect(verdict4 == .idle)
    }

    @Test("complete frames and answers taken are progress")
    func progress() {
        var deadlines = self.deadlines()
        deadlines.frameCompleted(at: self.start + .seconds(50))
        let verdict5 = deadlines.check(at: self.start + .seconds(100), reading: true)
        #expect(verdict5 == .keep(until: self.start + .seconds(110)))
        // A relay subscriber asks for nothing but reads what it is sent.
        deadlines.answerProgressed(at: self.start + .seconds(105))
        let verdict6 = deadlines.check(at: self.start + .seconds(160), reading: true)
        #expect(verdict6 == .keep(until: self.start + .seconds(165)))
        let verdict7 = deadlines.check(at: self.start + .seconds(165), reading: true)
        #expect(verdict7 == .idle)
    }

    @Test("a frame's deadline runs from its first byte; a new frame gets a new one")
    func frameDeadline() {
        var deadlines = self.deadlines()
        deadlines.bytesRead(holdingUnfinishedFrame: true, at: self.start + .seconds(1))
        deadlines.bytesRead(holdingUnfinishedFrame: true, at: self.start + .seconds(20))
        #expect(deadlines.nextCheck == self.start + .seconds(31))
        // It completes, and the same read begins the next one.
        deadlines.frameCompleted(at: self.start + .seconds(25))
        deadlines.bytesRead(holdingUnfinishedFrame: true, at: self.start + .seconds(25))
        #expect(deadlines.nextCheck == self.start + .seconds(55))
        deadlines.bytesRead(holdingUnfinishedFrame: false, at: self.start + .seconds(26))
        #expect(deadlines.nextCheck == self.start + .seconds(85))
    }

    @Test("while the server does not read, an unfinished frame is not the client's fault")
    func notReading() {
        var deadlines = self.deadlines()
        deadlines.frameCompleted(at: self.start)
        deadlines.bytesRead(holdingUnfinishedFrame: true, at: self.start)
        let verdict8 = deadlines.check(at: self.start + .seconds(30), reading: false)
        #expect(verdict8 == .keep(until: self.start + .seconds(60)))
        let verdict9 = deadlines.check(at: self.start + .seconds(60), reading: true)
        #expect(verdict9 == .frameTooSlow)
    }
}
