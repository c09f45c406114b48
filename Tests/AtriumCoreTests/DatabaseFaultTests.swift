@testable import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOPosix
import PostgresNIO
import Testing

/// A request whose database connection dies is never answered 500: when nothing of it had
/// reached the connection it runs again on a fresh one (a read, however far it got), and
/// otherwise the client is told 503 with `Retry-After`.
@Suite("A lost database connection")
struct DatabaseFaultTests {
    let pipelined = PipelinedBeginTests()

    func contacts(_ db: TestDatabase) async throws -> Int {
        // The superuser: row-level security would show the owner role no tenant's rows.
        try await withPostgresConnection(db.superuser, logger: TestDatabase.logger) { connection in
            var count = 0
            for try await n in try await connection.query("SELECT count(*)::int FROM sales_contacts", logger: TestDatabase.logger).decode(Int.self) {
                count = n
            }
            return count
        }
    }

    @Test func aRequestWhoseConnectionDiedBeforeItsStatementRunsAgain() async throws {
        let db = try await pipelined.salesDatabase()
        try await pipelined.onSalesLoop(db) { client, token, requests in
            let list = "/v1/tenants/acme/sales/contacts"
            requests.injectFaultIntoNextLease(.beforeNextWrite)
            let read = try await client.send(.get, list, token: token)
            #expect(read.status == .ok)
            #expect(json(read)["data"]?.array?.count == 3)
            #expect(requests.counters.requestRetries == 1)

            requests.injectFaultIntoNextLease(.beforeNextWrite)
            let made = try await client.send(.post, list, token: token, json: #"{"email":"again@example.com"}"#)
            #expect(made.status == .created)
            #expect(requests.counters.requestRetries == 2)
            #expect(try await contacts(db) == 4, "the create ran once")
        }
    }

    @Test func aWriteWhoseConnectionDiedAfterItsStatementIsAnswered503() async throws {
        let db = try await pipelined.salesDatabase()
        try await pipelined.onSalesLoop(db) { client, token, requests in
            let list = "/v1/tenants/acme/sales/contacts"
            requests.injectFaultIntoNextLease(.afterNextWrite)
            let made = try await client.send(.post, list, token: token, json: #"{"email":"maybe@example.com"}"#)
            #expect(made.status == .serviceUnavailable)
            #expect(made.headers[.retryAfter] == "1")
            #expect(json(made)["code"]?.string == "database_unavailable")
            #expect(requests.counters.requestRetries == 0, "a write that may have run is not run again")

            // A read runs again however far it got.
            requests.injectFaultIntoNextLease(.afterNextWrite)
            let read = try await client.send(.get, list, token: token)
            #expect(read.status == .ok)
            #expect(requests.counters.requestRetries == 1)
        }
    }
}
