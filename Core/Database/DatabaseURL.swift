import Foundation
public import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=...` connection URL.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: String
    /// The directory of the server's Unix-domain socket (`.s.PGSQL.<port>`), when this
    /// process can reach it: pools connect through it instead of TCP. Set for the
    /// embedded cluster only; the URL's text (`atrium db url`) stays its TCP form, which
    /// every other tool understands. Over loopback TCP each statement's round trip also
    /// pays the TCP/IP stack and a softirq on both sides, about a quarter of a short
    /// query's cost (pgbench -S here: 42–54k TCP against 57–71k socket transactions/s).
    var socketDirectory: String?

    public init(username: String, password: String?, host: String, port: Int, database: String, sslMode: String = "disable") {
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.sslMode = sslMode
    }

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
        self.sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
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
        components.queryItems = [URLQueryItem(name: "sslmode", value: sslMode)]
        return components.string ?? "postgres://\(username)@\(host):\(port)/\(database)"
    }

    /// The URL with the password masked, for logs and errors.
    public var redactedDescription: String { Self.redacted(description) }

    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "postgres://***"
    }

    public func clientConfiguration(maximumConnections: Int = 20) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        var configuration =
            if let socketDirectory {
                PostgresClient.Configuration(
                    unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
            } else {
                PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
            }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}

/// A configuration problem the operator must fix; its message is shown as is.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
