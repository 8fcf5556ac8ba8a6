// Fuzzes `FileName(_:)`, the check every name from the network passes before it touches
// the disk.
//
// Input: [mode] [name bytes ...]
//   mode bit 0 == 0: the bytes must be valid UTF-8 (as the inventory and manifest readers
//                    require); invalid input is skipped
//   mode bit 0 == 1: the bytes are decoded with repair (invalid sequences become U+FFFD)
//
// Invariants: `FileName(_:)` accepts exactly when `problem(with:)` finds nothing, keeps the
// name unchanged, and an accepted name is safe as one path component whatever its
// Unicode: 1 to 255 bytes of UTF-8, no '/', '\', NUL or other C0/C1 control or DEL, not
// "." or "..", no ".." anywhere in its bytes, no invisible formatting character (Unicode
// category Cf: bidirectional overrides, zero-width spaces) or line separator, no leading
// '-' or '.', no ".partial" ending (the documented rule).
import FuzzSupport
import P2P

func check(_ input: [UInt8]) {
    guard let mode = input.first else { return }
    let bytes = Array(input.dropFirst())
    let text: String
    if mode & 1 == 0 {
        guard let valid = String(validating: bytes, as: UTF8.self) else { return }
        text = valid
    } else {
        text = String(decoding: bytes, as: UTF8.self)
    }

    let problem = FileName.problem(with: text)
    let name: FileName
    do {
        name = try FileName(text)
    } catch {
        invariant(problem != nil, "refused a name problem(with:) accepts: \(error)")
        invariant(error.code == .badName, "refused with \(error.code)")
        return
    }
    invariant(problem == nil, "accepted a name problem(with:) refuses: \(problem!)")

    let utf8 = Array(name.value.utf8)
    invariant(utf8 == Array(text.utf8), "the name was changed")
    invariant(!utf8.isEmpty && utf8.count <= FileName.maximumLength, "accepted \(utf8.count) bytes")
    invariant(utf8 != [0x2E] && utf8 != [0x2E, 0x2E], "accepted '.' or '..'")
    for byte in utf8 {
        invariant(byte != UInt8(ascii: "/") && byte != UInt8(ascii: "\\"), "accepted a path separator")
        invariant(byte >= 0x20 && byte != 0x7F, "accepted a control byte 0x\(String(byte, radix: 16))")
    }
    for scalar in name.value.unicodeScalars {
        invariant(!(0x80...0x9F).contains(scalar.value), "accepted a C1 control U+\(String(scalar.value, radix: 16))")
        let category = scalar.properties.generalCategory
        invariant(
            category != .format && category != .lineSeparator && category != .paragraphSeparator,
            "accepted an invisible character U+\(String(scalar.value, radix: 16))"
        )
    }
    invariant(utf8[0] != UInt8(ascii: "-") && utf8[0] != UInt8(ascii: "."), "accepted a leading '-' or '.'")
    invariant(!name.value.hasSuffix(".partial"), "accepted a '.partial' ending")
    let hasDotDot = zip(utf8, utf8.dropFirst()).contains { $0 == 0x2E && $1 == 0x2E }
    invariant(!hasDotDot, "accepted a name with '..' in its bytes: \(utf8)")
}

/// The seed corpus (`scripts/fuzz.sh --write-seeds`).
func seeds() -> [(name: String, bytes: [UInt8])] {
    do {
        func seed(_ name: String, _ text: String, mode: UInt8 = 0) -> (name: String, bytes: [UInt8]) {
            (name, [mode] + Array(text.utf8))
        }
        return [
            seed("plain", "report.pdf"),
            seed("spaces", "my holiday photos.tar.gz"),
            seed("unicode", "ünïcødé 名前 🎉.txt"),
            seed("combining", "e\u{301}te\u{301}.txt"),
            seed("dot", "."),
            seed("dotdot", ".."),
            seed("dotdot-inside", "a..b"),
            seed("hidden", ".profile"),
            seed("dash", "-rf"),
            seed("partial", "a.partial"),
            seed("rtl-override", "exe\u{202E}gnp.exe"),
            seed("zero-width", "a\u{200B}b"),
            seed("slash", "a/b"),
            seed("backslash", "a\\b"),
            seed("nul", "a\u{0}b"),
            seed("newline", "a\nb"),
            seed("del", "a\u{7F}b"),
            seed("c1", "a\u{85}b"),
            seed("long", String(repeating: "x", count: 255)),
            seed("too-long", String(repeating: "é", count: 128)),
            ("invalid-utf8", [1, 0x61, 0xC3, 0x28, 0xFF]),
            ("empty", [0]),
        ]
    }
}

runFuzzer(seeds: seeds) { data, size in
    check(inputBytes(data, size))
    return 0
}
