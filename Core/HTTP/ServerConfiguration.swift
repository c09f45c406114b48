/// How the HTTP server is set up, from flags and environment.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Largest request body read into memory, in bytes.
    public var maxBodySize: Int
    /// Browser origins allowed by CORS (exact `scheme://host[:port]` strings); empty allows none.
    public var corsOrigins: Set<String>
    /// Proxies whose `X-Forwarded-For` is believed.
    public var trustedProxies: TrustedProxies

    public init(
        host: String = "127.0.0.1", port: Int = 8080, maxBodySize: Int = 1 << 20, corsOrigins: Set<String> = [],
        trustedProxies: TrustedProxies = TrustedProxies([])
    ) {
        self.host = host
        self.port = port
        self.maxBodySize = maxBodySize
        self.corsOrigins = corsOrigins
        self.trustedProxies = trustedProxies
    }
}
