import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A minimal HTTP client for talking to a real `atrium serve` over a socket.
enum HTTP {
    struct Response {
        var status: Int
        var contentType: String?
        var body: Data
    }

    static func get(_ url: String) async throws -> Response {
        guard let url = URL(string: url) else { throw URLError(.badURL) }
        let (data, response) = try await URLSession.shared.data(from: url)
        let http = response as? HTTPURLResponse
        return Response(status: http?.statusCode ?? 0, contentType: http?.value(forHTTPHeaderField: "Content-Type"), body: data)
    }
}
