@testable import AtriumCore
import AtriumTesting
import Foundation
import NIOPosix
import NIOSSL
import PostgresNIO
import Testing

/// `sslmode` means what libpq says it means, and the request path runs pipelined over TLS
/// as over the socket. The cluster `make test` starts serves TLS with a self-signed
/// certificate for `localhost` only (`scripts/cluster-tls.sh`).
@Suite("PostgreSQL over TLS")
struct DatabaseTLSTests {
    // MARK: What a URL says

    @Test func everyLibpqModeParsesAndAnUnknownOneIsRefused() throws {
        for mode in SSLMode.allCases {
            let url = try DatabaseURL(parsing: "postgres://app:secret@db.example.com/atrium?sslmode=\(mode.rawValue)")
            #expect(url.sslMode == mode)
        }
        #expect(try DatabaseURL(parsing: "postgres://app@db.example.com/atrium").sslMode == .prefer, "libpq's default")
        #expect(throws: ConfigurationError.self) { try DatabaseURL(parsing: "postgres://app@db.example.com/atrium?sslmode=verify") }
    }

    @Test func certificateFilesAreCheckedWhenTheURLIsRead() throws {
        #expect(throws: ConfigurationError.self) {
            try DatabaseURL(parsing: "postgres://app@db.example.com/atrium?sslmode=verify-full&sslrootcert=/nonexistent/root.crt")
        }
        let root = try TestDatabase.rootCertificate()
        #expect(throws: ConfigurationError.self, "a certificate without its key") {
            try DatabaseURL(parsing: "postgres://app@db.example.com/atrium?sslmode=require&sslcert=\(root)")
        }
        let url = try DatabaseURL(parsing: "postgres://app@db.example.com/atrium?sslmode=verify-full&sslrootcert=\(root)")
        #expect(url.tls.rootCertificate == root)
        #expect(try DatabaseURL(parsing: url.description) == url, "the URL's text keeps its TLS parameters")
        #expect(try DatabaseURL(parsing: "postgres://app@db.example.com/atrium?sslmode=verify-ca&sslrootcert=system").tls.rootCertificate == "system")
    }

    /// libpq: `require` and `prefer` encrypt without verifying, unless a root certificate
    /// is given (then as `verify-ca`); `verify-full` also checks the name.
    @Test func eachModeVerifiesWhatLibpqVerifies() throws {
        let root = try TestDatabase.rootCertificate()
        func verification(_ mode: SSLMode, root: String? = nil) throws -> CertificateVerification? {
            try DatabaseTLS(mode: mode, rootCertificate: root).configuration()?.certificateVerification
        }
        #expect(try verification(.disable) == nil)
        #expect(try verification(.prefer) == CertificateVerification.none)
        #expect(try verification(.require) == CertificateVerification.none)
        #expect(try verification(.require, root: root) == .noHostnameVerification)
        #expect(try verification(.verifyCA) == .noHostnameVerification)
        #expect(try verification(.verifyFull) == .fullVerification)
        #expect(try DatabaseTLS(mode: .prefer).clientTLS().isPrefer)
        #expect(try !DatabaseTLS(mode: .require).clientTLS().isPrefer)
    }

    // MARK: Against the test cluster

    /// The application role's URL over TCP to `host`, with `query` as its TLS parameters.
    func url(_ db: TestDatabase, host: String = "localhost", _ query: String) throws -> DatabaseURL {
        var url = try DatabaseURL(parsing: "postgres://\(db.app.username)@\(host):\(db.app.port)/\(db.name)?\(query)")
        url.password = db.app.password
        return url
    }

    func encrypted(_ connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: TestDatabase.logger)
        for try await ssl in rows.decode(Bool.self) { return ssl }
        Issue.record("pg_stat_ssl has no row for this backend")
        return false
    }

    @Test func theModesConnectAsLibpqWouldAgainstASelfSignedServer() async throws {
        let db = try await TestDatabase.create(migrate: false)
        let root = try TestDatabase.rootCertificate()
        for (query, host) in [
            ("sslmode=verify-full&sslrootcert=\(root)", "localhost"),
            ("sslmode=verify-ca&sslrootcert=\(root)", "127.0.0.1"),
            ("sslmode=require", "127.0.0.1"),
            ("sslmode=prefer", "127.0.0.1"),
        ] {
            let ssl = try await withPostgresConnection(try url(db, host: host, query), logger: TestDatabase.logger) { try await encrypted($0) }
            #expect(ssl, "\(query) to \(host) is not encrypted")
        }
        let plain = try await withPostgresConnection(try url(db, host: "127.0.0.1", "sslmode=disable"), logger: TestDatabase.logger) {
            try await encrypted($0)
        }
        #expect(!plain)
        // The certificate names localhost, not 127.0.0.1; and the system's roots do not hold it.
        for (query, host) in [("sslmode=verify-full&sslrootcert=\(root)", "127.0.0.1"), ("sslmode=verify-full", "localhost")] {
            await #expect(throws: (any Error).self, "\(query) to \(host) connected") {
                try await withPostgresConnection(try url(db, host: host, query), logger: TestDatabase.logger) { _ in () }
            }
        }
    }

    /// The pool of request connections over `verify-full`: encrypted, and its `BEGIN` and
    /// settings still travel with the statement (one round trip for all three).
    @Test func requestConnectionsPipelineOverTLS() async throws {
        let db = try await TestDatabase.create(migrate: false)
        let tls = try url(db, "sslmode=verify-full&sslrootcert=\(try TestDatabase.rootCertificate())")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let pool = try #require(try RequestConnectionPool(url: tls, connectionsPerLoop: 1, eventLoops: [loop], logger: TestDatabase.logger))
        let running = Task { try await pool.run() }
        defer { running.cancel() }
        try await EventLoopTaskExecutor.run(on: loop) {
            try await pool.withConnection { pooled in
                let connection = pooled.connection
                #expect(try await encrypted(connection))
                func probe() async throws -> String {
                    let rows = try await connection.query("SELECT coalesce(current_setting('atrium.probe', true), '')", logger: TestDatabase.logger)
                    for try await value in rows.decode(String.self) { return value }
                    return ""
                }
                let before = pool.counters.roundTrips
                pooled.beginWithNextStatement()
                #expect(pooled.setLocallyWithBegin([(name: "atrium.probe", value: "over tls")]))
                #expect(try await probe() == "over tls")
                #expect(pool.counters.roundTrips - before == 1, "BEGIN, the setting and the statement in one round trip")
                // Transaction-local and still set: the transaction BEGIN opened is still open.
                #expect(try await probe() == "over tls")
                try await connection.query("COMMIT", logger: TestDatabase.logger)
                #expect(try await probe() == "")
                _ = pooled.withdrawUnsentBegin()
            }
        }
    }
}

extension PostgresClient.Configuration.TLS {
    fileprivate var isPrefer: Bool { String(describing: self).contains("prefer") }
}
