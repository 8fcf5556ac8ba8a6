import P2P
import Testing

@Suite("CollectionFetchPlan")
struct CollectionFetchPlanTests {
    static func id(_ seed: Int) -> FileID { FileID(bytes: [UInt8](repeating: UInt8(seed), count: 32))! }

    /// A collection of `count` files of `size` bytes, `f0000` ... in path order, each a
    /// different file.
    static func collection(count: Int, size: UInt64 = 10) throws -> CollectionManifest {
        try CollectionManifest(
            name: FileName("many"),
            files: try (0..<count).map { index in
                let name = "f" + String(repeating: "0", count: 4 - String(index).count) + String(index)
                var bytes = [UInt8](repeating: 0, count: 32)
                bytes[0] = UInt8(index >> 8)
                bytes[1] = UInt8(index & 0xFF)
                return CollectionManifest.Member(
                    path: try CollectionPath(name),
                    fileID: FileID(bytes: bytes)!,
                    size: size
                )
            },
            emptyFolders: []
        )
    }

    static func fetches(_ actions: [CollectionFetchPlan.Action]) -> [CollectionFetchPlan.Fetch] {
        actions.compactMap { action in
            if case .fetch(let fetch) = action { return fetch }
            return nil
        }
    }

    @Test("1,000 files are fetched in path order, never more than the bound at once")
    func bounded() throws {
        let manifest = try Self.collection(count: 1000)
        var plan = CollectionFetchPlan(manifest: manifest, placed: [], maximumAtOnce: 8)
        var underWay = Self.fetches(plan.start())
        #expect(underWay.count == 8)
        var order: [String] = underWay.map(\.paths[0].value)
        var completed = false
        var steps = 0
        while let next = underWay.first, steps < 2000 {
            steps += 1
            underWay.removeFirst()
            let actions = plan.placed(next.fileID)
            #expect(plan.fetchesUnderWay <= 8)
            let started = Self.fetches(actions)
            order += started.map(\.paths[0].value)
            underWay += started
            if actions.contains(.complete) { completed = true }
        }
        #expect(completed)
        #expect(order == manifest.files.map(\.path.value))
        #expect(plan.bytesPlaced == 10_000 && plan.pathsPlaced == 1000)
    }

    @Test("paths already placed are not fetched again: a resumed fetch asks only for the rest")
    func resumes() throws {
        let manifest = try Self.collection(count: 5)
        let placed = Set(manifest.files.prefix(3).map(\.path))
        var plan = CollectionFetchPlan(manifest: manifest, placed: placed, maximumAtOnce: 8)
        let fetches = Self.fetches(plan.start())
        #expect(fetches.map(\.paths[0].value) == ["f0003", "f0004"])
        #expect(plan.pathsAlreadyPlaced == 3 && plan.bytesPlaced == 30)
        #expect(plan.placed(fetches[0].fileID).isEmpty)
        #expect(plan.placed(fetches[1].fileID) == [.complete])
    }

    @Test("a collection with every file in place, or none at all, is complete at once")
    func nothingToFetch() throws {
        let manifest = try Self.collection(count: 2)
        var done = CollectionFetchPlan(manifest: manifest, placed: Set(manifest.files.map(\.path)), maximumAtOnce: 4)
        #expect(done.start() == [.complete])
        let empty = try CollectionManifest(name: FileName("e"), files: [], emptyFolders: [try CollectionPath("x")])
        var none = CollectionFetchPlan(manifest: empty, placed: [], maximumAtOnce: 4)
        #expect(none.start() == [.complete])
    }

    @Test("one file under two paths is fetched once, for both paths")
    func samefileTwice() throws {
        let member = { (path: String) in
            CollectionManifest.Member(path: try CollectionPath(path), fileID: Self.id(1), size: 4)
        }
        let manifest = try CollectionManifest(
            name: FileName("twice"),
            files: [try member("a/x.txt"), try member("b/x.txt")],
            emptyFolders: []
        )
        var plan = CollectionFetchPlan(manifest: manifest, placed: [], maximumAtOnce: 4)
        let fetches = Self.fetches(plan.start())
        #expect(fetches.count == 1)
        #expect(fetches.first?.paths.map(\.value) == ["a/x.txt", "b/x.txt"])
        #expect(plan.placed(Self.id(1)) == [.complete])
        #expect(plan.bytesPlaced == 8 && plan.pathsPlaced == 2)
    }

    @Test("after a failure nothing new starts; the plan fails once the fetches under way end")
    func failure() throws {
        let manifest = try Self.collection(count: 10)
        var plan = CollectionFetchPlan(manifest: manifest, placed: [], maximumAtOnce: 3)
        let first = Self.fetches(plan.start())
        #expect(first.count == 3)
        let error = P2PError(code: .timedOut, "too slow")
        #expect(plan.failed(first[0].fileID, error).isEmpty)
        #expect(plan.placed(first[1].fileID).isEmpty)
        #expect(plan.failed(first[2].fileID, P2PError(code: .storage, "later")) == [.fail(error)])
        #expect(plan.placed(first[2].fileID).isEmpty)
        #expect(plan.pathsPlaced == 1)
    }

    @Test("a bound below one still fetches one file at a time")
    func atLeastOne() throws {
        var plan = CollectionFetchPlan(manifest: try Self.collection(count: 3), placed: [], maximumAtOnce: 0)
        #expect(Self.fetches(plan.start()).count == 1)
    }
}
