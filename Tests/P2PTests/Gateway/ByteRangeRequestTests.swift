import P2PGateway
import Testing

@Suite("Range headers")
struct ByteRangeRequestTests {
    static let tag = "\"abc\""

    @Test(
        "single ranges of a 1000-byte file",
        arguments: [
            ("bytes=0-99", ByteRangeRequest.part(0...99)),
            ("bytes=100-", .part(100...999)),
            ("bytes=-100", .part(900...999)),
            ("bytes=-5000", .part(0...999)),
            ("bytes=990-5000", .part(990...999)),
            ("bytes=999-999", .part(999...999)),
            ("bytes=0-99999999999999999999999", .part(0...999)),
            (" bytes = 5-6 ", .whole),
            ("bytes= 5-6", .part(5...6)),
            ("BYTES=5-6", .part(5...6)),
        ]
    )
    func single(header: String, expected: ByteRangeRequest) {
        #expect(ByteRangeRequest(range: header, entityTag: Self.tag, size: 1000) == expected)
    }

    @Test("ranges past the end are unsatisfiable", arguments: ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
    func unsatisfiable(header: String) {
        #expect(ByteRangeRequest(range: header, entityTag: Self.tag, size: 1000) == .unsatisfiable)
    }

    @Test("any range of an empty file is unsatisfiable", arguments: ["bytes=0-", "bytes=-1", "bytes=0-0"])
    func empty(header: String) {
        #expect(ByteRangeRequest(range: header, entityTag: Self.tag, size: 0) == .unsatisfiable)
    }

    @Test(
        "headers that do not parse, other units and several ranges get the whole file",
        arguments: [
            "bytes=5-4", "bytes=a-b", "bytes=-", "bytes=", "items=0-1", "bytes", "bytes=0-1,5-6", "bytes=1-2,",
            "bytes=+1-2", "bytes=1--2",
        ]
    )
    func whole(header: String) {
        #expect(ByteRangeRequest(range: header, entityTag: Self.tag, size: 1000) == .whole)
    }

    @Test("no header: the whole file")
    func none() {
        #expect(ByteRangeRequest(range: nil, entityTag: Self.tag, size: 1000) == .whole)
    }

    @Test("If-Range: the range only while the entity tag matches")
    func ifRange() {
        #expect(ByteRangeRequest(range: "bytes=0-1", ifRange: Self.tag, entityTag: Self.tag, size: 10) == .part(0...1))
        #expect(ByteRangeRequest(range: "bytes=0-1", ifRange: "\"other\"", entityTag: Self.tag, size: 10) == .whole)
    }
}
