import Foundation
import Testing

/// A crowd larger than the relay partner budget (SPEC §12): each downloader works with its
/// partners in the relay overlay and the seeder only, and chunks travel more than one hop
/// to reach everyone. Real `p2p` processes, one per testbed host; needs root and iproute2.
@Suite(
    "Relay overlay across testbed hosts",
    .serialized,
    .timeLimit(.minutes(3)),
    .enabled(
        if: Testbed.isAvailable,
        "needs root and iproute2 to build the namespace testbed (scripts/testbed.sh check)"
    )
)
struct TestbedRelayOverlayTests {
    @Test("six downloaders with two partners each: a 2 × 2 × 2 overlay, every copy verified, relays past one hop")
    func sixWithTwoPartners() async throws {
        try await Testbed.with(hosts: 7, rate: "100mbit") { testbed in
            let swarm = try TestSwarm()
            defer { swarm.shutdown() }
            let key = try TestbedDeliveryTests.keyFile(swarm)
            let chunks = 48
            let image = try TestbedDeliveryTests.fileToSend(
                "image.iso",
                size: chunks << 18,
                seed: 31,
                peer: "h1",
                in: swarm
            )
            let names = (2...7).map { "r\($0)" }
            var receivers: [PeerProcess] = []
            for (index, name) in zip(2...7, names) {
                receivers.append(
                    try await TestbedDeliveryTests.receiver(
                        index,
                        ["--accept", "--name", name, "--secret-file", key, "--relay-partners", "2"],
                        on: testbed,
                        in: swarm
                    )
                )
            }
            // Every receiver hears every other (announcements every 0.5 s) before the offer,
            // so each derives the same overlay from the start.
            try await Task.sleep(for: .seconds(2))
            let delivery = try await TestbedDeliveryTests.send(
                [image.path, "--to", "all", "--timeout", "90", "--json", "--secret-file", key],
                on: testbed,
                in: swarm,
                timeout: .seconds(120)
            )
            #expect(delivery.status == 0, "\(delivery.process.transcript())")
            #expect(delivery.receipts.map(\.targetName).sorted() == names)
            for index in 2...7 {
                #expect(TestbedDeliveryTests.held("image.iso", host: "h\(index)", in: swarm).file == image.sha256)
            }
            var assigned = 0
            var relayed = 0
            for (receiver, name) in zip(receivers, names) {
                let lines = receiver.lines(.stderr).map(\.text)
                let overlay = try #require(lines.last { $0.contains("relay overlay") }, "\(name) logged no overlay")
                // Ranks 6 and 7 of the 2 × 2 × 2 grid are empty: four of the six lose a
                // partner to them.
                #expect(
                    overlay.contains("downloaders=6") && overlay.contains("overlay=2x2x2")
                        && (overlay.contains("partners=3") || overlay.contains("partners=2")),
                    "\(name): \(overlay)"
                )
                let done = try #require(lines.first { $0.contains("download complete") }, "\(name) did not finish")
                assigned += TestbedDeliveryTests.count("chunks.assigned", in: done)
                relayed += TestbedDeliveryTests.count("chunks.relayed", in: done)
            }
            // The sender hands each chunk out once. With one hop a chunk could reach only
            // the three partners of the downloader it was handed to: more relayed arrivals
            // than that means partners forwarded what they got relayed.
            #expect(assigned <= chunks, "assigned \(assigned)")
            #expect(relayed > 3 * chunks, "relayed \(relayed) of \(6 * chunks) arrivals")
        }
    }
}
