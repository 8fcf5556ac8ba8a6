import Foundation

/// Finds the built `p2p` executable that the integration tests start.
///
/// `swift build` puts it in the same products folder as the test bundle, so it is found by
/// walking up from the test runner's own path. `P2P_BINARY` in the environment overrides
/// the search, for running the suite against another build.
enum P2PBinary {
    /// The executable's name.
    static let name = "p2p"

    /// Why the executable cannot be used.
    struct NotFound: Error, CustomStringConvertible {
        var description: String
    }

    /// The executable, found once per test run.
    /// - Throws: `NotFound` saying where it looked and how to fix it.
    static func url() throws -> URL {
        try self.located.get()
    }

    private static let located: Result<URL, NotFound> = Result { try P2PBinary.locate() }.mapError {
        $0 as? NotFound ?? NotFound(description: "\($0)")
    }

    private static func locate() throws(NotFound) -> URL {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["P2P_BINARY"], !override.isEmpty {
            guard fileManager.isExecutableFile(atPath: override) else {
                throw NotFound(description: "P2P_BINARY=\(override) is not an executable file")
            }
            return URL(fileURLWithPath: override)
        }
        var starts: [URL] = []
        if let argument = CommandLine.arguments.first, !argument.isEmpty {
            let url = URL(fileURLWithPath: argument, relativeTo: URL(fileURLWithPath: fileManager.currentDirectoryPath))
            starts.append(url.standardizedFileURL.resolvingSymlinksInPath())
        }
        if let executable = Bundle.main.executableURL {
            starts.append(executable.standardizedFileURL.resolvingSymlinksInPath())
        }
        starts.append(Bundle.main.bundleURL.standardizedFileURL.resolvingSymlinksInPath())
        var searched: [String] = []
        for start in starts {
            // The runner sits at most a few levels below the products folder (an .xctest
            // bundle on macOS nests Contents/MacOS): a bounded walk up is enough.
            var folder = start.deletingLastPathComponent()
            for _ in 0..<6 {
                let candidate = folder.appendingPathComponent(Self.name)
                var isDirectory: ObjCBool = false
                if fileManager.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                    fileManager.isExecutableFile(atPath: candidate.path)
                {
                    return candidate
                }
                if !searched.contains(folder.path) { searched.append(folder.path) }
                if folder.path == "/" { break }
                folder = folder.deletingLastPathComponent()
            }
        }
        throw NotFound(
            description: """
                cannot find the '\(Self.name)' executable next to the test runner (looked in \
                \(searched.joined(separator: ", "))); run 'swift build' first, or set P2P_BINARY to its path
                """
        )
    }
}
