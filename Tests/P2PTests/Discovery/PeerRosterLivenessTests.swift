import NIOCore
import P2P
import Testing

/// A peer that moves data with this one is alive whatever its announcements do.
@Suite("PeerRoster liveness")
struct PeerRosterLivenessTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let id = PeerID(high: 7, low: 7)
    static let source = try! SocketAddress(ipAddress: "198.18.0.2", port: 40_000)

    /// A roster that heard `id` at `t0` with a 1 s interval: it expires at `t0 + 3 s`.
    static func roster() -> PeerRoster {
        var roster = PeerRoster()
        let alive = Announcement(kind: .alive, peerID: Self.id, transferPort: 7000, announceIntervalMilliseconds: 1000)
        _ = roster.record(alive, from: Self.source, now: Self.t0)
        return roster
    }

    @Test("a peer with an open transfer connection is not expired, however long its announcements are lost")
    func heldPeerStays() {
        var roster = Self.roster()
        roster.hold(Self.id)
        #expect(roster.expire(now: Self.t0 + .seconds(60)).isEmpty)
        #expect(roster.peers[Self.id] != nil)
        #expect(roster.isHeld(Self.id))
    }

    @Test("once its last connection closes, the peer lives three intervals from then, then expires")
    func releaseGivesALifetime() {
        var roster = Self.roster()
        roster.hold(Self.id)
        roster.hold(Self.id)
        roster.release(Self.id, now: Self.t0 + .seconds(10))
        #expect(roster.isHeld(Self.id))
        #expect(roster.expire(now: Self.t0 + .seconds(20)).isEmpty)
        roster.release(Self.id, now: Self.t0 + .seconds(20))
        #expect(!roster.isHeld(Self.id))
        #expect(roster.expire(now: Self.t0 + .seconds(22)).isEmpty)
        #expect(roster.expire(now: Self.t0 + .seconds(23)).map(\.id) == [Self.id])
    }

    @Test("anything the peer sends on a transfer connection counts as hearing from it")
    func activityExtends() {
        var roster = Self.roster()
        roster.noteActivity(Self.id, now: Self.t0 + .seconds(2))
        #expect(roster.peers[Self.id]?.expires == Self.t0 + .seconds(5))
        #expect(roster.expire(now: Self.t0 + .seconds(4)).isEmpty)
        // Activity never shortens a life: an announcement heard later stands.
        _ = roster.record(
            Announcement(kind: .alive, peerID: Self.id, transferPort: 7000, announceIntervalMilliseconds: 1000),
            from: Self.source,
            now: Self.t0 + .seconds(4)
        )
        roster.noteActivity(Self.id, now: Self.t0 + .seconds(3))
        #expect(roster.peers[Self.id]?.expires == Self.t0 + .seconds(7))
        #expect(roster.expire(now: Self.t0 + .seconds(7)).map(\.id) == [Self.id])
    }

    @Test("a `stop` still removes a held peer; its connection holds it again if it comes back")
    func stopRemovesHeldPeer() {
        var roster = Self.roster()
        roster.hold(Self.id)
        let stop = Announcement(kind: .stop, peerID: Self.id, transferPort: 7000, announceIntervalMilliseconds: 1000)
        #expect(roster.record(stop, from: Self.source, now: Self.t0 + .seconds(1)) != .refused(.unknownStop))
        #expect(roster.peers[Self.id] == nil)
        let back = Announcement(kind: .start, peerID: Self.id, transferPort: 7000, announceIntervalMilliseconds: 1000)
        _ = roster.record(back, from: Self.source, now: Self.t0 + .seconds(2))
        #expect(roster.expire(now: Self.t0 + .seconds(30)).isEmpty)
    }

    @Test("releasing or noting a peer never held or never heard changes nothing")
    func unknownIsIgnored() {
        var roster = Self.roster()
        let stranger = PeerID(high: 9, low: 9)
        roster.release(stranger, now: Self.t0)
        roster.noteActivity(stranger, now: Self.t0)
        #expect(!roster.isHeld(stranger))
        #expect(roster.peers[stranger] == nil)
        #expect(roster.peers.count == 1)
    }

    @Test("no peer expires while datagrams were dropped unread within its lifetime; afterwards it does")
    func deafnessIsNotSilence() {
        var roster = Self.roster()
        // Expiry was due at 3 s; the last datagram dropped unread was at 2.5 s.
        #expect(roster.expire(now: Self.t0 + .seconds(4), missedSince: Self.t0 + .milliseconds(2500)).isEmpty)
        #expect(roster.expire(now: Self.t0 + .milliseconds(5400), missedSince: Self.t0 + .milliseconds(2500)).isEmpty)
        #expect(
            roster.expire(now: Self.t0 + .milliseconds(5500), missedSince: Self.t0 + .milliseconds(2500)).map(\.id)
                == [Self.id]
        )
    }
}
