import Foundation
public import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=...` connection URL, with
/// libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`; see `DatabaseTLS`).
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: DatabaseTLS
    /// The directory of the server's Unix-domain socket (`.s.PGSQL.<port>`), when this
    /// process can reach it: pools connect through it instead of TCP. Set for the
    /// embedded cluster only; the URL's text (`atrium db url`) stays its TCP form, which
    /// every other tool understands. Over loopback TCP each statement's round trip also
    /// pays the TCP/IP stack and a softirq on both sides, about a quarter of a short
    /// query's cost (pgbench -S here: 42–54k TCP against 57–71k socket transactions/s).
    var socketDirectory: String?

    public init(username: String, password: String?, host: String, port: Int, database: String, tls: DatabaseTLS = DatabaseTLS(mode: .disable)) {
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.tls = tls
    }

    /// The URL's `sslmode`.
    public var sslMode: SSLMode {
        get { tls.mode }
        set { tls.mode = newValue }
    }

    /// Parses a URL as libpq would, refusing what it would refuse: an unknown `sslmode`,
    /// and certificate files that cannot be read (named now, not at the first connection).
    public init(parsing text: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: text),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let user = components.user, !user.isEmpty
        else {
            throw ConfigurationError("'\(Self.redacted(text))' is not a postgres://user[:password]@host[:port]/database URL")
        }
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        self.port = components.port ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.username : path
        func parameter(_ name: String) -> String? {
            components.queryItems?.first { $0.name == name }?.value.flatMap { $0.isEmpty ? nil : $0 }
        }
        let modeText = parameter("sslmode") ?? SSLMode.prefer.rawValue
        guard let mode = SSLMode(rawValue: modeText) else {
            throw ConfigurationError(
                "sslmode=\(modeText) in '\(Self.redacted(text))' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.tls = DatabaseTLS(
            mode: mode, rootCertificate: parameter("sslrootcert"), clientCertificate: parameter("sslcert"), clientKey: parameter("sslkey"))
        for (name, file) in [("sslrootcert", tls.rootCertificate), ("sslcert", tls.clientCertificate), ("sslkey", tls.clientKey)] {
            guard let file, file != "system" || name != "sslrootcert" else { continue }
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw ConfigurationError("\(name)=\(file) in the database URL names no readable file")
            }
        }
        _ = try tls.configuration()
    }

    /// The URL with its password, for `atrium db url`.
    public var description: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = username
        components.password = password
        components.host = host
        components.port = port
        components.path = "/" + database
        components.queryItems =
            [URLQueryItem(name: "sslmode", value: tls.mode.rawValue)]
            + [("sslrootcert", tls.rootCertificate), ("sslcert", tls.clientCertificate), ("sslkey", tls.clientKey)].compactMap { name, value in
                value.map { URLQueryItem(name: name, value: $0) }
            }
        return components.string ?? "postgres://\(username)@\(host):\(port)/\(database)"
    }

    /// The URL with the password masked, for logs and errors.
    public var redactedDescription: String { Self.redacted(description) }

    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "postgres://***"
    }

    /// The name the server's certificate must carry and SNI sends: the host, unless it is
    /// an IP address (then the certificate is matched against the address, and no SNI).
    var tlsServerName: String? {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let isIPv4 = octets.count == 4 && octets.allSatisfy { UInt8($0) != nil }
        return isIPv4 || host.contains(":") ? nil : host
    }

    public func clientConfiguration(maximumConnections: Int = 20) throws(ConfigurationError) -> PostgresClient.Configuration {
        var configuration =
            if let socketDirectory {
                PostgresClient.Configuration(
                    unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
            } else {
                PostgresClient.Configuration(
                    host: host, port: port, username: username, password: password, database: database, tls: try tls.clientTLS())
            }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// The configuration of one connection (the migrator's, the listener's): over the
    /// socket where there is one, else TCP with this URL's TLS.
    func connectionConfiguration(connectTimeout: Duration) throws(ConfigurationError) -> PostgresConnection.Configuration {
        var configuration =
            if let socketDirectory {
                PostgresConnection.Configuration(
                    unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
            } else {
                PostgresConnection.Configuration(
                    host: host, port: port, username: username, password: password, database: database, tls: try tls.connectionTLS())
            }
        configuration.options.connectTimeout = .nanoseconds(
            connectTimeout.components.seconds * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000)
        return configuration
    }
}

/// A configuration problem the operator must fix; its message is shown as is.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
