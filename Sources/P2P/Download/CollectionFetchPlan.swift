/// Which files of a collection to fetch, in which order, and how many at once: a value
/// that takes what happened to each file and says what to do next. The driver
/// (`Downloader.downloadCollection`) does the fetching and the disk work.
///
/// Files are fetched in the canonical order of their paths, at most `maximumAtOnce` at a
/// time, so that a folder of thousands of small files costs a bounded number of
/// connections and buffers. Paths that hold the same file (same id and name) are one
/// fetch: the file is downloaded once and copied to the other paths. Paths already in the
/// tree (verified by the driver) are not fetched again: that is how a fetch resumes. After
/// a failure nothing new starts; the fetches under way finish, then the plan fails (what
/// was placed stays for the next attempt).
package struct CollectionFetchPlan: Sendable {
    /// One file to fetch, and every path it goes to.
    package struct Fetch: Sendable, Equatable {
        /// The file id.
        package var fileID: FileID
        /// The name its manifest must carry: the last component of each of its paths.
        package var name: FileName
        /// Its size.
        package var size: UInt64
        /// Where it goes: downloaded to the first, copied to the rest.
        package var paths: [CollectionPath]
    }

    /// What the driver does next.
    package enum Action: Sendable, Equatable {
        /// Start fetching this file.
        case fetch(Fetch)
        /// Every file is in place: move the tree into place.
        case complete
        /// Give up, with the first failure; nothing is under way any more.
        case fail(P2PError)
    }

    private enum State: Sendable {
        case running
        case failing(P2PError)
        case done
    }

    private var waiting: [Fetch]
    private var nextIndex = 0
    private var underWay: [FileID: Fetch] = [:]
    private var state = State.running
    private let maximumAtOnce: Int

    /// Bytes of the collection in place (already there, or fetched).
    package private(set) var bytesPlaced: UInt64
    /// Bytes of the whole collection.
    package let totalBytes: UInt64
    /// Paths fetched (or copied) by this plan so far.
    package private(set) var pathsPlaced = 0
    /// Paths that were in place before the plan started.
    package let pathsAlreadyPlaced: Int

    /// A plan for what is missing of `manifest`.
    /// - Parameters:
    ///   - manifest: the verified collection manifest.
    ///   - placed: paths already in the tree and verified.
    ///   - maximumAtOnce: the most files fetched at a time (at least one).
    package init(manifest: CollectionManifest, placed: Set<CollectionPath>, maximumAtOnce: Int) {
        self.maximumAtOnce = max(1, maximumAtOnce)
        var groups: [Fetch] = []
        var groupIndex: [String: Int] = [:]
        var placedBytes: UInt64 = 0
        for member in manifest.files {
            if placed.contains(member.path) {
                placedBytes += member.size
                continue
            }
            let key = "\(member.fileID)/\(member.path.name)"
            if let index = groupIndex[key] {
                groups[index].paths.append(member.path)
            } else {
                groupIndex[key] = groups.count
                groups.append(
                    Fetch(fileID: member.fileID, name: member.path.name, size: member.size, paths: [member.path])
                )
            }
        }
        self.waiting = groups
        self.bytesPlaced = placedBytes
        self.totalBytes = manifest.totalSize
        self.pathsAlreadyPlaced = manifest.files.count { placed.contains($0.path) }
    }

    /// The first fetches (or `complete` when nothing is missing).
    package mutating func start() -> [Action] {
        self.refill()
    }

    /// A file was fetched and put at all of its paths.
    /// - Parameter fileID: the file (as in the `fetch` action).
    /// - Returns: what to start or do next.
    package mutating func placed(_ fileID: FileID) -> [Action] {
        guard let fetch = self.underWay.removeValue(forKey: fileID) else { return [] }
        self.bytesPlaced += fetch.size * UInt64(fetch.paths.count)
        self.pathsPlaced += fetch.paths.count
        return self.refill()
    }

    /// A file could not be fetched or placed.
    /// - Parameters:
    ///   - fileID: the file (as in the `fetch` action).
    ///   - error: why.
    /// - Returns: `fail` once nothing is under way any more.
    package mutating func failed(_ fileID: FileID, _ error: P2PError) -> [Action] {
        guard self.underWay.removeValue(forKey: fileID) != nil else { return [] }
        if case .running = self.state { self.state = .failing(error) }
        return self.refill()
    }

    /// Files being fetched now.
    package var fetchesUnderWay: Int { self.underWay.count }

    private mutating func refill() -> [Action] {
        switch self.state {
        case .done:
            return []
        case .failing(let error):
            guard self.underWay.isEmpty else { return [] }
            self.state = .done
            return [.fail(error)]
        case .running:
            var actions: [Action] = []
            while self.underWay.count < self.maximumAtOnce, self.nextIndex < self.waiting.count {
                let fetch = self.waiting[self.nextIndex]
                self.nextIndex += 1
                // Two groups share an id only when a lying manifest names one file two ways:
                // the second waits for the first, whose manifest then refuses one of them.
                guard self.underWay[fetch.fileID] == nil else {
                    self.nextIndex -= 1
                    break
                }
                self.underWay[fetch.fileID] = fetch
                actions.append(.fetch(fetch))
            }
            if self.underWay.isEmpty && self.nextIndex == self.waiting.count {
                self.state = .done
                actions.append(.complete)
            }
            return actions
        }
    }
}
