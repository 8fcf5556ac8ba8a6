import Foundation
import Testing

/// The HTTP gateway of real `p2p serve --http` processes, driven with curl on loopback:
/// files byte for byte with ranges, a file fetched through the swarm while it is sent,
/// the bearer key, the JSON API, the event stream and the metrics.
@Suite("HTTP gateway", .timeLimit(.minutes(3)))
struct GatewayTests {
    static let chunk = 262_144

    /// Starts `p2p serve --http 127.0.0.1:0` and returns it with its gateway's base URL.
    static func launchGateway(
        name: String,
        in swarm: TestSwarm,
        extra: [String] = []
    ) async throws -> (PeerProcess, String) {
        let process = try swarm.launch(["serve", "--http", "127.0.0.1:0"] + extra, name: name)
        let (line, _) = try await process.waitForLine(
            in: .stderr,
            containing: "http gateway listening",
            timeout: .seconds(30)
        )
        let address = try #require(
            line.text.split(separator: " ").first { $0.hasPrefix("http.address=") }?.dropFirst("http.address=".count)
        )
        return (process, "http://\(address)")
    }

    /// Waits until the gateway's peer lists another peer.
    static func waitUntilPeerListed(_ base: String) async throws -> Bool {
        try await Polling.until(every: .milliseconds(100), timeout: .seconds(10)) {
            let peers = try await Curl.request(["\(base)/api/peers"])
            return peers.status == 200 && peers.text.contains("\"address\":\"127.0.0.1:")
        }
    }

    /// The samples of a Prometheus text exposition, by series (`name{labels}`), after
    /// checking its grammar: every sample's metric has a `# TYPE` line before it, names and
    /// label sets are well formed, and every value is a number.
    static func prometheusSamples(_ text: String) throws -> [String: Double] {
        var typed: [String: String] = [:]
        var samples: [String: Double] = [:]
        let name = /[a-zA-Z_:][a-zA-Z0-9_:]*/
        let sample = /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)/
        for line in text.split(separator: "\n") where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                try #require(parts.count == 4, "\(line)")
                try #require(parts[2].wholeMatch(of: name) != nil, "\(line)")
                try #require(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])),
                    "\(line)"
                )
                typed[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let match = try #require(line.wholeMatch(of: sample), "not a sample: \(line)")
            let metric = String(match.1)
            let family = ["_bucket", "_sum", "_count"].reduce(metric) { family, suffix in
                family.hasSuffix(suffix) && typed[String(family.dropLast(suffix.count))] != nil
                    ? String(family.dropLast(suffix.count)) : family
            }
            try #require(typed[family] != nil, "no # TYPE before \(line)")
            let value = try #require(Double(String(match.4)), "not a number: \(line)")
            samples[String(line.split(separator: " ").first!)] = value
        }
        return samples
    }

    /// The required keys of the items of the JSON array a path answers, as
    /// docs/gateway-openapi.json documents it.
    static func requiredKeys(ofListAt path: String) throws -> Set<String> {
        let url = Testbed.repositoryRoot.appendingPathComponent("docs/gateway-openapi.json")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        let get = try #require((paths[path] as? [String: Any])?["get"] as? [String: Any], "\(path) is documented")
        let schema = try #require(
            ((((get["responses"] as? [String: Any])?["200"] as? [String: Any])?["content"] as? [String: Any])?[
                "application/json"
            ] as? [String: Any])?["schema"] as? [String: Any]
        )
        let reference = try #require((schema["items"] as? [String: Any])?["$ref"] as? String)
        let name = try #require(reference.split(separator: "/").last.map(String.init))
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let required = try #require((schemas[name] as? [String: Any])?["required"] as? [String])
        return Set(required)
    }

    @Test("a held file: whole, ranges byte for byte, HEAD, 416 and the file id as entity tag")
    func heldFile() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 3 * Self.chunk + 1234
        let data = try TransferFixtures.share("held.bin", size: size, seed: 7, peer: "gw", in: swarm)
        try Data("spaced".utf8).write(
            to: swarm.workingDirectory(for: "gw").appendingPathComponent("shared/two words.txt")
        )
        let (_, base) = try await Self.launchGateway(name: "gw", in: swarm)

        let whole = try await Curl.request(["\(base)/files/held.bin"])
        #expect(whole.status == 200)
        #expect(whole.body == Data(data))
        #expect(whole.headers["content-length"] == "\(size)")
        #expect(whole.headers["accept-ranges"] == "bytes")
        let tag = try #require(whole.headers["etag"])
        #expect(tag.count == 66, "etag \(tag)")
        let id = tag.dropFirst().dropLast()

        let ranges: [(String, ClosedRange<Int>)] = [
            ("0-99", 0...99),
            ("\(Self.chunk - 10)-\(2 * Self.chunk + 10)", (Self.chunk - 10)...(2 * Self.chunk + 10)),
            ("-100", (size - 100)...(size - 1)),
            ("\(3 * Self.chunk)-", (3 * Self.chunk)...(size - 1)),
            ("5-999999999", 5...(size - 1)),
        ]
        for (header, expected) in ranges {
            let part = try await Curl.request(["--range", header, "\(base)/files/id/\(id)"])
            #expect(part.status == 206, "range \(header)")
            #expect(part.body == Data(data[expected]), "range \(header)")
            #expect(part.headers["content-range"] == "bytes \(expected.lowerBound)-\(expected.upperBound)/\(size)")
            #expect(part.headers["content-length"] == "\(expected.count)")
        }

        let beyond = try await Curl.request(["--range", "\(size)-", "\(base)/files/held.bin"])
        #expect(beyond.status == 416)
        #expect(beyond.headers["content-range"] == "bytes */\(size)")

        let several = try await Curl.request(["--range", "0-1,5-6", "\(base)/files/held.bin"])
        #expect(several.status == 200)
        #expect(several.body.count == size)

        let head = try await Curl.request(["--head", "\(base)/files/held.bin"])
        #expect(head.status == 200)
        #expect(head.headers["content-length"] == "\(size)")
        #expect(head.headers["etag"] == tag)

        let missing = try await Curl.request(["\(base)/files/nothing.bin"])
        #expect(missing.status == 404)

        let cached = try await Curl.request(["-H", "If-None-Match: \(tag)", "\(base)/files/held.bin"])
        #expect(cached.status == 304)
        #expect(cached.body.isEmpty)

        let spaced = try await Curl.request(["\(base)/files/two%20words.txt"])
        #expect(spaced.status == 200)
        #expect(spaced.text == "spaced")
        #expect(spaced.headers["content-type"]?.hasPrefix("text/plain") == true)
    }

    @Test("a file the gateway's peer does not hold is fetched through the swarm as it is sent")
    func fetchedThroughSwarm() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 16 * Self.chunk + 99
        let data = try TransferFixtures.share("far.bin", size: size, seed: 11, peer: "seed", in: swarm)
        // Paced, so that the response is under way long before the download ends.
        let seed = try swarm.launch(["serve", "--upload-rate", "2M"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let (_, base) = try await Self.launchGateway(name: "gw", in: swarm)

        // Asked the moment the gateway listens, before its peer has heard the seeder: the
        // name is looked for as `get` looks, not answered 404 from an empty swarm. HEAD
        // answers from the manifest, and starts no download.
        let head = try await Curl.request(["--head", "\(base)/files/far.bin"])
        #expect(head.status == 200)
        #expect(head.headers["content-length"] == "\(size)")
        #expect(head.headers["etag"]?.count == 66)
        #expect(try await Curl.request(["\(base)/api/transfers"]).text == "[]")

        let range = try await Curl.request(["--range", "1000-2000", "\(base)/files/far.bin"])
        #expect(range.status == 206)
        #expect(range.body == Data(data[1000...2000]))
        // The range came while the download went on: sent as it arrived, not after.
        let during = try await Curl.request(["\(base)/api/transfers"])
        #expect(during.text.contains("\"state\":\"fetching\""), "\(during.text)")

        let whole = try await Curl.request(["\(base)/files/far.bin"])
        #expect(whole.status == 200)
        #expect(whole.headers["content-length"] == "\(size)")
        #expect(TransferFixtures.sha256([UInt8](whole.body)) == TransferFixtures.sha256(data))

        // The download stays with the peer, verified whole, and is served from then on.
        let kept = try await Polling.until(every: .milliseconds(200), timeout: .seconds(20)) {
            TransferFixtures.sha256(of: TransferFixtures.downloaded("far.bin", peer: "gw", in: swarm))
                == TransferFixtures.sha256(data)
        }
        #expect(kept)
        let transfers = try await Curl.request(["\(base)/api/transfers"])
        #expect(transfers.text.contains("\"state\":\"finished\""), "\(transfers.text)")
    }

    @Test("with a network key, requests without it get 401 and requests with it get the file")
    func bearerKey() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let key = "p2pk-gateway-test-key-0123456789"
        let data = try TransferFixtures.share("k.bin", size: 1000, peer: "gw", in: swarm)
        let (_, base) = try await Self.launchGateway(name: "gw", in: swarm, extra: ["--secret", key])

        let bare = try await Curl.request(["\(base)/files/k.bin"])
        #expect(bare.status == 401)
        let wrong = try await Curl.request(["-H", "Authorization: Bearer \(key)x", "\(base)/api/peers"])
        #expect(wrong.status == 401)
        let right = try await Curl.request(["-H", "Authorization: Bearer \(key)", "\(base)/files/k.bin"])
        #expect(right.status == 200)
        #expect(right.body == Data(data))
    }

    @Test("SIGTERM ends a peer with a gateway and an open event stream promptly, exit 0")
    func shutdownWithOpenStream() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let (gateway, base) = try await Self.launchGateway(name: "gw", in: swarm)
        async let streamed = Curl.request(["--no-buffer", "\(base)/api/events"], maximumSeconds: 20)
        try await Task.sleep(for: .milliseconds(500))
        let asked = ContinuousClock.now
        gateway.terminate()
        let status = try await gateway.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "\(gateway.transcript())")
        #expect(ContinuousClock.now - asked < .seconds(5))
        let events = try await streamed
        #expect(events.status == 200)
        #expect(events.headers["content-type"] == "text/event-stream")
    }

    @Test("an address other hosts can reach is refused without a network key, before anything starts")
    func wideAddressNeedsKey() async throws {
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let process = try swarm.launch(["serve", "--http", "0.0.0.0:0"], name: "gw")
        let status = try await process.waitForExit(timeout: .seconds(30))
        try? await process.waitForOutputToEnd(timeout: .seconds(5))
        #expect(status != 0)
        #expect(process.lines(.stderr).contains { $0.text.contains("--secret") }, "\(process.transcript())")
    }

    @Test("the JSON API lists peers and files, starts a download, streams its events, and /metrics counts it")
    func api() async throws {
        try #require(Curl.isAvailable, "curl is not installed")
        let swarm = try TestSwarm()
        defer { swarm.shutdown() }
        let size = 8 * Self.chunk
        let data = try TransferFixtures.share("api.bin", size: size, seed: 5, peer: "seed", in: swarm)
        let seed = try swarm.launch(["serve", "--name", "build-box"], name: "seed")
        _ = try await seed.waitForLine(in: .stderr, containing: "peer ready", timeout: .seconds(30))
        let (_, base) = try await Self.launchGateway(name: "gw", in: swarm)

        #expect(try await Self.waitUntilPeerListed(base))
        let peers = try await Curl.request(["\(base)/api/peers"])
        let peerEntries = try #require(try JSONSerialization.jsonObject(with: peers.body) as? [[String: Any]])
        #expect(peerEntries.map { $0["name"] as? String } == ["build-box"], "\(peers.text)")
        let files = try await Curl.request(["\(base)/api/files"])
        let entries = try #require(try JSONSerialization.jsonObject(with: files.body) as? [[String: Any]])
        let file = try #require(entries.first { $0["name"] as? String == "api.bin" }, "\(files.text)")
        #expect(file["chunkCount"] as? Int == 8)
        #expect(file["chunksHere"] as? Int == 0)
        let holder = try #require((file["holders"] as? [[String: Any]])?.first, "\(files.text)")
        #expect(holder["chunks"] as? Int == 8)
        #expect(holder["name"] as? String == "build-box")

        // The event stream, open while the download runs.
        async let streamed = Curl.request(["--no-buffer", "\(base)/api/events"], maximumSeconds: 6)
        try await Task.sleep(for: .milliseconds(500))
        let started = try await Curl.request([
            "-X", "POST", "-H", "Content-Type: application/json", "--data", "{\"name\":\"api.bin\"}",
            "\(base)/api/transfers",
        ])
        #expect(started.status == 202, "\(started.text)")
        #expect(started.text.contains("\"name\":\"api.bin\""))
        let finished = try await Polling.until(every: .milliseconds(200), timeout: .seconds(30)) {
            try await Curl.request(["\(base)/api/transfers"]).text.contains("\"state\":\"finished\"")
        }
        #expect(finished)
        #expect(
            TransferFixtures.sha256(of: TransferFixtures.downloaded("api.bin", peer: "gw", in: swarm))
                == TransferFixtures.sha256(data)
        )
        let events = try await streamed.text
        #expect(events.contains("event: transfer"), "\(events)")
        #expect(events.contains("\"state\":\"finished\""), "\(events)")

        let metrics = try await Curl.request(["\(base)/metrics"])
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("p2p_downloads_finished_total 1"), "\(metrics.text)")
        #expect(metrics.text.contains("p2p_chunks_verified_total{source=\"download\"} 8"), "\(metrics.text)")
        #expect(metrics.text.contains("p2p_received_bytes_total{peer=\""), "\(metrics.text)")
        #expect(metrics.text.contains("p2p_download_duration_seconds_count 1"), "\(metrics.text)")
        #expect(metrics.text.contains("p2p_peers_known 1"), "\(metrics.text)")
        let samples = try Self.prometheusSamples(metrics.text)
        #expect(samples["p2p_downloads_finished_total"] == 1)
        #expect(samples["p2p_chunks_verified_total{source=\"download\"}"] == 8)
        #expect(
            samples.keys.contains { $0.hasPrefix("p2p_sent_bytes_total") || $0.hasPrefix("p2p_received_bytes_total") }
        )

        // The answers carry what docs/gateway-openapi.json says they require.
        for path in ["/api/peers", "/api/files", "/api/transfers"] {
            let reply = try await Curl.request(["\(base)\(path)"])
            let items = try #require(try JSONSerialization.jsonObject(with: reply.body) as? [[String: Any]])
            #expect(!items.isEmpty, "\(path)")
            let required = try Self.requiredKeys(ofListAt: path)
            for item in items {
                #expect(
                    required.isSubset(of: Set(item.keys)),
                    "\(path): \(item.keys.sorted()) lacks some of \(required)"
                )
            }
        }

        let bogus = try await Curl.request([
            "-X", "DELETE", "\(base)/api/transfers/\(String(repeating: "ab", count: 32))",
        ])
        #expect(bogus.status == 404)
    }
}
