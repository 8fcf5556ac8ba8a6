import NIOCore

/// Answers a connect-back request (`p2p doctor`'s question "can peers reach my transfer
/// port?"): opens a transfer connection to the asker's own address, at the port it names,
/// with this peer's settings (so the handshake runs, with a key), and asks for an
/// inventory. Only the address the request came from is ever tried, so a peer cannot be
/// made to connect anywhere but back to the asker.
public struct ConnectBackProbe: Sendable {
    let settings: TransferSettings
    /// How long connecting, and then the answer, may take.
    let timeout: Duration

    /// - Parameters:
    ///   - settings: how to connect (the key, the frame limit, the event loops).
    ///   - timeout: how long connecting, and then the answer, may each take.
    public init(settings: TransferSettings, timeout: Duration = .seconds(3)) {
        self.settings = settings
        self.timeout = timeout
    }

    /// Connects back to `address` and asks for an inventory.
    /// - Returns: whether it was answered, and what happened, in words.
    func probe(_ address: SocketAddress) async -> (reached: Bool, message: String) {
        do {
            let entries = try await TransferClient.connect(
                to: address,
                settings: self.settings,
                connectTimeout: self.timeout.timeAmount,
                answerTimeout: self.timeout
            ) { session in
                let entries = try await session.inventory()
                session.finish()
                return entries
            }
            return (true, "answered with an inventory of \(entries.count) files")
        } catch {
            return (false, "\(error)")
        }
    }
}
