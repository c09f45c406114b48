public import Foundation
public import Logging

/// One email, as the outbox stores it.
public struct MailMessage: Sendable, Codable, Equatable {
    public var to: String
    public var subject: String
    public var text: String
    public var html: String?

    public init(to: String, subject: String, text: String, html: String? = nil) {
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
    }
}

/// Delivers mail: over SMTP (`ATRIUM_SMTP_URL`, through libcurl) or, with no SMTP
/// configured, into `<data>/mail/` as `.eml` files that are also logged, so `make run`
/// works with no mail server.
public struct Mailer: Sendable {
    public enum Transport: Sendable {
        case smtp(URL)
        case directory(URL)
    }

    public let transport: Transport
    public let from: String
    let logger: Logger

    public init(transport: Transport, from: String, logger: Logger) {
        self.transport = transport
        self.from = from
        self.logger = logger
    }

    /// The mailer the environment configures.
    public static func from(environment: [String: String], dataDirectory: URL, logger: Logger) throws -> Mailer {
        let sender = environment["ATRIUM_MAIL_FROM"] ?? "Atrium <no-reply@atrium.localhost>"
        if let text = environment["ATRIUM_SMTP_URL"], !text.isEmpty {
            guard let url = URL(string: text), url.scheme == "smtp" || url.scheme == "smtps" else {
                throw ConfigurationError("ATRIUM_SMTP_URL must be an smtp:// or smtps:// URL")
            }
            return Mailer(transport: .smtp(url), from: sender, logger: logger)
        }
        return Mailer(transport: .directory(dataDirectory.appending(path: "mail")), from: sender, logger: logger)
    }

    public func send(_ message: MailMessage) async throws {
        let bytes = Self.render(message, from: from, date: Date(), id: UUID())
        switch transport {
        case .smtp(let url):
            try await CurlSMTP(url: url).send(from: Self.address(in: from), to: [message.to], message: bytes)
            logger.info("mail sent", metadata: ["mail.to": "\(message.to)", "mail.subject": "\(message.subject)"])
        case .directory(let folder):
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let file = folder.appending(path: "\(Int(Date().timeIntervalSince1970))-\(UUID().uuidString.prefix(8)).eml")
            try bytes.write(to: file)
            logger.notice(
                "mail written (no ATRIUM_SMTP_URL)",
                metadata: ["mail.to": "\(message.to)", "mail.subject": "\(message.subject)", "mail.file": "\(file.path())", "mail.text": "\(message.text)"])
        }
    }

    /// The bare address of `Name <address>`.
    static func address(in mailbox: String) -> String {
        guard let open = mailbox.lastIndex(of: "<"), let close = mailbox.lastIndex(of: ">"), open < close else { return mailbox }
        return String(mailbox[mailbox.index(after: open)..<close])
    }

    /// An RFC 5322 message: UTF-8 text, with an HTML alternative when there is one.
    static func render(_ message: MailMessage, from: String, date: Date, id: UUID) -> Data {
        func header(_ value: String) -> String {
            value.allSatisfy(\.isASCII) ? value : "=?UTF-8?B?\(Data(value.utf8).base64EncodedString())?="
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        var lines = [
            "From: \(from)",
            "To: <\(message.to)>",
            "Subject: \(header(message.subject))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <\(id.uuidString.lowercased())@atrium>",
            "MIME-Version: 1.0",
        ]
        let text = Data(message.text.utf8).base64EncodedString(options: .lineLength76Characters)
        if let html = message.html {
            let boundary = "atrium-\(id.uuidString.lowercased())"
            lines += [
                "Content-Type: multipart/alternative; boundary=\"\(boundary)\"", "",
                "--\(boundary)", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "", text,
                "--\(boundary)", "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: base64", "",
                Data(html.utf8).base64EncodedString(options: .lineLength76Characters),
                "--\(boundary)--",
            ]
        } else {
            lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "", text]
        }
        return Data((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }
}
