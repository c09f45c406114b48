import AtriumCore
import AtriumCrypto
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// Connecting exchange accounts against the Binance simulator: the exchange is asked
/// what a key may do before anything is written, secrets never come back, and another
/// owner's connection is answered like a missing one.
@Suite struct ConnectionTests {
    static let base = "/v1/tenants/coin/crypto"
    static let key = String(repeating: "K", count: 60) + "a1B2"
    static let secret = String(repeating: "s", count: 64)

    func withTeam(_ body: @escaping @Sendable (ExchangeSimulator, any TestClientProtocol, TestDatabase, (ann: String, bob: String, admin: String)) async throws -> Void)
        async throws
    {
        try await ExchangeSimulator.with { simulator in
            let db = try await TestDatabase.create(modules: [CryptoModule()])
            let tenant = try await db.createTenant("coin", modules: ["crypto"])
            _ = try await db.createUser("ann@coin.test", password: "correct horse battery", roles: ["member"], in: tenant)
            _ = try await db.createUser("bob@coin.test", password: "correct horse battery", roles: ["member"], in: tenant)
            _ = try await db.createUser("ada@coin.test", password: "correct horse battery", roles: ["admin"], in: tenant)
            let environment = ["ATRIUM_CRYPTO_BINANCE_URL": simulator.url, "ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"]
            try await withTestApplication(db, modules: [CryptoModule()], environment: environment) { client, _ in
                let tokens = (
                    ann: try await client.login("coin", "ann@coin.test", "correct horse battery").access,
                    bob: try await client.login("coin", "bob@coin.test", "correct horse battery").access,
                    admin: try await client.login("coin", "ada@coin.test", "correct horse battery").access)
                try await body(simulator, client, db, tokens)
            }
        }
    }

    static func body(key: String = key, secret: String = secret, label: String = "Main") -> String {
        #"{"exchange":"binance","label":"\#(label)","api_key":"\#(key)","api_secret":"\#(secret)","markets":["BTCUSDT"]}"#
    }

    @Test func aKeyTheExchangeAcceptsIsConnectedWithoutItsSecrets() async throws {
        try await withTeam { simulator, client, db, tokens in
            try await simulator.account(key: Self.key, secret: Self.secret)
            let created = try await client.send(.post, Self.base + "/connections", token: tokens.ann, json: Self.body())
            #expect(created.status == .created, "\(String(buffer: created.body))")
            let text = String(buffer: created.body)
            #expect(!text.contains(Self.key) && !text.contains(Self.secret) && !text.contains("api_secret"))
            let connection = json(created)
            #expect(connection["key_last4"]?.string == "a1B2")
            #expect(connection["key_fingerprint"]?.string?.count == 64)
            #expect(connection["state"]?.string == "active")
            #expect(connection["permissions"]?["withdrawals"] == .bool(false))
            let id = try #require(connection["id"]?.string)

            // The exchange was asked with a signed request carrying the key.
            let asked = try await simulator.requests().filter { ($0["path"] as? String) == "/sapi/v1/account/apiRestrictions" }
            #expect(asked.count == 1)
            #expect((asked.first?["query"] as? String)?.contains("signature=") == true)

            // Sealed at rest: neither the key nor the secret is in any column as text.
            let stored = try await db.withOwner { connection in
                try await connection.query(
                    "SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = 'coin'), false), set_config('app.owner_scope', 'any', false)",
                    logger: TestDatabase.logger)
                return try await connection.query("SELECT row_to_json(c)::text FROM crypto_connections c", logger: TestDatabase.logger).collect()
                    .map { try $0.decode(String.self) }.joined()
            }
            #expect(!stored.isEmpty && !stored.contains(Self.key) && !stored.contains(Self.secret))

            // Listed and read by its owner and an admin; another member's is a missing one.
            let list = json(try await client.send(.get, Self.base + "/connections", token: tokens.ann))
            #expect(list["data"]?.array?.count == 1)
            #expect(try await client.send(.get, Self.base + "/connections/\(id)", token: tokens.bob).status == .notFound)
            #expect(try await client.send(.get, Self.base + "/connections/\(id)", token: tokens.admin).status == .ok)
            #expect(try await client.send(.delete, Self.base + "/connections/\(id)", token: tokens.bob).status == .notFound)

            // The same key twice is a conflict, and the exchange is asked again before it.
            let again = try await client.send(.post, Self.base + "/connections", token: tokens.bob, json: Self.body(label: "Again"))
            #expect(again.status == .conflict)
            #expect(json(again)["code"]?.string == "connection_exists")

            #expect(try await client.send(.delete, Self.base + "/connections/\(id)", token: tokens.ann).status == .noContent)
            #expect(try await client.send(.get, Self.base + "/connections/\(id)", token: tokens.ann).status == .notFound)
        }
    }

    @Test func keysTheExchangeRefusesOrThatMayWithdrawAreNotConnected() async throws {
        try await withTeam { simulator, client, _, tokens in
            // Unknown to the exchange.
            let unknown = try await client.send(.post, Self.base + "/connections", token: tokens.ann, json: Self.body())
            #expect(unknown.status == .unprocessableContent)
            #expect(json(unknown)["code"]?.string == "exchange_rejected_credentials")
            #expect(json(unknown)["exchange_code"] == -2015)

            // The right key with the wrong secret: the signature does not verify.
            try await simulator.account(key: Self.key, secret: Self.secret)
            let wrong = try await client.send(.post, Self.base + "/connections", token: tokens.ann, json: Self.body(secret: String(repeating: "t", count: 64)))
            #expect(json(wrong)["exchange_code"] == -1022)

            // A key that may withdraw.
            let withdrawing = String(repeating: "W", count: 64)
            try await simulator.account(key: withdrawing, secret: Self.secret, permissions: ["reading", "spot", "withdrawals"])
            let refused = try await client.send(.post, Self.base + "/connections", token: tokens.ann, json: Self.body(key: withdrawing))
            #expect(refused.status == .unprocessableContent)
            #expect(json(refused)["code"]?.string == "key_permits_withdrawals")

            // A revoked key.
            try await simulator.revoke(key: Self.key)
            let revoked = try await client.send(.post, Self.base + "/connections", token: tokens.ann, json: Self.body())
            #expect(json(revoked)["code"]?.string == "exchange_rejected_credentials")

            // A malformed body is refused before the exchange is asked.
            let before = try await simulator.requests().count
            let malformed = try await client.send(
                .post, Self.base + "/connections", token: tokens.ann, json: #"{"exchange":"kraken","label":"","api_key":"short","api_secret":"x","markets":["btc"]}"#)
            #expect(malformed.status == .unprocessableContent)
            #expect(Set(json(malformed)["errors"]?.array?.compactMap { $0["field"]?.string } ?? []) == ["exchange", "label", "api_key", "api_secret", "markets"])
            #expect(try await simulator.requests().count == before)

            let list = json(try await client.send(.get, Self.base + "/connections", token: tokens.ann))
            #expect(list["data"]?.array?.isEmpty == true)
        }
    }

    @Test func anExchangeThatCannotAnswerIsUnavailableAndNothingIsWritten() async throws {
        let db = try await TestDatabase.create(modules: [CryptoModule()])
        let tenant = try await db.createTenant("coin", modules: ["crypto"])
        _ = try await db.createUser("ann@coin.test", password: "correct horse battery", roles: ["member"], in: tenant)
        // Nothing listens on this port.
        let closed = try LocalPort.free()
        let environment = ["ATRIUM_CRYPTO_BINANCE_URL": "http://127.0.0.1:\(closed)", "ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"]
        try await withTestApplication(db, modules: [CryptoModule()], environment: environment) { client, _ in
            let token = try await client.login("coin", "ann@coin.test", "correct horse battery").access
            let down = try await client.send(.post, Self.base + "/connections", token: token, json: Self.body())
            #expect(down.status == .serviceUnavailable)
            #expect(json(down)["code"]?.string == "exchange_unavailable")
            #expect(down.headers[.retryAfter] != nil)
        }
    }

    @Test func aConnectionIsRenamedAndGivenNewCredentialsCheckedAsANewOnes() async throws {
        try await withTeam { simulator, client, _, tokens in
            try await simulator.account(key: Self.key, secret: Self.secret)
            let created = json(try await client.send(.post, Self.base + "/connections", token: tokens.ann, json: Self.body()))
            let id = try #require(created["id"]?.string)

            let renamed = try await client.send(.patch, Self.base + "/connections/\(id)", token: tokens.ann, json: #"{"label":"Savings","markets":null}"#)
            #expect(renamed.status == .ok, "\(String(buffer: renamed.body))")
            #expect(json(renamed)["label"]?.string == "Savings")
            #expect(json(renamed)["markets"]?.array?.isEmpty == true)
            let refused = try await client.send(.patch, Self.base + "/connections/\(id)", token: tokens.ann, json: #"{"label":null,"markets":["eth"]}"#)
            #expect(Set(json(refused)["errors"]?.array?.compactMap { $0["field"]?.string } ?? []) == ["label", "markets"])
            #expect(try await client.send(.patch, Self.base + "/connections/\(id)", token: tokens.bob, json: #"{"label":"Mine"}"#).status == .notFound)

            // A new key for the same account: checked with the exchange, then sealed in place.
            let rotated = String(repeating: "R", count: 60) + "9z9Z"
            let credentials = #"{"api_key":"\#(rotated)","api_secret":"\#(Self.secret)"}"#
            let unknown = try await client.send(.put, Self.base + "/connections/\(id)/credentials", token: tokens.ann, json: credentials)
            #expect(json(unknown)["code"]?.string == "exchange_rejected_credentials")
            #expect(json(try await client.send(.get, Self.base + "/connections/\(id)", token: tokens.ann))["key_last4"]?.string == "a1B2", "nothing changed")
            try await simulator.account(key: rotated, secret: Self.secret)
            let before = try await simulator.requests().count
            #expect(try await client.send(.put, Self.base + "/connections/\(id)/credentials", token: tokens.bob, json: credentials).status == .notFound)
            #expect(try await simulator.requests().count == before, "another owner's connection is not checked with the exchange")
            let replaced = try await client.send(.put, Self.base + "/connections/\(id)/credentials", token: tokens.ann, json: credentials)
            #expect(replaced.status == .ok, "\(String(buffer: replaced.body))")
            #expect(json(replaced)["key_last4"]?.string == "9z9Z")
            #expect(json(replaced)["key_fingerprint"] != created["key_fingerprint"])
            #expect(!String(buffer: replaced.body).contains(rotated))
        }
    }
}
