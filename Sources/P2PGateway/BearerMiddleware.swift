import Hummingbird

/// Refuses, with 401, every request that does not present the network key when one is
/// required.
struct BearerMiddleware<Context: RequestContext>: RouterMiddleware {
    let check: BearerCheck

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        guard self.check.admits(request.headers[.authorization]) else {
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
