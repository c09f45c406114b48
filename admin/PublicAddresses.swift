import AtriumCore
import Foundation

/// The addresses links point at, from the environment, shared by `serve` and `worker`
/// (a reminder mail sent by a worker links to the same server as one sent by a request).
enum PublicAddresses {
    /// `ATRIUM_PUBLIC_URL`: where this server is reached from outside (OIDC callbacks,
    /// signed links). Defaults to the address it listens on.
    static func publicURL(_ environment: [String: String], host: String? = nil, port: Int? = nil) throws -> URL {
        let host = host ?? environment["ATRIUM_HOST"] ?? "127.0.0.1"
        let port = port ?? environment["ATRIUM_PORT"].flatMap(Int.init) ?? 8080
        return try url(environment, "ATRIUM_PUBLIC_URL") ?? URL(string: "http://\(host):\(port)") ?? Identity.defaultAppURL
    }

    /// `ATRIUM_APP_URL`: the web application's address, for the links of account emails.
    static func appURL(_ environment: [String: String]) throws -> URL {
        try url(environment, "ATRIUM_APP_URL") ?? Identity.defaultAppURL
    }

    private static func url(_ environment: [String: String], _ name: String) throws -> URL? {
        try environment[name].map { text in
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
                throw ValidationFailure("\(name) must be an http(s) URL")
            }
            return url
        }
    }
}
