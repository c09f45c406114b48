import Foundation
import HTTPTypes
import Logging

/// The kernel's own outbound calls (OIDC discovery, JWKS, token exchange, webhooks) in
/// the shapes they need, on ``OutboundHTTP``.
struct CurlHTTP: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: Data
    }

    let client: OutboundHTTP

    init(policy: OutboundAddressPolicy) {
        client = OutboundHTTP(logger: Logger(label: "atrium.outbound"), policy: policy)
    }

    func get(_ url: URL, headers: [String] = []) async throws -> Response {
        try await send(OutboundRequest(.get, url, headers: Self.fields(headers + ["Accept: application/json"])))
    }

    /// POSTs `application/x-www-form-urlencoded` fields.
    func postForm(_ url: URL, fields: [(String, String)], headers: [String] = []) async throws -> Response {
        var components = URLComponents()
        components.queryItems = fields.map { URLQueryItem(name: $0.0, value: $0.1) }
        // URLComponents leaves '+' alone, which form decoding reads as a space.
        let body = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        return try await send(OutboundRequest(
            .post, url, headers: Self.fields(headers + ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"]),
            body: Data(body.utf8)))
    }

    /// POSTs a body as it is (the caller names its content type in `headers`).
    func post(_ url: URL, body: Data, headers: [String]) async throws -> Response {
        try await send(OutboundRequest(.post, url, headers: Self.fields(headers + ["Accept: application/json"]), body: body))
    }

    private func send(_ request: OutboundRequest) async throws -> Response {
        let response = try await client.send(request)
        return Response(status: response.status, body: response.body)
    }

    private static func fields(_ lines: [String]) -> [(name: String, value: String)] {
        lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }
}
