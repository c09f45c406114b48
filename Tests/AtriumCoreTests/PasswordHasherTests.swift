@testable import AtriumCore
import Crypto
import Foundation
import HummingbirdBcrypt
import Testing

@Suite("Argon2id password hashing")
struct PasswordHasherTests {
    @Test func hashesAsPHCStringsAndVerifies() async throws {
        let hasher = PasswordHasher(parameters: .init(memoryKiB: 1024, iterations: 1, parallelism: 1))
        let hash = try await hasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$"))
        #expect(try await hasher.verify("correct horse battery staple", against: hash) == .valid(needsRehash: false))
        #expect(try await hasher.verify("Correct horse battery staple", against: hash) == .invalid)
        #expect(try await hasher.verify("anything", against: "not a hash") == .invalid)
        let again = try await hasher.hash("correct horse battery staple")
        #expect(again != hash)  // fresh salt each time
    }

    @Test func reportsRehashWhenParametersChange() async throws {
        let old = PasswordHasher(parameters: .init(memoryKiB: 1024, iterations: 1, parallelism: 1))
        let new = PasswordHasher(parameters: .init(memoryKiB: 2048, iterations: 2, parallelism: 1))
        let hash = try await old.hash("s3cret-passw0rd")
        #expect(try await new.verify("s3cret-passw0rd", against: hash) == .valid(needsRehash: true))
        #expect(PasswordHasher.parameters(of: hash) == old.parameters)
        #expect(PasswordHasher().parameters == .init(memoryKiB: 19456, iterations: 2, parallelism: 1))
    }

    @Test func policyRejectsShortLongAndEmailPasswords() throws {
        #expect(throws: AtriumError.self) { try PasswordPolicy.validate("short", email: "a@b.co") }
        #expect(throws: AtriumError.self) { try PasswordPolicy.validate(String(repeating: "x", count: 129), email: "a@b.co") }
        #expect(throws: AtriumError.self) { try PasswordPolicy.validate("Alice@Example.com", email: "alice@example.com") }
        try PasswordPolicy.validate("a long enough password", email: "alice@example.com")
        #expect(throws: AtriumError.self) { try PasswordPolicy.validate(email: "not-an-email") }
        #expect(throws: AtriumError.self) { try PasswordPolicy.validate(email: "a b@example.com") }
        try PasswordPolicy.validate(email: "alice@example.com")
    }

    @Test func legacyBcryptAndSaltedSHA256VerifyAndAskForRehash() async throws {
        let hasher = PasswordHasher(parameters: .init(memoryKiB: 1024, iterations: 1, parallelism: 1))
        let bcrypt = Bcrypt.hash("old-python-password", cost: 4)
        #expect(bcrypt.hasPrefix("$2b$"))
        #expect(try await hasher.verify("old-python-password", against: bcrypt) == .valid(needsRehash: true))
        #expect(try await hasher.verify("wrong", against: bcrypt) == .invalid)
        let digest = SHA256.hash(data: Data("pepper-salt".utf8) + Data("json-store-password".utf8)).map { String(format: "%02x", $0) }.joined()
        let legacy = "sha256$pepper-salt$\(digest)"
        #expect(try await hasher.verify("json-store-password", against: legacy) == .valid(needsRehash: true))
        #expect(try await hasher.verify("json-store-passworD", against: legacy) == .invalid)
        #expect(try await hasher.verify("x", against: "sha256$salt$nothex") == .invalid)
    }
}
