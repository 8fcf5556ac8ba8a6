import ArgumentParser
import P2P

/// `--accept` and its limits, for the commands that run a peer for a while (`serve`,
/// `shell`): whether this peer takes deliveries from `p2p send`.
struct AcceptOptions: ParsableArguments {
    @Flag(
        help: ArgumentHelp(
            "Take deliveries ('p2p send') into the downloads folder, from peers that hold the network key.",
            discussion: "Needs --secret, --secret-file or P2P_SECRET."
        )
    )
    var accept = false

    @Option(help: "Most bytes of deliveries taken in this run (suffixes k, M, G; default: no limit).")
    var acceptMaxBytes: ByteCountArgument?

    @Option(help: "Bytes the downloads folder's disk keeps free: a delivery that would leave less is refused.")
    var acceptKeepFree: ByteCountArgument = ByteCountArgument(0)

    /// Refuses `--accept` without a network key: a delivery is taken only from a peer that
    /// proves it holds the key.
    func validate(with common: CommonOptions) throws {
        if self.accept, try common.secretText() == nil {
            throw ValidationError(
                "--accept takes deliveries only from peers that hold the network key: "
                    + "give --secret, --secret-file or P2P_SECRET"
            )
        }
    }

    /// The delivery policy these options describe.
    var policy: DeliveryPolicy {
        DeliveryPolicy(
            accepting: self.accept,
            maximumBytes: self.acceptMaxBytes?.bytes,
            keepFreeBytes: self.acceptKeepFree.bytes
        )
    }
}
