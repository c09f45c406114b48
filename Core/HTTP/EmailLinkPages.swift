import Crypto
import Foundation
import Hummingbird
import NIOCore

/// The pages the kernel's emails link to when `ATRIUM_APP_URL` names no application of
/// the operator's own (its default is this server): `/verify-email`, `/reset-password` and
/// `/invitation`, each a form that sends the mailed token to the tenant's `auth/` API.
///
/// Without them a new deployment's first invitation mail pointed at a 404. The pages are
/// static: the tenant and the token stay in the query string and never reach the HTML, a
/// script reads them, and the only script allowed to run is the one whose hash the
/// `Content-Security-Policy` names. No referrer leaves the page, so the token does not
/// travel on to any link.
struct EmailLinkPages {
    struct Page {
        var path: String
        var title: String
        var endpoint: String
        var fields: String
        var button: String
        var done: String
    }

    static let pages: [Page] = [
        Page(path: "invitation", title: "Accept the invitation", endpoint: "accept-invitation",
             fields: field("display_name", "Your name", type: "text", autocomplete: "name", required: false)
                + field("password", "Choose a password (\(PasswordPolicy.lengths.lowerBound) to \(PasswordPolicy.lengths.upperBound) characters)", type: "password", autocomplete: "new-password"),
             button: "Create my account", done: "Your account is ready. You can sign in with your email and this password."),
        Page(path: "reset-password", title: "Choose a new password", endpoint: "reset-password",
             fields: field("password", "New password (\(PasswordPolicy.lengths.lowerBound) to \(PasswordPolicy.lengths.upperBound) characters)", type: "password", autocomplete: "new-password"),
             button: "Set the password", done: "Your password is changed, and every other session has ended."),
        Page(path: "verify-email", title: "Confirm your email", endpoint: "verify-email",
             fields: "", button: "Confirm my email", done: "Your email address is confirmed."),
    ]

    /// Reads tenant and token from the address, posts the form's fields with the token as
    /// JSON, and shows the API's answer: its `detail` on failure.
    static let script = """
        const q = new URLSearchParams(location.search), f = document.forms[0], out = document.getElementById("out");
        if (!q.get("tenant") || !q.get("token")) { out.textContent = "This link is incomplete: open the whole link from the email."; f.hidden = true; }
        f.addEventListener("submit", async (e) => {
          e.preventDefault();
          const body = { token: q.get("token") };
          for (const [k, v] of new FormData(f)) if (v !== "") body[k] = v;
          f.querySelector("button").disabled = true;
          try {
            const r = await fetch("/v1/tenants/" + encodeURIComponent(q.get("tenant")) + "/auth/" + f.dataset.endpoint,
              { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
            if (r.ok) { out.textContent = f.dataset.done; f.hidden = true; return; }
            const p = await r.json().catch(() => ({}));
            out.textContent = p.detail || p.title || ("The server answered " + r.status + ".");
          } catch { out.textContent = "The server could not be reached."; }
          f.querySelector("button").disabled = false;
        });
        """

    static func field(_ name: String, _ label: String, type: String, autocomplete: String, required: Bool = true) -> String {
        "<label>\(label)<br><input name=\"\(name)\" type=\"\(type)\" autocomplete=\"\(autocomplete)\"\(required ? " required" : "")></label><br>"
    }

    static func html(_ page: Page) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
        <title>\(page.title)</title></head>
        <body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; line-height: 1.5">
        <h1>\(page.title)</h1>
        <form data-endpoint="\(page.endpoint)" data-done="\(page.done)">\(page.fields)<button type="submit">\(page.button)</button></form>
        <p id="out" role="status"></p>
        <script>\(script)</script>
        </body></html>
        """
    }

    /// The policy that lets this page's one script run and nothing else load.
    static var contentSecurityPolicy: String {
        let hash = Data(SHA256.hash(data: Data(script.utf8))).base64EncodedString()
        return "default-src 'none'; script-src 'sha256-\(hash)'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; "
            + "base-uri 'none'; frame-ancestors 'none'"
    }

    func register(on router: Router<AtriumRequestContext>) {
        let policy = Self.contentSecurityPolicy
        for page in Self.pages {
            let body = ByteBuffer(string: Self.html(page))
            router.get(RouterPath(page.path)) { _, _ in
                Response(
                    status: .ok,
                    headers: [
                        .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: policy, .referrerPolicy: "no-referrer", .cacheControl: "no-store",
                    ],
                    body: .init(byteBuffer: body))
            }
        }
    }
}
