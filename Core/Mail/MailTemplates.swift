public import Foundation

/// The transactional emails, as Mustache templates rendered with the tenant's name, the
/// recipient and the action link.
public enum MailTemplates {
    public enum Kind: String, Sendable {
        case verifyEmail = "verify_email"
        case resetPassword = "reset_password"
        case invitation
    }

    static let subjects: [Kind: String] = [
        .verifyEmail: "Confirm your email for {{tenant}}",
        .resetPassword: "Reset your {{tenant}} password",
        .invitation: "You are invited to {{tenant}}",
    ]

    static let texts: [Kind: String] = [
        .verifyEmail: """
            Hello,

            please confirm that {{email}} is your address for {{tenant}}:

            {{{link}}}

            Or send this code to auth/verify-email: {{token}}
            The link expires in 24 hours. If you did not sign up, ignore this message.
            """,
        .resetPassword: """
            Hello,

            someone asked to reset the {{tenant}} password of {{email}}. To choose a new one:

            {{{link}}}

            Or send this code to auth/reset-password: {{token}}
            The link expires in 30 minutes. If it was not you, ignore this message; your password is unchanged.
            """,
        .invitation: """
            Hello,

            {{inviter}} invited you to {{tenant}} as {{role}}. To accept:

            {{{link}}}

            Or send this code to auth/accept-invitation: {{token}}
            The invitation expires in 7 days.
            """,
    ]

    static let htmls: [Kind: String] = [
        .verifyEmail: "<p>Please confirm that {{email}} is your address for {{tenant}}.</p><p><a href=\"{{link}}\">Confirm my email</a></p>",
        .resetPassword: "<p>To choose a new {{tenant}} password for {{email}}:</p><p><a href=\"{{link}}\">Reset my password</a></p>",
        .invitation: "<p>{{inviter}} invited you to {{tenant}} as {{role}}.</p><p><a href=\"{{link}}\">Accept the invitation</a></p>",
    ]

    /// Renders one email; `values` fill the placeholders (HTML-escaped in the HTML part only).
    public static func render(_ kind: Kind, to: String, values: [String: String]) throws -> MailMessage {
        try MailTemplate(name: kind.rawValue, subject: subjects[kind] ?? "", text: texts[kind] ?? "", html: htmls[kind])
            .render(to: to, data: values)
    }

    /// The link a message points at: the application's page for `kind`, carrying tenant and token.
    public static func link(_ kind: Kind, appURL: URL, tenant: String, token: String) -> String {
        var components = URLComponents(url: appURL.appending(path: kind.rawValue.replacingOccurrences(of: "_", with: "-")), resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "tenant", value: tenant), URLQueryItem(name: "token", value: token)]
        return components?.string ?? appURL.absoluteString
    }
}
