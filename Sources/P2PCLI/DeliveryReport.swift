import Foundation
import P2P
import Synchronization

/// What `p2p send` shows: a live line per target on a terminal (name, share done, rate,
/// state), a line per change of state otherwise, and at the end the receipts.
final class DeliveryPrinter: Sendable {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    /// Lines drawn last time (to move back over them), when they were drawn, and the
    /// states last said (plain output says each change once).
    private struct State {
        var drawnLines = 0
        var lastDrawn = ContinuousClock.now - .seconds(1)
        var said: [PeerID: String] = [:]
    }
    private let state = Mutex(State())

    /// One target's line: name, share done, rate, state.
    static func line(for target: DeliveryTracker.Target, of tracker: DeliveryTracker) -> String {
        let rate = target.bytesPerSecond.isFinite ? Int64(min(max(target.bytesPerSecond, 0), 1e15)) : 0
        return String(format: "%@ %5.1f%%", target.label, tracker.share(of: target) * 100)
            + "  \(Format.bytes(rate))/s  \(DeliveryTracker.describe(target.phase))"
    }

    /// Shows where every target stands.
    func show(_ tracker: DeliveryTracker) {
        let targets = tracker.targets.values.sorted { $0.label < $1.label }
        if self.isTerminal {
            let now = ContinuousClock.now
            let text: String? = self.state.withLock { state in
                guard now - state.lastDrawn >= .milliseconds(250) else { return nil }
                state.lastDrawn = now
                let up = state.drawnLines > 0 ? "\u{1B}[\(state.drawnLines)A" : ""
                state.drawnLines = targets.count
                return up + targets.map { "\r\u{1B}[K" + Self.line(for: $0, of: tracker) + "\n" }.joined()
            }
            if let text { FileHandle.standardError.write(Data(text.utf8)) }
        } else {
            for target in targets {
                let said = DeliveryTracker.describe(target.phase)
                let changed = self.state.withLock { state in
                    guard state.said[target.id] != said else { return false }
                    state.said[target.id] = said
                    return true
                }
                if changed { Console.error("send: \(Self.line(for: target, of: tracker))") }
            }
        }
    }
}

/// A receipt as `send --json` prints it.
struct ReceiptReport: Encodable {
    var target: String
    var targetName: String
    var sender: String
    var kind: String
    var id: String
    var name: String
    var size: UInt64
    var offer: String
    var receipt: String

    init(_ receipt: DeliveryReceipt, label: String) {
        self.target = receipt.offer.target.description
        self.targetName = label
        self.sender = receipt.offer.sender.description
        self.kind =
            switch receipt.offer.item.kind {
            case .file: "file"
            case .collection: "folder"
            }
        self.id = receipt.offer.item.id.description
        self.name = receipt.offer.item.name.value
        self.size = receipt.offer.item.size
        self.offer = receipt.offer.number.map { String(format: "%02x", $0) }.joined()
        self.receipt = receipt.tagHex
    }

    /// Every receipt of a send, target by target.
    static func all(_ tracker: DeliveryTracker) -> [ReceiptReport] {
        tracker.targets.values.sorted { $0.label < $1.label }.flatMap { target in
            target.receipts.map { ReceiptReport($0, label: target.label) }
        }
    }
}
