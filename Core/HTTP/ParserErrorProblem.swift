import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Gives the 400 that Hummingbird writes for a request the HTTP parser refuses (bad header
/// bytes, two `Content-Length`s, headers past the decoder's limits) a problem document,
/// like every other error of the API, instead of an empty body.
///
/// The HTTP layer writes that answer itself, before any route or middleware runs, as a
/// head with status 400, `Content-Length: 0` and `Connection: close`, then an end; this
/// handler sits after the HTTP codec, recognises exactly that head (an answer of the API
/// always has a body) and sends the problem in its place. The connection still closes.
final class ParserErrorProblemHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let body = ByteBuffer(
        string: #"{"code":"malformed_http","detail":"The request is not well-formed HTTP/1.1 (its request line, a header or its framing); "#
            + #"the connection is closed.","status":400,"title":"Bad Request","type":"https://atrium.dev/problems/malformed_http"}"#)

    private var replacing = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response)
            where response.status == .badRequest && response.headerFields[.contentLength] == "0" && response.headerFields[.connection] == "close":
            replacing = true
            var problem = HTTPResponse(status: .badRequest)
            problem.headerFields[.contentType] = "application/problem+json"
            problem.headerFields[.contentLength] = String(Self.body.readableBytes)
            problem.headerFields[.connection] = "close"
            problem.headerFields[.xContentTypeOptions] = "nosniff"
            context.write(wrapOutboundOut(.head(problem)), promise: promise)
        case .end(let trailers) where replacing:
            replacing = false
            context.write(wrapOutboundOut(.body(Self.body)), promise: nil)
            context.write(wrapOutboundOut(.end(trailers)), promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}
