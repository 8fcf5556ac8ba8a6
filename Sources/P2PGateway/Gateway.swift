import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import P2P
import ServiceLifecycle
import Synchronization

/// The peer's HTTP gateway (SPEC §11): its files with ranges for any HTTP client, fetched
/// through the swarm when this peer does not hold them; a JSON API with an event stream;
/// and `/metrics` for Prometheus. Runs until graceful shutdown, as a `Service` beside the
/// peer.
public final class Gateway: Service, Sendable {
    private let peer: Peer
    private let address: GatewayAddress
    private let check: BearerCheck
    private let logger: Logger
    private let downloads: GatewayDownloads
    private let metrics: GatewayMetrics
    private let bound = Mutex<SocketAddress?>(nil)

    /// A gateway for a peer.
    /// - Parameters:
    ///   - peer: the peer it shows and serves from (one that stores files; an observer
    ///     serves the API only).
    ///   - address: where to listen.
    ///   - secret: the network key clients must present, if any.
    ///   - logger: where to log.
    /// - Throws: `P2PError` (`invalidArgument`) for an address other hosts can reach
    ///   without a key.
    public init(peer: Peer, address: GatewayAddress, secret: String?, logger: Logger) throws(P2PError) {
        if let refusal = address.refusal(hasNetworkKey: secret != nil) {
            throw P2PError(code: .invalidArgument, refusal)
        }
        self.peer = peer
        self.address = address
        self.check = BearerCheck(secret: secret)
        self.logger = logger
        self.metrics = GatewayMetrics()
        self.downloads = GatewayDownloads(peer: peer, metrics: self.metrics, logger: logger)
    }

    /// HTTP connections open at once at most: past it, new ones wait to be accepted.
    public static let maximumConnections = 64

    /// How long a connection may sit with no request in progress.
    public static let idleTimeout: TimeAmount = .seconds(60)

    /// The address the gateway listens on, once it does.
    public var boundAddress: SocketAddress? { self.bound.withLock { $0 } }

    /// Serves HTTP until graceful shutdown.
    /// - Throws: `P2PError` (`portUnavailable`) when the address cannot be bound.
    public func run() async throws {
        let application = Application(
            router: self.router(),
            // A connection with no request in progress (idle between requests, or slow to
            // send one) is closed after the idle timeout; one being answered, such as an
            // event stream, is not.
            server: .http1(configuration: HTTP1Channel.Configuration(idleTimeout: Self.idleTimeout)),
            configuration: ApplicationConfiguration(
                address: .hostname(self.address.host, port: self.address.port),
                availableConnectionsDelegate: .maximum(Self.maximumConnections, logger: self.logger)
            ),
            onServerRunning: { channel in
                self.bound.withLock { $0 = channel.localAddress }
                self.logger.notice(
                    "http gateway listening",
                    metadata: ["http.address": "\(channel.localAddress.map(Self.describe) ?? "\(self.address)")"]
                )
            },
            logger: self.logger
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.downloads.run() }
            group.addTask {
                do {
                    try await application.run()
                } catch let error as IOError {
                    throw P2PError(code: .portUnavailable, "cannot listen for HTTP on \(self.address): \(error)")
                }
            }
        }
    }

    /// A dashboard asset, which may take nothing from other hosts.
    private static func asset(_ text: String, type: String) -> Response {
        var response = GatewayResponses.text(text, status: .ok, contentType: type)
        response.headers[.contentSecurityPolicy] =
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
        response.headers[.cacheControl] = "no-cache"
        return response
    }

    private static func describe(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "?"
        return host.contains(":") ? "[\(host)]:\(address.port ?? 0)" : "\(host):\(address.port ?? 0)"
    }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(
            middleware: BearerMiddleware(check: self.check, openPaths: ["/", "/dashboard.js", "/dashboard.css"])
        )
        router.get("/") { _, _ in Self.asset(DashboardAssets.html, type: "text/html; charset=utf-8") }
        router.get("/dashboard.js") { _, _ in Self.asset(DashboardAssets.script, type: "text/javascript; charset=utf-8")
        }
        router.get("/dashboard.css") { _, _ in Self.asset(DashboardAssets.css, type: "text/css; charset=utf-8") }
        let api = GatewayAPI(peer: self.peer, downloads: self.downloads)
        if let store = self.peer.store {
            let files = FileResponder(
                files: GatewayFiles(peer: self.peer, store: store, downloads: self.downloads, logger: self.logger)
            )
            let byName: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
                let name = context.parameters.get("name")?.removingPercentEncoding ?? ""
                return try await files.respond(to: request, name: name, idPrefix: nil)
            }
            let byID: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
                let id = context.parameters.get("id") ?? ""
                guard id.count == 64, id.allSatisfy(\.isHexDigit) else {
                    return GatewayResponses.error(
                        P2PError(code: .badName, "/files/id/ takes the 64 hex digits of a file id")
                    )
                }
                return try await files.respond(to: request, name: nil, idPrefix: id)
            }
            router.get("/files/id/{id}", use: byID)
            router.head("/files/id/{id}", use: byID)
            router.get("/files/{name}", use: byName)
            router.head("/files/{name}", use: byName)
        }
        router.get("/api/peers") { _, _ in GatewayResponses.json(api.peers()) }
        router.get("/api/files") { _, _ in GatewayResponses.json(await api.files()) }
        router.get("/api/transfers") { _, _ in GatewayResponses.json(self.downloads.all()) }
        router.post("/api/transfers") { request, _ in
            let body = try await request.body.collect(upTo: 64 << 10)
            guard
                let start = try? JSONDecoder().decode(GatewayAPI.StartRequest.self, from: Data(body.readableBytesView))
            else {
                return GatewayResponses.error(
                    P2PError(code: .invalidArgument, "POST /api/transfers takes JSON: {\"name\": ..., \"id\": ...}")
                )
            }
            return await api.start(start)
        }
        router.delete("/api/transfers/{id}") { _, context in
            guard let id = context.parameters.get("id").flatMap(FileID.init(hex:)) else {
                return GatewayResponses.error(P2PError(code: .badName, "DELETE /api/transfers/ takes a file id"))
            }
            guard self.downloads.cancel(id) else {
                return GatewayResponses.error(P2PError(code: .notFound, "no download of \(id.short) is under way"))
            }
            return GatewayResponses.json(["cancelled": id.description])
        }
        router.get("/api/events") { _, _ in api.events() }
        router.get("/metrics") { _, _ in
            GatewayResponses.text(
                self.metrics.render(peer: self.peer),
                status: .ok,
                contentType: "text/plain; version=0.0.4; charset=utf-8"
            )
        }
        return router
    }
}
