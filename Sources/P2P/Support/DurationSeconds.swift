import NIOCore

extension Duration {
    /// The duration in seconds, as a floating-point number: for rates and clocks that
    /// count in seconds.
    package var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }

    /// The duration as NIO's `TimeAmount` (whole nanoseconds), for timers and options set
    /// on an event loop or channel.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = self.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
