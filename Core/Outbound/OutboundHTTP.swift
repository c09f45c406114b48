import CCurl
public import Foundation
public import Logging
import NIOCore
import NIOPosix
public import HTTPTypes

/// One call to an outside service.
public struct OutboundRequest: Sendable {
    public var method: HTTPRequest.Method
    public var url: URL
    /// Sent as given, in order; a name may repeat.
    public var headers: [(name: String, value: String)]
    public var body: Data?
    /// The whole call, connecting included; a slow service costs the caller at most this.
    public var timeout: Duration
    /// Answers with a larger body fail instead of filling memory.
    public var maxResponseBytes: Int

    public init(
        _ method: HTTPRequest.Method, _ url: URL, headers: [(name: String, value: String)] = [], body: Data? = nil,
        timeout: Duration = .seconds(20), maxResponseBytes: Int = 1 << 20
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// What the service answered. Any status is an answer; only a failed exchange throws.
public struct OutboundResponse: Sendable {
    public var status: Int
    /// Header fields of the final response, names as the server spelled them.
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// Whether the call went over a connection an earlier call had opened.
    public var reusedConnection: Bool = false

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A failed outbound exchange (no connection, timeout, oversized answer). Its message
/// names the host, never the query string or a header, which may carry secrets.
public struct OutboundError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The server's HTTP client for outside services (exchanges, market data, OIDC providers,
/// webhooks), on libcurl with OpenSSL: HTTP and HTTPS only, no redirects followed (a
/// redirect is returned as the answer, so a caller never sends credentials to a host it
/// did not name), no proxy from the environment. Logs name the method, host and path only.
///
/// - Connections are kept per host and reused (`OutboundConnections`): a sync of many
///   pages to one exchange pays its TCP and TLS handshakes once.
/// - Calls block in libcurl, so they run on threads of their own, never on the event
///   loops: `ATRIUM_OUTBOUND_CONCURRENCY` of them (default 16) per process, which bounds
///   the calls in flight; further calls wait for a thread.
/// - A cancelled task's call is aborted within about a second (libcurl's progress
///   callback reads the flag).
/// - The address is checked against `policy` and pinned (``OutboundAddressPolicy``).
public struct OutboundHTTP: Sendable {
    let logger: Logger
    public let policy: OutboundAddressPolicy
    let reusesConnections: Bool

    /// `reusesConnections: false` opens a connection per call: only for measuring what
    /// reuse saves (`atrium bench outbound`).
    public init(logger: Logger, policy: OutboundAddressPolicy = .publicInternet, reusesConnections: Bool = true) {
        self.logger = logger
        self.policy = policy
        self.reusesConnections = reusesConnections
    }

    /// The calls in flight at once, per process (`ATRIUM_OUTBOUND_CONCURRENCY`).
    public static let concurrency: Int = {
        let text = ProcessInfo.processInfo.environment["ATRIUM_OUTBOUND_CONCURRENCY"] ?? ""
        return Int(text).flatMap { (1...256).contains($0) ? $0 : nil } ?? 16
    }()

    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: concurrency)
        pool.start()
        return pool
    }()

    public func send(_ request: OutboundRequest) async throws -> OutboundResponse {
        let started = ContinuousClock.now
        let cancellation = OutboundCancellation()
        do {
            let response = try await withTaskCancellationHandler {
                try Task.checkCancellation()
                return try await Self.pool.runIfActive { [policy, reusesConnections] in
                    try Self.perform(request, policy: policy, reusingConnections: reusesConnections, cancellation: cancellation)
                }
            } onCancel: {
                cancellation.cancel()
            }
            logger.debug("outbound call", metadata: metadata(request, started: started, status: "\(response.status)"))
            return response
        } catch {
            logger.info("outbound call failed", metadata: metadata(request, started: started, status: "failed"))
            throw error
        }
    }

    private func metadata(_ request: OutboundRequest, started: ContinuousClock.Instant, status: String) -> Logger.Metadata {
        let elapsed = (ContinuousClock.now - started).components
        return [
            "http.method": "\(request.method.rawValue)", "server.address": "\(request.url.host() ?? "?")",
            "url.path": "\(request.url.path())", "http.status": "\(status)",
            "duration_ms": "\(elapsed.seconds * 1000 + elapsed.attoseconds / 1_000_000_000_000_000)",
        ]
    }

    final class Collected {
        var body = Data()
        var headers: [(name: String, value: String)] = []
        let limit: Int
        var overflowed = false
        let cancellation: OutboundCancellation
        init(limit: Int, cancellation: OutboundCancellation) {
            self.limit = limit
            self.cancellation = cancellation
        }
    }

    private static func perform(
        _ request: OutboundRequest, policy: OutboundAddressPolicy, reusingConnections: Bool, cancellation: OutboundCancellation
    ) throws -> OutboundResponse {
        _ = CurlSMTP.globalInit
        // Cancelled while it waited for a thread.
        if cancellation.isCancelled { throw CancellationError() }
        let host = request.url.host() ?? "?"
        guard let scheme = request.url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw OutboundError("request to \(host) refused: only http and https are allowed")
        }
        guard let name = request.url.host(percentEncoded: false), !name.isEmpty else { throw OutboundError("request refused: the URL names no host") }
        let port = request.url.port ?? (scheme == "https" ? 443 : 80)
        let address = try OutboundResolver.address(of: name, port: port, policy: policy)
        let key = "\(scheme)://\(name.lowercased()):\(port)"
        guard let curl = reusingConnections ? OutboundConnections.shared.take(for: key) : curl_easy_init() else {
            throw OutboundError("libcurl could not start")
        }
        var reusable = false
        defer {
            if reusingConnections && reusable { OutboundConnections.shared.give(curl, for: key) } else { curl_easy_cleanup(curl) }
        }
        // The connection goes to the address just checked, whatever DNS says by then (an
        // address literal is not looked up at all).
        let resolve = name.contains(":") ? nil : curl_slist_append(nil, "\(name):\(port):\(address.resolveForm)")
        defer { curl_slist_free_all(resolve) }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers {
            // Bytes, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
            guard !header.name.isEmpty, !header.name.utf8.contains(where: { $0 == UInt8(ascii: ":") || $0 < 0x21 || $0 == 0x7F }),
                  !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 })
            else {
                throw OutboundError("request to \(host) refused: header '\(header.name)' is malformed")
            }
            // "Name;" is libcurl's spelling of a header sent with an empty value.
            list = curl_slist_append(list, header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)")
        }
        // libcurl adds "Expect: 100-continue" to large bodies, which costs a round trip.
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }
        let collected = Collected(limit: request.maxResponseBytes, cancellation: cancellation)
        let context = Unmanaged.passRetained(collected)
        defer { context.release() }
        let timeout = request.timeout.components
        let timeoutMilliseconds = max(1, Int(timeout.seconds) * 1000 + Int(timeout.attoseconds / 1_000_000_000_000_000))
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let body = request.body ?? Data()
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            body.withUnsafeBytes { bodyBytes in
                atrium_curl_set_string(curl, CURLOPT_URL, request.url.absoluteString)
                atrium_curl_set_list(curl, CURLOPT_HTTPHEADER, list)
                atrium_curl_set_list(curl, CURLOPT_RESOLVE, resolve)
                atrium_curl_set_string(curl, CURLOPT_PROXY, "")
                atrium_curl_set_long(curl, CURLOPT_NOPROGRESS, 0)
                atrium_curl_set_pointer(curl, CURLOPT_XFERINFODATA, context.toOpaque())
                atrium_curl_set_progress(curl) { context, _, _, _, _ in
                    guard let context else { return 0 }
                    return Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue().cancellation.isCancelled ? 1 : 0
                }
                atrium_curl_set_long(curl, CURLOPT_TIMEOUT_MS, timeoutMilliseconds)
                atrium_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, min(timeoutMilliseconds, 10_000))
                atrium_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
                atrium_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
                atrium_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
                atrium_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, buffer.baseAddress)
                switch request.method {
                case .get: atrium_curl_set_long(curl, CURLOPT_HTTPGET, 1)
                case .head: atrium_curl_set_long(curl, CURLOPT_NOBODY, 1)
                default: atrium_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method.rawValue)
                }
                if request.body != nil {
                    atrium_curl_set_long(curl, CURLOPT_POSTFIELDSIZE, bodyBytes.count)
                    if let bytes = bodyBytes.baseAddress, bodyBytes.count > 0 {
                        atrium_curl_set_pointer(curl, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes))
                    } else {
                        atrium_curl_set_string(curl, CURLOPT_COPYPOSTFIELDS, "")
                    }
                }
                atrium_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
                atrium_curl_set_callback(curl, CURLOPT_WRITEFUNCTION) { source, size, count, context in
                    guard let source, let context else { return 0 }
                    let collected = Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue()
                    let length = size * count
                    guard collected.body.count + length <= collected.limit else {
                        collected.overflowed = true
                        return 0
                    }
                    source.withMemoryRebound(to: UInt8.self, capacity: length) { collected.body.append($0, count: length) }
                    return length
                }
                atrium_curl_set_pointer(curl, CURLOPT_HEADERDATA, context.toOpaque())
                atrium_curl_set_callback(curl, CURLOPT_HEADERFUNCTION) { source, size, count, context in
                    guard let source, let context else { return 0 }
                    let collected = Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue()
                    let length = size * count
                    let line = source.withMemoryRebound(to: UInt8.self, capacity: length) {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    }
                    // A status line starts a new response (after a 100 Continue or a 1xx): keep the last one's fields.
                    if line.hasPrefix("HTTP/") {
                        collected.headers = []
                    } else if let colon = line.firstIndex(of: ":") {
                        let name = String(line[..<colon])
                        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                        collected.headers.append((name: name, value: value))
                    }
                    return length
                }
                return curl_easy_perform(curl)
            }
        }
        guard code == CURLE_OK else {
            if cancellation.isCancelled { throw CancellationError() }
            if collected.overflowed {
                throw OutboundError("answer of \(host) is larger than \(request.maxResponseBytes) bytes")
            }
            if code == CURLE_OPERATION_TIMEDOUT {
                throw OutboundError("request to \(host) timed out after \(timeoutMilliseconds) ms")
            }
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // libcurl's message may quote the URL, query string included: keep only the reason.
            let reason = detail.isEmpty || detail.contains("?") ? String(cString: curl_easy_strerror(code)) : detail
            throw OutboundError("request to \(host) failed: \(reason)")
        }
        var status = 0
        atrium_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        atrium_curl_get_long(curl, CURLINFO_NUM_CONNECTS, &connects)
        reusable = true
        return OutboundResponse(status: status, headers: collected.headers, body: collected.body, reusedConnection: connects == 0)
    }
}
