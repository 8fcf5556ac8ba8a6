import Foundation

/// Runs `curl` against a gateway the test started, on loopback, always with a time limit.
enum Curl {
    /// What one request returned.
    struct Reply: Sendable {
        /// The HTTP status (0 when no response came).
        var status: Int
        /// The response headers, lower-cased names.
        var headers: [String: String]
        /// The body.
        var body: Data

        var text: String { String(decoding: self.body, as: UTF8.self) }
    }

    /// Whether curl is installed; tests that need it skip with a message otherwise.
    static let isAvailable: Bool = ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"].contains {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static let path: String =
        ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        } ?? "curl"

    /// Runs curl with `arguments` (the URL among them) and returns the reply.
    /// - Parameters:
    ///   - arguments: curl's arguments besides output and header handling.
    ///   - maximumSeconds: `--max-time`.
    ///   - namespace: a testbed host's network namespace to run curl in, if any.
    static func request(
        _ arguments: [String],
        maximumSeconds: Int = 60,
        namespace: String? = nil
    ) async throws -> Reply {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("p2p-curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let headersFile = folder.appendingPathComponent("headers")
        let bodyFile = folder.appendingPathComponent("body")
        let process = Process()
        let curl =
            [
                "--silent", "--show-error", "--max-time", "\(maximumSeconds)", "--noproxy", "*",
                "--dump-header", headersFile.path, "--output", bodyFile.path,
            ] + arguments
        if let namespace, let ip = Testbed.ipCommand {
            process.executableURL = ip
            process.arguments = ["netns", "exec", namespace, Self.path] + curl
        } else {
            process.executableURL = URL(fileURLWithPath: Self.path)
            process.arguments = curl
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            process.terminationHandler = { _ in done.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                done.resume()
            }
        }
        let headerText = (try? String(contentsOf: headersFile, encoding: .utf8)) ?? ""
        var status = 0
        var headers: [String: String] = [:]
        for line in headerText.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" }) {
            if line.hasPrefix("HTTP/") {
                // A new response (after a 100 Continue, say): start over.
                status = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                headers = [:]
            } else if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                    .trimmingCharacters(in: .whitespaces)
            }
        }
        let body = (try? Data(contentsOf: bodyFile)) ?? Data()
        return Reply(status: status, headers: headers, body: body)
    }
}
