import CCurl
import Foundation
import NIOCore
import NIOPosix

/// A small HTTP client on libcurl (TLS by OpenSSL) for the server's outbound calls:
/// OIDC discovery, JWKS, token exchange and webhooks. Calls block, so they run on a thread pool.
struct CurlHTTP: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: Data
    }

    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    func get(_ url: URL, headers: [String] = []) async throws -> Response {
        try await Self.pool.runIfActive { try Self.perform(url: url, form: nil, headers: headers) }
    }

    /// POSTs `application/x-www-form-urlencoded` fields.
    func postForm(_ url: URL, fields: [(String, String)], headers: [String] = []) async throws -> Response {
        var components = URLComponents()
        components.queryItems = fields.map { URLQueryItem(name: $0.0, value: $0.1) }
        // URLComponents leaves '+' alone, which form decoding reads as a space.
        let body = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        return try await Self.pool.runIfActive { try Self.perform(url: url, form: body, headers: headers) }
    }

    /// POSTs a body as it is (the caller names its content type in `headers`).
    func post(_ url: URL, body: Data, headers: [String]) async throws -> Response {
        let text = String(decoding: body, as: UTF8.self)
        return try await Self.pool.runIfActive { try Self.perform(url: url, form: text, headers: headers) }
    }

    final class Collected {
        var data = Data()
    }

    private static func perform(url: URL, form: String?, headers: [String]) throws -> Response {
        _ = CurlSMTP.globalInit
        guard let curl = curl_easy_init() else { throw OutboundError("libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers + ["Accept: application/json"] { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }
        let collected = Collected()
        let context = Unmanaged.passRetained(collected)
        defer { context.release() }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            atrium_curl_set_string(curl, CURLOPT_URL, url.absoluteString)
            atrium_curl_set_list(curl, CURLOPT_HTTPHEADER, list)
            atrium_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 10)
            atrium_curl_set_long(curl, CURLOPT_TIMEOUT, 20)
            atrium_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
            atrium_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
            atrium_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
            atrium_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            if let form { atrium_curl_set_string(curl, CURLOPT_COPYPOSTFIELDS, form) }
            atrium_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
            atrium_curl_set_callback(curl, CURLOPT_WRITEFUNCTION) { source, size, count, context in
                guard let source, let context else { return 0 }
                let collected = Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue()
                let length = size * count
                // Answers larger than 1 MiB are not what these endpoints send; refuse them.
                guard collected.data.count + length <= 1 << 20 else { return 0 }
                source.withMemoryRebound(to: UInt8.self, capacity: length) { collected.data.append($0, count: length) }
                return length
            }
            return curl_easy_perform(curl)
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw OutboundError("request to \(url.host() ?? "?") failed: \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)")
        }
        var status = 0
        atrium_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: collected.data)
    }
}

/// A failed outbound call; its message names the host, never a secret.
struct OutboundError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
