import NIOSSL
import PostgresNIO

/// How a connection to PostgreSQL uses TLS, as libpq's `sslmode` documents it, so that a
/// managed provider's URL means here what it means to `psql`.
///
/// | mode | encrypts | verifies |
/// | --- | --- | --- |
/// | `disable` | never | nothing |
/// | `allow`, `prefer` | when the server offers it, else plain | nothing; the chain when `sslrootcert` is given |
/// | `require` | always | nothing; the chain when `sslrootcert` is given |
/// | `verify-ca` | always | the chain, against `sslrootcert` or the system's roots |
/// | `verify-full` | always | the chain and that the certificate names the host |
///
/// libpq's `allow` tries plain first and TLS second; the driver can only try TLS first,
/// so `allow` behaves as `prefer` (it encrypts more, never less).
public enum SSLMode: String, Sendable, CaseIterable {
    case disable
    case allow
    case prefer
    case require
    case verifyCA = "verify-ca"
    case verifyFull = "verify-full"
}

/// The TLS half of a `DatabaseURL`: its `sslmode` and the files libpq's `sslrootcert`,
/// `sslcert` and `sslkey` name.
public struct DatabaseTLS: Sendable, Equatable {
    public var mode: SSLMode
    /// PEM file of the certificate authorities to trust, or `system` for the system's own
    /// roots (libpq's spelling). Given with `require` or `prefer`, the chain is verified as
    /// with `verify-ca`, as libpq does when its root file exists.
    public var rootCertificate: String?
    /// PEM files of a client certificate and its key, for servers that authenticate
    /// clients by certificate.
    public var clientCertificate: String?
    public var clientKey: String?

    public init(mode: SSLMode, rootCertificate: String? = nil, clientCertificate: String? = nil, clientKey: String? = nil) {
        self.mode = mode
        self.rootCertificate = rootCertificate
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }

    /// Whether a server that refuses TLS may be talked to in plain text.
    var fallsBackToPlain: Bool { mode == .allow || mode == .prefer }

    /// The TLS configuration this mode asks for; nil for `disable`.
    func configuration() throws(ConfigurationError) -> TLSConfiguration? {
        if mode == .disable { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        let verifiesChain = mode == .verifyCA || mode == .verifyFull || rootCertificate != nil
        configuration.certificateVerification =
            switch (verifiesChain, mode) {
            case (false, _): .none
            case (true, .verifyFull): .fullVerification
            case (true, _): .noHostnameVerification
            }
        if let rootCertificate, rootCertificate != "system" {
            configuration.trustRoots = .file(rootCertificate)
        }
        switch (clientCertificate, clientKey) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw ConfigurationError("cannot read the client certificate \(certificate) or its key \(key): \(error)")
            }
        default:
            throw ConfigurationError("sslcert and sslkey go together: give both or neither")
        }
        return configuration
    }

    /// The pool's TLS setting for PostgresNIO's client.
    func clientTLS() throws(ConfigurationError) -> PostgresClient.Configuration.TLS {
        guard let configuration = try configuration() else { return .disable }
        return fallsBackToPlain ? .prefer(configuration) : .require(configuration)
    }

    /// The connection's TLS setting, with its context made once (reading the files and
    /// building the context costs milliseconds: pools make it once, not per connection).
    func connectionTLS() throws(ConfigurationError) -> PostgresConnection.Configuration.TLS {
        guard let configuration = try configuration() else { return .disable }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError("cannot set up TLS for PostgreSQL (sslmode=\(mode.rawValue)\(rootCertificate.map { ", sslrootcert=\($0)" } ?? "")): \(error)")
        }
        return fallsBackToPlain ? .prefer(context) : .require(context)
    }
}
