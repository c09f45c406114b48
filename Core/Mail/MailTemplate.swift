public import Foundation
import Mustache

/// An email a module sends, as Mustache templates: a subject, a plain-text body and an
/// optional HTML body. Values are HTML-escaped in the HTML body only; the subject and the
/// text body get them as they are. Modules declare theirs as constants next to the code
/// that sends them.
public struct MailTemplate: Sendable {
    public var name: String
    public var subject: String
    public var text: String
    public var html: String?

    /// Parses the templates now, so a broken template fails where it is declared (a
    /// module's conformance test) rather than when the first customer should get the mail.
    public init(name: String, subject: String, text: String, html: String? = nil) throws {
        for (part, template) in [("subject", Self.plain + subject), ("text", Self.plain + text), ("html", html ?? "")] {
            do {
                _ = try MustacheTemplate(string: template)
            } catch {
                throw ConfigurationError("mail template '\(name)': the \(part) is not a valid Mustache template: \(error)")
            }
        }
        self.name = name
        self.subject = subject
        self.text = text
        self.html = html
    }

    /// The message to `recipient`, filled from `data`'s properties (their Swift names).
    public func render(to recipient: String, data: some Encodable) throws -> MailMessage {
        let values = try JSONSerialization.jsonObject(with: JSONEncoder().encode(data), options: [.fragmentsAllowed])
        func fill(_ template: String) throws -> String {
            try MustacheTemplate(string: template).render(values)
        }
        let subject = try fill(Self.plain + subject).replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return MailMessage(to: recipient, subject: subject, text: try fill(Self.plain + text), html: try html.map(fill))
    }

    /// The pragma that stops Mustache from HTML-escaping values in plain text.
    static let plain = "{{% CONTENT_TYPE: TEXT}}"
}

extension TenantTransaction {
    /// Puts a mail in the outbox, committed (or rolled back) with this transaction's other
    /// writes; the job worker delivers it, retrying while the mail server is unreachable.
    /// Returns the outbox job's id.
    @discardableResult
    public func sendMail(_ template: MailTemplate, to recipient: String, data: some Encodable) async throws -> UUID? {
        try PasswordPolicy.validate(email: recipient)
        return try await enqueue("kernel.mail.send", payload: try template.render(to: recipient, data: data))
    }
}
