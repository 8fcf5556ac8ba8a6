/// Cores shared by every host, as on a testbed whose peers are processes of one machine.
/// Each piece of work takes the core that frees first, in the order it is asked for: a
/// queue that holds at most one unit per uplink and one read-back per host, so a unit
/// waits about as long as a process does for its turn among the runnable ones.
struct CPUPool {
    /// When each core has done the work it was given.
    private var freeAt: [Double]
    /// CPU-seconds given out so far.
    private(set) var busySeconds = 0.0

    var cores: Int { self.freeAt.count }

    init(cores: Int) {
        precondition(cores >= 1, "a pool needs a core")
        self.freeAt = [Double](repeating: 0, count: cores)
    }

    /// Runs `seconds` of work asked for at `now` on the core that frees first.
    /// - Returns: when the work is done.
    mutating func run(_ seconds: Double, at now: Double) -> Double {
        // A machine's cores are few: a scan costs less than a heap would.
        var earliest = 0
        for core in 1..<self.freeAt.count where self.freeAt[core] < self.freeAt[earliest] { earliest = core }
        let done = max(now, self.freeAt[earliest]) + seconds
        self.freeAt[earliest] = done
        self.busySeconds += seconds
        return done
    }

    /// CPU-seconds spent from time zero to `time`, which is no earlier than any work was
    /// asked for: work that runs past `time` was queued behind work that did, so its core
    /// is busy without a gap from `time` to its end.
    func busySeconds(until time: Double) -> Double {
        self.busySeconds - self.freeAt.reduce(0) { $0 + max(0, $1 - time) }
    }
}
