import ArgumentParser
import P2P

/// `p2p key`: print a fresh random network key.
///
/// A passphrase people choose can be guessed offline from one captured discovery datagram;
/// 32 random bytes cannot. The key is printed as `p2pk-` and base64url, to pass as it is to
/// `--secret`, `--secret-file` or `P2P_SECRET` on every peer of the swarm.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Print a fresh random network key for --secret, --secret-file or P2P_SECRET.",
        discussion: """
            Example: p2p key > swarm.key, copy swarm.key to every peer, then run \
            p2p serve --secret-file swarm.key.
            """
    )

    func run() {
        Console.out(NetworkKey.generate())
    }
}
