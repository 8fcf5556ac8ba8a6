import ArgumentParser
import Foundation
import Logging
import Testing

@testable import P2PCLI

/// What the command line makes of its words, checked without starting a process.
@Suite("Command-line parsing")
struct CommandLineParsingTests {
    @Test("on a terminal the interactive and one-shot commands log warnings only; serve and pipes log info")
    func defaultLogLevel() throws {
        let options = try CommonOptions.parse([])
        #expect(options.effectiveLogLevel(serving: false, onTerminal: true) == .warning)
        #expect(options.effectiveLogLevel(serving: true, onTerminal: true) == .info)
        #expect(options.effectiveLogLevel(serving: false, onTerminal: false) == .info)
        let chosen = try CommonOptions.parse(["--log-level", "debug"])
        #expect(chosen.effectiveLogLevel(serving: false, onTerminal: true) == .debug)
    }

    @Test("the shell's download takes a name with spaces, --timeout and --replace")
    func shellDownloadRequest() throws {
        let plain = try DownloadRequest(parsing: " big file.iso ")
        #expect(plain.name == "big file.iso" && plain.timeout == nil && !plain.replace)
        let full = try DownloadRequest(parsing: "big file.iso --timeout 2.5 --replace")
        #expect(full.name == "big file.iso" && full.timeout == .milliseconds(2500) && full.replace)
        #expect(throws: DownloadRequest.Problem.self) { try DownloadRequest(parsing: "x.bin --timeout -3") }
        #expect(throws: DownloadRequest.Problem.self) { try DownloadRequest(parsing: "  ") }
        #expect(throws: DownloadRequest.Problem.self) { try DownloadRequest(parsing: "../etc/passwd") }
    }

    @Test("get --help lists its own options before the common ones")
    func getHelpOrder() throws {
        let help = GetCommand.helpMessage()
        let own = try #require(help.range(of: "--replace"))
        let common = try #require(help.range(of: "--discovery-port"))
        #expect(own.lowerBound < common.lowerBound)
    }
}
