import ArgumentParser
import Logging
import P2P
import P2PGateway

/// `--http [ADDRESS:]PORT`, for the commands that run a peer for a while (`serve`, `shell`).
struct GatewayOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve files, a JSON API and /metrics over HTTP (a bare port listens on loopback).",
            discussion: """
                An address other hosts can reach needs the network key (--secret), which \
                HTTP clients then present as 'Authorization: Bearer KEY'.
                """,
            valueName: "[address:]port"
        )
    )
    var http: String?

    /// Checks the address, and that one other hosts can reach comes with a key.
    /// - Parameter common: the common options (for the key).
    func validate(with common: CommonOptions) throws {
        guard let http = self.http else { return }
        let address: GatewayAddress
        do {
            address = try GatewayAddress(parsing: http)
        } catch {
            throw ValidationError(error.message)
        }
        if let refusal = address.refusal(hasNetworkKey: try common.secretText() != nil) {
            throw ValidationError(refusal)
        }
    }

    /// The gateway these options ask for, if any.
    /// - Parameters:
    ///   - peer: the peer it serves.
    ///   - common: the common options (for the key).
    ///   - logger: where it logs.
    /// - Returns: the gateway, or `nil` without `--http`.
    /// - Throws: `ExitCode.failure` after printing the reason.
    func gateway(for peer: Peer, common: CommonOptions, logger: Logger) throws -> Gateway? {
        guard let http = self.http else { return nil }
        do {
            return try Gateway(
                peer: peer,
                address: try GatewayAddress(parsing: http),
                secret: try common.secretText(),
                logger: logger
            )
        } catch {
            Console.error("p2p: \(error)")
            throw ExitCode.failure
        }
    }
}
