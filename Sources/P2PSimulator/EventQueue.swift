/// Events in virtual time, earliest first; events at the same time in the order they were
/// scheduled, so that a run depends on nothing but its inputs.
struct EventQueue<Event> {
    private struct Entry {
        var time: Double
        var order: UInt64
        var event: Event

        func precedes(_ other: Entry) -> Bool {
            self.time < other.time || (self.time == other.time && self.order < other.order)
        }
    }

    private var heap: [Entry] = []
    private var scheduled: UInt64 = 0

    var isEmpty: Bool { self.heap.isEmpty }
    var count: Int { self.heap.count }
    /// Events scheduled so far.
    var total: UInt64 { self.scheduled }

    mutating func schedule(_ event: Event, at time: Double) {
        self.heap.append(Entry(time: time, order: self.scheduled, event: event))
        self.scheduled += 1
        var child = self.heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.heap[child].precedes(self.heap[parent]) else { break }
            self.heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func next() -> (time: Double, event: Event)? {
        guard !self.heap.isEmpty else { return nil }
        let first = self.heap[0]
        let last = self.heap.removeLast()
        if !self.heap.isEmpty {
            self.heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < self.heap.count && self.heap[left].precedes(self.heap[smallest]) { smallest = left }
                if right < self.heap.count && self.heap[right].precedes(self.heap[smallest]) { smallest = right }
                guard smallest != parent else { break }
                self.heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (first.time, first.event)
    }
}
