extension Duration {
    /// The duration in seconds, for rates and clocks that count in seconds.
    var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
