import Hummingbird

/// Refuses, with 401, every request that does not present the network key when one is
/// required, except for the dashboard's assets, which hold no data (a browser cannot add
/// the header to a page it navigates to; the page's script adds it to its own requests).
struct BearerMiddleware<Context: RequestContext>: RouterMiddleware {
    let check: BearerCheck
    /// Paths served to anyone.
    let openPaths: Set<String>

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        guard self.openPaths.contains(request.uri.path) || self.check.admits(request.headers[.authorization]) else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer realm=\"p2p\""
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(
                status: .unauthorized,
                headers: headers,
                body: ResponseBody(
                    byteBuffer: ByteBuffer(string: "present the network key: Authorization: Bearer KEY\n")
                )
            )
        }
        return try await next(request, context)
    }
}
