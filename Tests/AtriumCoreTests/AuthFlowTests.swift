@testable import AtriumCore
import AtriumTesting
import Crypto
import HummingbirdBcrypt
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@Suite("Login, tokens and sessions")
struct AuthFlowTests {
    let logger = TestDatabase.logger

    func auditActions(_ db: TestDatabase, _ tenant: Tenant) async throws -> [String] {
        try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await AuditLog(logger: logger).list(on: connection).map(\.action)
            }
        }
    }

    @Test func loginIssuesAnRFC6749PairThatAuthenticates() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        _ = try await db.createUser("Owner@Acme.test", password: "owner-password-1", roles: ["owner"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let response = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"owner@acme.test","password":"owner-password-1"}"#)
            #expect(response.status == .ok)
            let body = json(response)
            #expect(body["token_type"]?.string == "Bearer")
            #expect(body["expires_in"] == 900)
            let access = try #require(body["access_token"]?.string)
            #expect(body["refresh_token"]?.string?.count == 43)
            let me = json(try await client.get("/v1/tenants/acme/auth/me", token: access))
            #expect(me["user"]?["email"]?.string == "Owner@Acme.test")
            #expect(me["user"]?["roles"] == ["owner"])
            #expect(me["permissions"]?.array?.contains(.string("notes.write")) == true)
            #expect(me["permissions"]?.array?.contains(.string("kernel.users.manage")) == true)
            // The token opens module routes according to the user's roles.
            let notes = try await client.get("/v1/tenants/acme/notes/notes", token: access)
            #expect(notes.status == .ok)
        }
        let check1 = try await auditActions(db, acme) == ["login.succeeded"]
        #expect(check1)
    }

    @Test func unknownEmailAndWrongPasswordAreIndistinguishable() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let wrong = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"wrong-password"}"#)
            let unknown = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"nobody@acme.test","password":"wrong-password"}"#)
            #expect(wrong.status == .unauthorized)
            #expect(unknown.status == .unauthorized)
            #expect(String(buffer: wrong.body) == String(buffer: unknown.body))
            let missing = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test"}"#)
            #expect(missing.status == .unprocessableContent)
        }
        let check2 = try await auditActions(db, acme) == ["login.failed", "login.failed"]
        #expect(check2)
    }

    /// The README's promise behind the same answer: an unknown email costs what a wrong
    /// password costs, one Argon2id verification with the server's parameters (against a
    /// decoy hash made with them), so timing does not tell which emails have accounts.
    @Test func anUnknownEmailIsCheckedAgainstADecoyOfTheSameCost() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        let stored = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query("SELECT password_hash FROM users WHERE email = 'user@acme.test'", logger: TestDatabase.logger).first().decode(String.self)
            }
        }
        // "$argon2id$v=19$m=…,t=…,p=…$salt$hash": the algorithm, version and cost.
        @Sendable func cost(_ encoded: String) -> [String] { encoded.split(separator: "$").prefix(3).map(String.init) }
        let storedCost = cost(stored)
        let decoy = try await withIdentityApp(db) { _, identity in
            (cost(identity.decoyHash), try await identity.hasher.verify("right-password", against: identity.decoyHash))
        }
        #expect(decoy.0 == storedCost, "decoy \(decoy.0), stored \(storedCost)")
        #expect(storedCost.first == "argon2id")
        #expect(decoy.1 == .invalid)
    }

    @Test func refreshRotatesAndReuseAfterGraceRevokesTheFamily() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        var settings = SessionSettings()
        settings.refreshGrace = 0.3
        try await withIdentityApp(db, settings: settings) { client, _ in
            let first = try await client.login("acme", "user@acme.test", "right-password")
            let second = json(try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(first.refresh)"}"#))
            let secondRefresh = try #require(second["refresh_token"]?.string)
            #expect(secondRefresh != first.refresh)
            let third = json(try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(secondRefresh)"}"#))
            let thirdRefresh = try #require(third["refresh_token"]?.string)
            let thirdAccess = try #require(third["access_token"]?.string)
            let check3 = try await client.get("/v1/tenants/acme/auth/me", token: thirdAccess).status == .ok
            #expect(check3)
            try await Task.sleep(for: .milliseconds(500))
            // The first token comes back after its grace window: theft is assumed.
            let replay = try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(first.refresh)"}"#)
            #expect(replay.status == .unauthorized)
            #expect(json(replay)["code"]?.string == "invalid_grant")
            // The whole family is gone: the newest refresh token and the live access token too.
            let newest = try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(thirdRefresh)"}"#)
            #expect(newest.status == .unauthorized)
            let check4 = try await client.get("/v1/tenants/acme/auth/me", token: thirdAccess).status == .unauthorized
            #expect(check4)
        }
        let check5 = try await auditActions(db, acme).contains("security.refresh_token_reuse")
        #expect(check5)
    }

    @Test func concurrentRefreshesInsideTheGraceWindowShareOneSuccessor() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let first = try await client.login("acme", "user@acme.test", "right-password")
            let results = try await withThrowingTaskGroup(of: JSONValue.self) { group in
                for _ in 0..<4 {
                    group.addTask { json(try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(first.refresh)"}"#)) }
                }
                return try await group.reduce(into: [JSONValue]()) { $0.append($1) }
            }
            let refreshTokens = Set(results.compactMap { $0["refresh_token"]?.string })
            let accessTokens = Set(results.compactMap { $0["access_token"]?.string })
            #expect(refreshTokens.count == 1)
            #expect(accessTokens.count == 1)
            #expect(results.allSatisfy { $0["refresh_token"]?.string != nil })
        }
    }

    @Test func forgedExpiredAndForeignTokensAreRejected() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let globex = try await db.createTenant("globex")
        let user = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        _ = try await db.createUser("user@globex.test", password: "right-password", roles: ["owner"], in: globex)
        try await withIdentityApp(db) { client, identity in
            let good = try await client.login("acme", "user@acme.test", "right-password").access
            let check6 = try await client.get("/v1/tenants/acme/auth/me", token: good).status == .ok
            #expect(check6)
            let parts = good.split(separator: ".").map(String.init)
            func encode(_ json: String) -> String {
                Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
            }
            let header = try #require(String(data: Data(base64Encoded: parts[0] + String(repeating: "=", count: (4 - parts[0].count % 4) % 4)) ?? Data(), encoding: .utf8))
            let kid = try #require(header.split(separator: "\"").drop { $0 != "kid" }.dropFirst(2).first.map(String.init))
            var rejected: [String: String] = [:]
            rejected["wrong kid"] = encode(#"{"alg":"EdDSA","typ":"JWT","kid":"atr-unknown"}"#) + "." + parts[1] + "." + parts[2]
            rejected["alg none"] = encode(#"{"alg":"none","typ":"JWT","kid":"\#(kid)"}"#) + "." + parts[1] + "."
            // Tampered: the live token's own claims (its session is valid) with a later expiry,
            // under the original signature, so only the signature check can refuse it.
            let payloadData = try #require(Data(base64Encoded: parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
                + String(repeating: "=", count: (4 - parts[1].count % 4) % 4)))
            var claims = try #require(try JSONSerialization.jsonObject(with: payloadData) as? [String: Any])
            let liveSession = try #require((claims["sid"] as? String).flatMap(UUID.init(uuidString:)))
            claims["exp"] = ((claims["exp"] as? Double) ?? 0) + 3_600
            let tamperedPayload = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
            rejected["tampered payload"] = parts[0] + "." + encode(String(decoding: tamperedPayload, as: UTF8.self)) + "." + parts[2]
            // HS256 signed with the public key as the HMAC secret (the classic confusion attack).
            let jwks = try await identity.keyring.jwks()
            let x = try #require(jwks["keys"]?.array?.first?["x"]?.string)
            let hsHeader = encode(#"{"alg":"HS256","typ":"JWT","kid":"\#(kid)"}"#)
            let mac = HMAC<SHA256>.authenticationCode(for: Data((hsHeader + "." + parts[1]).utf8), using: SymmetricKey(data: Data(x.utf8)))
            rejected["HS256 with public key"] = hsHeader + "." + parts[1] + "." + Data(mac).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            // Expired: a correctly signed token whose exp has passed.
            // Expired: correctly signed, for the live session, so only the expiry check refuses it.
            let expiredClaims = AccessTokenClaims(userID: user.id, tenantID: acme.id, sessionID: liveSession, issuedAt: Date().addingTimeInterval(-3600), lifetime: 60)
            rejected["expired"] = try await identity.keyring.sign(expiredClaims)
            // Another tenant's valid token on this tenant's path.
            rejected["other tenant"] = try await client.login("globex", "user@globex.test", "right-password").access
            for (name, token) in rejected {
                let response = try await client.get("/v1/tenants/acme/auth/me", token: token)
                #expect(response.status == .unauthorized, "\(name) must be rejected")
                #expect(json(response)["code"]?.string == "unauthenticated", "\(name)")
            }
        }
    }

    /// `auth/logout-all` ends every session of the caller — access and refresh tokens of
    /// each device — and no one else's; the audit log keeps who did it, and with what.
    @Test func logoutAllEndsEverySessionOfTheCallerAndNoOneElses() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        _ = try await db.createUser("other@acme.test", password: "other-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let laptop = try await client.login("acme", "user@acme.test", "right-password")
            let phone = try await client.login("acme", "user@acme.test", "right-password")
            let other = try await client.login("acme", "other@acme.test", "other-password")
            let out = try await client.execute(
                uri: "/v1/tenants/acme/auth/logout-all", method: .post,
                headers: [.authorization: "Bearer \(laptop.access)", .userAgent: "probe-agent/1.0", .contentType: "application/json"],
                body: ByteBuffer(string: "{}"))
            #expect(out.status == .noContent)
            for device in [laptop, phone] {
                #expect(try await client.get("/v1/tenants/acme/auth/me", token: device.access).status == .unauthorized)
                let refresh = try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(device.refresh)"}"#)
                #expect(refresh.status == .unauthorized)
            }
            #expect(try await client.get("/v1/tenants/acme/auth/me", token: other.access).status == .ok)
        }
        let events = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: logger) { connection in try await AuditLog(logger: logger).list(on: connection) }
        }
        let logoutAll = try #require(events.first { $0.action == "session.logout_all" }, "\(events.map(\.action))")
        #expect(logoutAll.userAgent == "probe-agent/1.0", "\(events.map { ($0.action, $0.userAgent) })")
    }

    @Test func logoutDisablingAndPasswordChangeEndSessionsAtOnce() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let user = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let laptop = try await client.login("acme", "user@acme.test", "right-password")
            let phone = try await client.login("acme", "user@acme.test", "right-password")
            let sessions = json(try await client.get("/v1/tenants/acme/auth/sessions", token: laptop.access))
            #expect(sessions["data"]?.array?.count == 2)
            let check7 = try await client.post("/v1/tenants/acme/auth/logout", json: "{}", token: laptop.access).status == .noContent
            #expect(check7)
            let check8 = try await client.get("/v1/tenants/acme/auth/me", token: laptop.access).status == .unauthorized
            #expect(check8)
            let check9 = try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(laptop.refresh)"}"#).status == .unauthorized
            #expect(check9)
            let check10 = try await client.get("/v1/tenants/acme/auth/me", token: phone.access).status == .ok
            #expect(check10)

            // Changing the password keeps the current session and ends the others.
            let tablet = try await client.login("acme", "user@acme.test", "right-password")
            let change = try await client.post(
                "/v1/tenants/acme/auth/change-password", json: #"{"current_password":"right-password","new_password":"a-new-password"}"#, token: phone.access)
            #expect(change.status == .noContent)
            let check11 = try await client.get("/v1/tenants/acme/auth/me", token: phone.access).status == .ok
            #expect(check11)
            let check12 = try await client.get("/v1/tenants/acme/auth/me", token: tablet.access).status == .unauthorized
            #expect(check12)
            let oldPassword = try await client.loginStatus("acme", "user@acme.test", "right-password")
            #expect(oldPassword == .unauthorized)
            let fresh = try await client.login("acme", "user@acme.test", "a-new-password")
            #expect(!fresh.access.isEmpty)

            // Disabling the user ends every session immediately.
            try await db.withOwner { connection in
                try await connection.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await connection.query("UPDATE users SET status = 'disabled' WHERE id = \(user.id)", logger: logger)
                }
            }
            let check14 = try await client.get("/v1/tenants/acme/auth/me", token: fresh.access).status == .unauthorized
            #expect(check14)
            let disabled = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"a-new-password"}"#)
            #expect(json(disabled)["code"]?.string == "account_disabled")
        }
    }

    @Test func selfSignupFollowsTheTenantSettingAndThePasswordPolicy() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        try await withIdentityApp(db) { client, _ in
            let closed = try await client.post("/v1/tenants/acme/auth/register", json: #"{"email":"new@acme.test","password":"long-enough-pw"}"#)
            #expect(closed.status == .forbidden)
            #expect(json(closed)["code"]?.string == "signup_disabled")
            try await db.withOwner { connection in
                try await connection.query("UPDATE tenants SET settings = '{\"self_signup\": true}' WHERE id = \(acme.id)", logger: logger)
            }
            let weak = try await client.post("/v1/tenants/acme/auth/register", json: #"{"email":"new@acme.test","password":"short"}"#)
            #expect(weak.status == .unprocessableContent)
            #expect(json(weak)["errors"]?.array?.first?["field"]?.string == "password")
            let created = try await client.post("/v1/tenants/acme/auth/register", json: #"{"email":"new@acme.test","password":"long-enough-pw"}"#)
            #expect(created.status == .created)
            let access = try #require(json(created)["access_token"]?.string)
            let check15 = try await json(client.get("/v1/tenants/acme/auth/me", token: access))["user"]?["roles"] == ["member"]
            #expect(check15)
            let duplicate = try await client.post("/v1/tenants/acme/auth/register", json: #"{"email":"NEW@acme.test","password":"long-enough-pw"}"#)
            #expect(duplicate.status == .conflict)
        }
    }

    @Test func loginRehashesWhenParametersChanged() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let old = PasswordHasher(parameters: .init(memoryKiB: 512, iterations: 1, parallelism: 1))
        let user = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme, hasher: old)
        try await withIdentityApp(db) { client, _ in
            let check16 = try await !(client.login("acme", "user@acme.test", "right-password").access.isEmpty)
            #expect(check16)
        }
        let stored = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: logger) { connection in
                try await connection.query("SELECT password_hash FROM users WHERE id = \(user.id)", logger: logger).collect().first?.decode(String.self)
            }
        }
        #expect(stored?.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$") == true)
    }

    @Test func importedBcryptHashLogsInAndIsReplacedByArgon2id() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let legacy = Bcrypt.hash("from-the-old-app", cost: 4)
        let user = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: logger) { connection in
                try await UserStore(logger: logger).create(tenantID: acme.id, email: "old@acme.test", passwordHash: legacy, roles: ["member"], on: connection)
            }
        }
        try await withIdentityApp(db) { client, _ in
            let wrong = try await client.loginStatus("acme", "old@acme.test", "not-the-password")
            #expect(wrong == .unauthorized)
            let right = try await client.login("acme", "old@acme.test", "from-the-old-app")
            #expect(!right.access.isEmpty)
        }
        let stored = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: logger) { connection in
                try await connection.query("SELECT password_hash FROM users WHERE id = \(user.id)", logger: logger).collect().first?.decode(String.self)
            }
        }
        #expect(stored?.hasPrefix("$argon2id$") == true)
    }

    @Test func jwksPublishesKeysAndRotationKeepsOldTokensValid() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, identity in
            let before = try await client.login("acme", "user@acme.test", "right-password").access
            _ = try await identity.keyring.rotate()
            let jwks = json(try await client.get("/.well-known/jwks.json", token: nil))
            let keys = try #require(jwks["keys"]?.array)
            #expect(keys.count == 2)
            #expect(keys.allSatisfy { $0["kty"]?.string == "OKP" && $0["crv"]?.string == "Ed25519" && $0["d"] == nil })
            let check17 = try await client.get("/v1/tenants/acme/auth/me", token: before).status == .ok
            #expect(check17)
            let after = try await client.login("acme", "user@acme.test", "right-password").access
            #expect(after.split(separator: ".").first != before.split(separator: ".").first)  // new kid
        }
    }
}
