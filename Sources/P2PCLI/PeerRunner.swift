import ArgumentParser
import Logging
import P2P
import ServiceLifecycle
import UnixSignals

/// Starts a peer for a command and reports start-up failures as one clear line.
enum PeerRunner {
    /// Builds and prepares a peer: binds its ports, so a port in use fails here.
    /// - Parameters:
    ///   - options: the common options.
    ///   - observer: whether the peer only observes.
    ///   - serving: whether the command serves in the background (`serve`), which logs at
    ///     info by default even on a terminal.
    ///   - adjust: changes the command makes to the configuration the options describe.
    /// - Returns: the peer and the logger.
    /// - Throws: `ExitCode.failure` after printing the reason.
    static func makePeer(
        _ options: CommonOptions,
        observer: Bool = false,
        serving: Bool = false,
        adjust: (inout PeerConfiguration) -> Void = { _ in }
    ) async throws -> (Peer, Logger) {
        Console.bootstrapLogging(level: options.effectiveLogLevel(serving: serving))
        let logger = Logger(label: "p2p")
        do {
            var configuration = try options.peerConfiguration(observer: observer)
            adjust(&configuration)
            if let weakness = configuration.networkKey?.weakness {
                logger.warning("\(weakness)")
            }
            let peer = try await Peer.start(configuration: configuration, logger: logger)
            return (peer, logger)
        } catch {
            Console.error("p2p: \(error)")
            throw ExitCode.failure
        }
    }

    /// Runs services until SIGINT or SIGTERM, or until one marked as finishing returns.
    /// - Parameters:
    ///   - services: the services, in start order.
    ///   - finishing: services whose return ends the group gracefully.
    ///   - logger: where ServiceLifecycle logs.
    ///   - shutdownSignals: the signals that shut the group down gracefully.
    static func run(
        _ services: [any Service],
        finishing: [any Service] = [],
        shutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        logger: Logger
    ) async throws {
        var serviceLogger = logger
        serviceLogger.logLevel = min(logger.logLevel, .notice)
        let configs =
            services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            + finishing.map {
                ServiceGroupConfiguration.ServiceConfiguration(
                    service: $0,
                    successTerminationBehavior: .gracefullyShutdownGroup
                )
            }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: configs,
                gracefulShutdownSignals: shutdownSignals,
                logger: serviceLogger
            )
        )
        do {
            try await group.run()
        } catch {
            Console.error("p2p: \(error)")
            throw ExitCode.failure
        }
    }
}
