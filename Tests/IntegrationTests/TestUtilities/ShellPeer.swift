import Foundation

/// A `p2p shell` process driven through its stdin, as a script would.
struct ShellPeer: Sendable {
    /// The process.
    let process: PeerProcess
    /// The 8 hex digits of its id that the first line shows.
    let shortID: String
    /// Its transfer port, from the first line.
    let transferPort: Int
    /// When the first line was read.
    let bannerTime: ContinuousClock.Instant

    /// The shell's first line: `p2p peer <8 hex> on transfer port <N>; type 'help' for commands`.
    /// (A computed property: `Regex` is not `Sendable`.)
    static var banner: Regex<(Substring, Substring, Substring)> {
        /^p2p peer ([0-9a-f]{8}) on transfer port ([0-9]+); type 'help' for commands$/
    }

    /// Waits for a shell's first line and reads its id and port from it.
    /// - Parameters:
    ///   - process: a `p2p shell` just started.
    ///   - timeout: how long to wait for the line.
    /// - Throws: if the line does not come or does not look as it should.
    init(process: PeerProcess, timeout: Duration) async throws {
        let (line, index) = try await process.waitForLine(in: .stdout, matching: { _ in true }, timeout: timeout)
        guard index == 0, let match = line.text.wholeMatch(of: Self.banner), let port = Int(match.2) else {
            throw PeerProcess.Failure(description: "\(process.name): unexpected first line '\(line.text)'")
        }
        self.process = process
        self.shortID = String(match.1)
        self.transferPort = port
        self.bannerTime = line.time
    }

    /// The process's name.
    var name: String { self.process.name }

    /// Runs `peers --json` in the shell and parses the answer.
    /// - Parameter timeout: how long to wait for the answer.
    /// - Returns: the peers listed and when the answer was read.
    /// - Throws: if no answer comes or it is not the JSON expected.
    func peers(timeout: Duration = .seconds(2)) async throws -> (peers: [ListedPeer], time: ContinuousClock.Instant) {
        let before = self.process.lineCount(.stdout)
        try self.process.send("peers --json")
        let (line, _) = try await self.process.waitForLine(
            in: .stdout,
            from: before,
            matching: { $0.hasPrefix("[") },
            timeout: timeout
        )
        return (try ListedPeer.parseArray(line.text), line.time)
    }

    /// Whether this shell lists a peer with the given short id.
    func lists(_ shortID: String) async throws -> Bool {
        try await self.peers().peers.contains { $0.shortID == shortID }
    }
}

/// One peer as `peers --json` prints it.
struct ListedPeer: Sendable, Hashable, CustomStringConvertible {
    /// The full id, 32 hex digits.
    var id: String
    /// The IPv4 address.
    var address: String
    /// The transfer port.
    var port: Int
    /// The device name it announces, if any.
    var name: String? = nil
    /// How listings show it.
    var label: String? = nil

    /// The first 8 hex digits, as the shell's first line and the logs show.
    var shortID: String { String(self.id.prefix(8)) }

    var description: String { "\(self.shortID)@\(self.address):\(self.port)" }

    /// Parses a JSON array of `{id, address, port, name, label}` with `JSONSerialization`,
    /// strictly: every element must have these keys with these types (`name` may be absent).
    /// - Parameter text: the JSON text.
    /// - Returns: the peers.
    /// - Throws: `PeerProcess.Failure` saying what is wrong.
    static func parseArray(_ text: String) throws -> [ListedPeer] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        guard let array = object as? [Any] else {
            throw PeerProcess.Failure(description: "not a JSON array: \(text)")
        }
        return try array.map { element in
            guard let fields = element as? [String: Any],
                Set(fields.keys).subtracting(["name"]) == ["id", "address", "port", "label"],
                let id = fields["id"] as? String, let address = fields["address"] as? String,
                let port = fields["port"] as? Int, let label = fields["label"] as? String,
                fields["name"] == nil || fields["name"] is String
            else {
                throw PeerProcess.Failure(description: "not a peer object {id, address, port, name, label}: \(element)")
            }
            return ListedPeer(id: id, address: address, port: port, name: fields["name"] as? String, label: label)
        }
    }
}
