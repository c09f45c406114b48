import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST market/ticks`: prices pushed as NDJSON (at most 4 MiB a request).
struct FeedRoutes {
    static let maximumBytes = 4 << 20

    func register(_ routes: ModuleRoutes) {
        routes.streaming(
            .post, "market/ticks", summary: "Push prices as NDJSON lines of {symbol, price, at|date}; each day's last tick is its close",
            // Octet-stream is listed, and read as NDJSON, for client generators with no NDJSON body.
            access: PortfolioAccess.marketWrite, accepts: ["application/x-ndjson", "application/octet-stream"], produces: "application/json"
        ) { request in
            let type = request.request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard type == "application/x-ndjson" || type == "application/octet-stream" else {
                throw AtriumError(
                    status: .unsupportedMediaType, code: "unsupported_media_type", title: "Unsupported media type",
                    detail: "Send the ticks as application/x-ndjson, one JSON object a line.")
            }
            let body: ByteBuffer
            do {
                body = try await request.request.body.collect(upTo: Self.maximumBytes)
            } catch {
                throw AtriumError(
                    status: .contentTooLarge, code: "payload_too_large", title: "Payload too large",
                    detail: "At most \(Self.maximumBytes) bytes of ticks a request; send more requests.")
            }
            let outcome = try await request.transaction { transaction in
                try await PriceFeed.ingest(String(buffer: body), source: "feed", on: transaction)
            }
            let data = try AtriumJSON.encoder.encode(outcome)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}
