@testable import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

/// The embedded cluster's pools connect through its Unix socket: a statement's round trip
/// skips the loopback TCP/IP stack on both sides. The URL shown to people stays TCP.
@Suite("Embedded cluster socket")
struct EmbeddedSocketTests {
    @Test func theEmbeddedClustersPoolsConnectThroughItsSocket() async throws {
        let db = try await TestDatabase.create()
        #expect(db.app.socketDirectory != nil)
        let (address, port) = try await db.withApp { database in
            try await database.client.withConnection { connection in
                let row = try await connection.query("SELECT inet_server_addr()::text, inet_server_port()", logger: TestDatabase.logger).first()
                return try row.decode((String?, Int32?).self)
            }
        }
        // A connection over a Unix socket has no server address or port.
        #expect(address == nil)
        #expect(port == nil)
        #expect(db.app.description.hasPrefix("postgres://\(db.app.username):"))
        #expect(db.app.description.contains("@127.0.0.1:\(db.app.port)/"))
    }

    @Test func theSocketGoesOnlyInAPlainShortDirectory() {
        #expect(EmbeddedPostgres.socketDirectoryIsUsable("/tmp/atrium-test.Ab12_c/.atrium/postgres"))
        #expect(!EmbeddedPostgres.socketDirectoryIsUsable("/tmp/it's here/postgres"))
        #expect(!EmbeddedPostgres.socketDirectoryIsUsable("/tmp/" + String(repeating: "a", count: 90)))
        #expect(!EmbeddedPostgres.socketDirectoryIsUsable("relative/postgres"))
    }
}
