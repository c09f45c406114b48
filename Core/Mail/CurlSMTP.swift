import CCurl
import Foundation
import NIOCore
import NIOPosix

/// Sends one message over SMTP with libcurl, on a thread of its own pool (the call
/// blocks), so the event loops and the cooperative pool never wait on a mail server.
struct CurlSMTP: Sendable {
    /// `smtp://host:port` or `smtps://…`; user and password may be in the URL.
    let url: URL

    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    func send(from: String, to recipients: [String], message: Data) async throws {
        let url = self.url
        try await Self.pool.runIfActive {
            try Self.perform(url: url, from: from, to: recipients, message: message)
        }
    }

    /// The message bytes and how far libcurl has read them.
    final class Upload {
        let bytes: [UInt8]
        var offset = 0
        init(_ data: Data) { bytes = [UInt8](data) }
    }

    private static func perform(url: URL, from: String, to recipients: [String], message: Data) throws {
        _ = globalInit
        guard let curl = curl_easy_init() else { throw MailError("libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        var list: UnsafeMutablePointer<curl_slist>?
        for recipient in recipients { list = curl_slist_append(list, "<\(recipient)>") }
        defer { curl_slist_free_all(list) }
        let upload = Upload(message)
        let context = Unmanaged.passRetained(upload)
        defer { context.release() }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            atrium_curl_set_string(curl, CURLOPT_URL, url.absoluteString)
            atrium_curl_set_string(curl, CURLOPT_MAIL_FROM, "<\(from)>")
            atrium_curl_set_list(curl, CURLOPT_MAIL_RCPT, list)
            atrium_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            atrium_curl_set_long(curl, CURLOPT_INFILESIZE_LARGE, message.count)
            atrium_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 10)
            atrium_curl_set_long(curl, CURLOPT_TIMEOUT, 30)
            atrium_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
            atrium_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            atrium_curl_set_pointer(curl, CURLOPT_READDATA, context.toOpaque())
            atrium_curl_set_callback(curl, CURLOPT_READFUNCTION) { target, size, count, context in
                guard let target, let context else { return 0 }
                let upload = Unmanaged<Upload>.fromOpaque(context).takeUnretainedValue()
                let length = min(size * count, upload.bytes.count - upload.offset)
                upload.bytes.withUnsafeBufferPointer { source in
                    guard let base = source.baseAddress else { return }
                    target.withMemoryRebound(to: UInt8.self, capacity: length) { $0.update(from: base + upload.offset, count: length) }
                }
                upload.offset += length
                return length
            }
            return curl_easy_perform(curl)
        }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw MailError("SMTP delivery to \(url.host() ?? "?") failed: \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)")
        }
    }
}

/// A mail delivery failure; the job queue retries it.
struct MailError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
