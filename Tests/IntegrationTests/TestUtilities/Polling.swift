/// Bounded polling of peer lists, and the latencies read from it.
enum Polling {
    /// Asks every shell for its peers every `interval` until `condition` holds for each,
    /// and notes when it first held for each shell (the time its answer was read). A shell
    /// is not asked again once its condition held.
    /// - Parameters:
    ///   - shells: the shells to ask.
    ///   - interval: time between rounds.
    ///   - timeout: how long at most; bounded also by its number of rounds.
    ///   - condition: what a shell's list must satisfy, given the shell and its list.
    /// - Returns: for each shell, the time the condition was first seen to hold, or nil if
    ///   it never did before the timeout.
    static func firstTimes(
        _ shells: [ShellPeer],
        every interval: Duration = .milliseconds(50),
        timeout: Duration,
        until condition: (ShellPeer, [ListedPeer]) -> Bool
    ) async throws -> [ContinuousClock.Instant?] {
        var times = [ContinuousClock.Instant?](repeating: nil, count: shells.count)
        let deadline = ContinuousClock.now + timeout
        let rounds = Int((timeout / interval).rounded(.up)) + 1
        for _ in 0..<rounds {
            let roundStart = ContinuousClock.now
            for (index, shell) in shells.enumerated() where times[index] == nil {
                let (peers, time) = try await shell.peers()
                if condition(shell, peers) { times[index] = time }
            }
            if times.allSatisfy({ $0 != nil }) || ContinuousClock.now >= deadline { break }
            let next = roundStart + interval
            if next > ContinuousClock.now { try await Task.sleep(until: next, clock: .continuous) }
        }
        return times
    }

    /// Polls `check` every `interval` until it is true or the time runs out.
    /// - Returns: whether it became true.
    static func until(
        every interval: Duration = .milliseconds(50),
        timeout: Duration,
        _ check: () async throws -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        let rounds = Int((timeout / interval).rounded(.up)) + 1
        for _ in 0..<rounds {
            if try await check() { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: interval)
        }
        return false
    }

    /// Waits until every shell lists exactly the others (by short id), all of them.
    /// - Parameters:
    ///   - shells: the shells, each expected to list every other one.
    ///   - timeout: how long at most.
    /// - Throws: if they do not all find each other in time, naming who misses whom.
    static func waitForFullMesh(_ shells: [ShellPeer], timeout: Duration) async throws {
        let ids = Set(shells.map(\.shortID))
        _ = try await self.firstTimes(shells, timeout: timeout) { shell, peers in
            Set(peers.map(\.shortID)) == ids.subtracting([shell.shortID])
        }
        var missing: [String] = []
        for shell in shells {
            let listed = Set(try await shell.peers().peers.map(\.shortID))
            let expected = ids.subtracting([shell.shortID])
            if listed != expected {
                missing.append(
                    "\(shell.name) (\(shell.shortID)) lists \(listed.sorted()), expected \(expected.sorted())"
                )
            }
        }
        if !missing.isEmpty {
            throw PeerProcess.Failure(
                description: "peers did not find each other within \(timeout): \(missing.joined(separator: "; "))"
            )
        }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (whole, fraction) = self.components
        return Double(whole) + Double(fraction) / 1e18
    }

    /// Seconds with three decimals, for reports.
    var formatted: String {
        let milliseconds = (self.seconds * 1000).rounded()
        return "\(milliseconds / 1000) s"
    }
}
