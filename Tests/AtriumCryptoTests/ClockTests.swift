import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// The exchange's clock: an offset of ±30 s is measured and corrected; one that changes
/// after it was measured is measured again on -1021 and the call made once more; beyond
/// 60 s the run ends `clock_skew`.
@Suite struct ClockTests {
    @Test func offsetsAreMeasuredAndCorrectedAndAClockTooFarOffEndsTheRun() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: SyncTests.key, secret: SyncTests.secret, balances: ["BTC": "1"])
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, SyncTests.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(SyncTests.key)","api_secret":"\#(SyncTests.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                // One module for every run: one process, which measures the offset once.
                let module = CryptoModule()
                func sync() async throws -> String? {
                    try await db.withApp { database in
                        try await runJob(
                            CryptoSync.kind, of: module, tenantID: tenant.id, payload: .init(connection: id), database: database,
                            environment: environment, masterKey: db.masterKey)
                    }
                    return json(try await client.send(.get, SyncTests.base + "/connections/\(id)/runs", token: token))["data"]?.array?.first?["outcome"]?.string
                }
                func setClock(_ milliseconds: Int) async throws {
                    #expect(try await exchange.call("PUT", "/_sim/clock", body: Data(#"{"offset_ms": \#(milliseconds)}"#.utf8)).status == 200)
                }
                func timeCalls() async throws -> Int { try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/time" }.count }

                try await setClock(-30_000)
                #expect(try await sync() == "succeeded")
                let measured = try await timeCalls()
                #expect(try await sync() == "succeeded")
                #expect(try await timeCalls() == measured, "measured once while it holds")
                // The exchange's clock moves 60 s ahead of what was measured: refused once
                // (-1021), measured again, and the call succeeds.
                try await setClock(30_000)
                #expect(try await sync() == "succeeded")
                #expect(try await timeCalls() == measured + 1)
                let refused = try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/account" }.count
                #expect(refused >= 4, "the refused call and its retry")
                // Beyond 60 s there is nothing to correct: the run ends clock_skew.
                try await setClock(90_000)
                #expect(try await sync() == "clock_skew")
                let connection = json(try await client.send(.get, SyncTests.base + "/connections/\(id)", token: token))
                #expect(connection["state"]?.string == "active", "a clock is not the key's fault")
            }
        }
    }
}
