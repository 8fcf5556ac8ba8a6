// Fuzzes the discovery datagram parsers, `Announcement.parse` without and with a network key.
//
// Input: [mode] [datagram bytes ...]
//   mode & 3 == 1: rewrite the checksum field (of a datagram of at least 32 bytes) to the
//                  right value, so that the fuzzer gets past the checksum
//   mode & 3 == 2: the same, but where one's-complement arithmetic allows a second value
//                  that also verifies (0xFFFF for 0x0000), write that one
//
// Invariants: a datagram that parses is as long as its name and addresses say (32 to 288
// bytes), re-encodes to the same bytes, and its re-encoding parses back equal; a datagram
// that is refused is refused for a reason that its bytes bear out. The keyed parse accepts
// only an announcement followed by a 22-byte seal and a 32-byte tag, which re-encode, seal
// and tag, identically; a seal's check against a source and a clock never crashes.
import FuzzSupport
import NIOCore
import P2P

func check(_ input: [UInt8]) {
    guard let mode = input.first else { return }
    var datagram = Array(input.dropFirst())
    if mode & 3 != 0, datagram.count >= Announcement.minimumLength {
        datagram[6] = 0
        datagram[7] = 0
        var checksum = InternetChecksum.checksum(datagram)
        if mode & 3 == 2, checksum == 0 { checksum = 0xFFFF }
        setBigEndian(checksum, in: &datagram, at: 6)
    }
    let buffer = ByteBuffer(bytes: datagram)
    let result = Result { () throws(AnnouncementError) -> Announcement in try Announcement.parse(buffer) }

    // The reader index does not matter.
    var shifted = ByteBuffer(bytes: [0x50, 0x32] + datagram)
    shifted.moveReaderIndex(forwardBy: 2)
    let shiftedResult = Result { () throws(AnnouncementError) -> Announcement in try Announcement.parse(shifted) }
    invariant(shiftedResult == result, "parse depends on the reader index")

    switch result {
    case .success(let announcement):
        invariant(
            datagram.count == announcement.encodedLength
                && (Announcement.minimumLength...Announcement.maximumLength).contains(datagram.count),
            "accepted \(datagram.count) bytes"
        )
        if let name = announcement.name { invariant(PeerName.problem(with: name.value) == nil, "accepted a bad name") }
        invariant(announcement.peers.allSatisfy { $0.address != 0 && $0.port != 0 }, "accepted a zero address")
        invariant(announcement.announceIntervalMilliseconds > 0, "accepted a zero interval")
        let encoded = Array(announcement.encoded().readableBytesView)
        invariant(encoded == datagram, "accepted datagram does not re-encode identically: \(datagram) vs \(encoded)")
        let again = Result { () throws(AnnouncementError) -> Announcement in
            try Announcement.parse(announcement.encoded())
        }
        invariant(again == .success(announcement), "re-encoded announcement does not parse back equal")
    case .failure(.wrongLength(let length)):
        invariant(length == datagram.count, "bad wrongLength(\(length))")
    case .failure(.badMagic):
        invariant(Array(datagram.prefix(4)) != Announcement.magic, "refused a good magic")
    case .failure(.unsupportedVersion(let version)):
        invariant(version == datagram[4] && version != Announcement.version, "bad unsupportedVersion")
    case .failure(.badChecksum):
        invariant(
            InternetChecksum.checksum(datagram) != 0 || bigEndian(datagram, at: 6, as: UInt16.self) == 0xFFFF,
            "refused a checksum that verifies"
        )
    case .failure(.unknownKind(let kind)):
        invariant(kind == datagram[5] && Announcement.Kind(rawValue: kind) == nil, "bad unknownKind")
    case .failure(.zeroInterval):
        invariant(bigEndian(datagram, at: 26, as: UInt32.self) == 0, "bad zeroInterval")
    case .failure(.badTag):
        invariant(false, "a parse without a network key asked for a tag")
    case .failure(.badName):
        invariant(datagram.count > Announcement.headerLength, "refused a name it does not have")
    case .failure(.tooManyPeers(let count)):
        invariant(count > Announcement.maximumExchangedPeers, "bad tooManyPeers(\(count))")
    case .failure(.badPeerAddress):
        invariant(datagram.count >= Announcement.minimumLength + 6, "refused an address it does not have")
    case .failure(.sealed):
        invariant(
            datagram.count >= Announcement.minimumLength + Announcement.sealedTrailerLength,
            "took \(datagram.count) bytes for a sealed datagram"
        )
    }

    // The keyed parse: a datagram it accepts carries the right tag, so it re-encodes, seal,
    // tag and all, to exactly the same bytes; anything else is refused without a crash.
    do {
        let (announcement, seal) = try Announcement.parse(buffer, key: fuzzKey)
        invariant(
            datagram.count == announcement.encodedLength + Announcement.sealedTrailerLength,
            "accepted a keyed datagram of \(datagram.count) bytes"
        )
        let encoded = Array(announcement.encoded(key: fuzzKey, seal: seal).readableBytesView)
        invariant(encoded == datagram, "keyed datagram does not re-encode identically")
        let source = try! SocketAddress(
            ipAddress: NetworkScope.dottedQuad(seal.sourceAddress),
            port: Int(seal.sourcePort)
        )
        invariant(
            seal.problem(receivedFrom: source, nowMilliseconds: seal.timestampMilliseconds) == nil,
            "a seal does not fit its own source and time"
        )
        _ = seal.problem(receivedFrom: fuzzSource, nowMilliseconds: 1_800_000_000_000)
    } catch {
        invariant(
            datagram.count >= Announcement.minimumLength + Announcement.sealedTrailerLength || error == .badTag,
            "a keyed datagram of \(datagram.count) bytes refused as \(error), not for its tag"
        )
    }
}

/// A source to check seals against.
let fuzzSource = try! SocketAddress(ipAddress: "192.0.2.7", port: 47474)

/// The key of the keyed parse.
let fuzzKey = try! NetworkKey(secret: "fuzzing network key")

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    do {
        func datagram(
            _ kind: Announcement.Kind,
            port: UInt16 = 47475,
            interval: UInt32 = 1000,
            name: String? = nil,
            peers: Int = 0
        ) -> [UInt8] {
            let announcement = Announcement(
                kind: kind,
                peerID: PeerID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210),
                transferPort: port,
                announceIntervalMilliseconds: interval,
                name: name.map { try! PeerName($0) },
                peers: (0..<peers).map { Announcement.PeerAddress(address: 0xC612_0100 + UInt32($0), port: 40_000) }
            )
            return Array(announcement.encoded().readableBytesView)
        }
        var seeds: [(name: String, bytes: [UInt8])] = [
            ("start", [0] + datagram(.start)),
            ("alive", [0] + datagram(.alive)),
            ("stop", [0] + datagram(.stop)),
            ("observer", [0] + datagram(.alive, port: 0, interval: 250)),
            ("alive-fix-checksum", [1] + datagram(.alive, interval: 0xFFFF_FFFF)),
            ("alt-zero-checksum", [2] + datagram(.start, port: 1, interval: 7)),
            ("empty", [0]),
            ("short", [0] + datagram(.alive).prefix(29)),
            ("named", [0] + datagram(.alive, name: "build-box 7")),
            ("exchange", [0] + datagram(.alive, name: "laptop", peers: 3)),
            ("exchange-full", [0] + datagram(.alive, peers: Announcement.maximumExchangedPeers)),
            ("long", [0] + datagram(.alive) + [0]),
        ]
        var badMagic = datagram(.alive)
        badMagic[0] = UInt8(ascii: "X")
        seeds.append(("bad-magic", [1] + badMagic))
        var badChecksum = datagram(.alive)
        badChecksum[29] ^= 0x10
        seeds.append(("bad-checksum", [0] + badChecksum))
        var badKind = datagram(.alive)
        badKind[5] = 9
        seeds.append(("unknown-kind", [1] + badKind))
        var badVersion = datagram(.alive)
        badVersion[4] = 1
        seeds.append(("bad-version", [1] + badVersion))
        var badName = datagram(.alive, name: "abc")
        badName[32] = 0x0A
        seeds.append(("bad-name", [1] + badName))
        var tooMany = datagram(.alive, peers: 1)
        tooMany[31] = 33
        seeds.append(("too-many-peers", [1] + tooMany + [UInt8](repeating: 1, count: 32 * 6)))
        var zeroAddress = datagram(.alive, peers: 1)
        zeroAddress.replaceSubrange(32..<36, with: [0, 0, 0, 0])
        seeds.append(("zero-peer-address", [1] + zeroAddress))
        var zeroInterval = datagram(.alive, interval: 1)
        zeroInterval[29] = 0
        seeds.append(("zero-interval", [1] + zeroInterval))
        func keyed(_ kind: Announcement.Kind) -> [UInt8] {
            let announcement = Announcement(
                kind: kind,
                peerID: PeerID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210),
                transferPort: 47475,
                announceIntervalMilliseconds: 2000
            )
            let seal = AnnouncementSeal(
                timestampMilliseconds: 1_800_000_000_000,
                counter: 7,
                sourceAddress: 0xC000_0207,
                sourcePort: 47474
            )
            return Array(announcement.encoded(key: fuzzKey, seal: seal).readableBytesView)
        }
        seeds.append(("keyed-alive", [0] + keyed(.alive)))
        seeds.append(("keyed-stop", [0] + keyed(.stop)))
        var badTag = keyed(.start)
        badTag[badTag.count - 1] ^= 1
        seeds.append(("keyed-bad-tag", [0] + badTag))
        var badSeal = keyed(.start)
        badSeal[40] ^= 1
        seeds.append(("keyed-bad-seal", [0] + badSeal))
        return seeds
    }
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
