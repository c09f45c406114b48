import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdOTP
import HummingbirdTesting
import NIOCore
import Testing

/// Decodes RFC 4648 base32 (no padding), as authenticator apps read `secret=`.
func base32Decode(_ text: String) -> [UInt8] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    var bits = 0
    var value = 0
    var output: [UInt8] = []
    for character in text.uppercased() where character != "=" {
        guard let index = alphabet.firstIndex(of: character) else { continue }
        value = (value << 5) | index
        bits += 5
        if bits >= 8 {
            output.append(UInt8((value >> (bits - 8)) & 0xff))
            bits -= 8
        }
    }
    return output
}

/// The code an authenticator app shows for `base32Secret` at `date`.
func authenticatorCode(_ base32Secret: String, at date: Date) -> String {
    let secret = String(decoding: base32Decode(base32Secret), as: UTF8.self)
    return String(format: "%06d", TOTP(secret: secret).compute(date: date))
}

@Suite("TOTP second factor")
struct TOTPTests {
    @Test func enrolConfirmAndLogInWithCodesAndRecoveryCodes() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let first = try await client.login("acme", "user@acme.test", "right-password")
            let other = try await client.login("acme", "user@acme.test", "right-password")
            let enrollment = json(try await client.post("/v1/tenants/acme/auth/mfa/totp/enroll", json: "{}", token: first.access))
            let secret = try #require(enrollment["secret"]?.string)
            #expect(enrollment["otpauth_url"]?.string?.hasPrefix("otpauth://totp/") == true)
            let wrong = try await client.post("/v1/tenants/acme/auth/mfa/totp/confirm", json: #"{"code":"000000"}"#, token: first.access)
            #expect(wrong.status == .unprocessableContent)
            let confirm = try await client.post(
                "/v1/tenants/acme/auth/mfa/totp/confirm", json: #"{"code":"\#(authenticatorCode(secret, at: Date()))"}"#, token: first.access)
            #expect(confirm.status == .ok)
            let recovery = json(confirm)["recovery_codes"]?.array?.compactMap { $0.string } ?? []
            try #require(recovery.count == 10)
            #expect(Set(recovery).count == 10)
            // Turning MFA on ended the other session.
            #expect(try await client.get("/v1/tenants/acme/auth/me", token: other.access).status == .unauthorized)

            let login = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"right-password"}"#)
            #expect(login.status == .unauthorized)
            #expect(json(login)["code"]?.string == "mfa_required")
            let challenge = try #require(json(login)["challenge_token"]?.string)
            let badCode = try await client.post("/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(challenge)","code":"123456"}"#)
            #expect(json(badCode)["code"]?.string == "invalid_mfa_code")
            // The step used to confirm cannot be replayed; the next step's code works.
            let next = authenticatorCode(secret, at: Date().addingTimeInterval(30))
            let verified = try await client.post("/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(challenge)","code":"\#(next)"}"#)
            #expect(verified.status == .ok)
            #expect(json(verified)["access_token"]?.string != nil)
            let spent = try await client.post("/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(challenge)","code":"\#(next)"}"#)
            #expect(spent.status == .unauthorized)

            // A recovery code works once.
            let again = try #require(json(try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"right-password"}"#))["challenge_token"]?.string)
            let withRecovery = try await client.post("/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(again)","recovery_code":"\#(recovery[0].uppercased())"}"#)
            #expect(withRecovery.status == .ok)
            let third = try #require(json(try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"right-password"}"#))["challenge_token"]?.string)
            let reused = try await client.post("/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(third)","recovery_code":"\#(recovery[0])"}"#)
            #expect(reused.status == .unauthorized)

            // Disabling with a recovery code turns the second factor off.
            let session = try #require(json(withRecovery)["access_token"]?.string)
            let disabled = try await client.post("/v1/tenants/acme/auth/mfa/totp/disable", json: #"{"code":"\#(recovery[1])"}"#, token: session)
            #expect(disabled.status == .noContent)
            #expect(try await client.login("acme", "user@acme.test", "right-password").access.isEmpty == false)
        }
    }

    @Test func challengeDiesAfterFiveWrongCodes() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let access = try await client.login("acme", "user@acme.test", "right-password").access
            let secret = try #require(json(try await client.post("/v1/tenants/acme/auth/mfa/totp/enroll", json: "{}", token: access))["secret"]?.string)
            let confirmed = try await client.post("/v1/tenants/acme/auth/mfa/totp/confirm", json: #"{"code":"\#(authenticatorCode(secret, at: Date()))"}"#, token: access)
            #expect(confirmed.status == .ok)
            let challenge = try #require(json(try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"right-password"}"#))["challenge_token"]?.string)
            for _ in 0..<5 {
                _ = try await client.post("/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(challenge)","code":"999999"}"#)
            }
            let late = try await client.post(
                "/v1/tenants/acme/auth/mfa/verify", json: #"{"challenge_token":"\#(challenge)","code":"\#(authenticatorCode(secret, at: Date().addingTimeInterval(30)))"}"#)
            #expect(late.status == .unauthorized)
        }
    }
}
