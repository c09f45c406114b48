import AtriumCore
import AtriumTesting
import Crypto
import Foundation
import Testing

@testable import AtriumCrypto

/// A secret sealed under a tenant's data key opens only where it was sealed: the same
/// tenant, connection and field.
@Suite struct SealingTests {
    @Test func aSealedSecretOpensOnlyForItsTenantConnectionAndField() throws {
        let key = DataKey(version: 1, key: SymmetricKey(size: .bits256))
        let (tenant, connection) = (UUID(), UUID())
        let sealed = try key.seal("secret-value", tenant: tenant, connection: connection, field: "api_secret")
        #expect(!String(decoding: sealed, as: UTF8.self).contains("secret-value"))
        #expect(try key.open(sealed, tenant: tenant, connection: connection, field: "api_secret") == "secret-value")
        #expect(throws: CryptoKeyError.self) { try key.open(sealed, tenant: tenant, connection: connection, field: "api_key") }
        #expect(throws: CryptoKeyError.self) { try key.open(sealed, tenant: tenant, connection: UUID(), field: "api_secret") }
        #expect(throws: CryptoKeyError.self) { try key.open(sealed, tenant: UUID(), connection: connection, field: "api_secret") }
        let other = DataKey(version: 2, key: SymmetricKey(size: .bits256))
        #expect(throws: CryptoKeyError.self) { try other.open(sealed, tenant: tenant, connection: connection, field: "api_secret") }
    }
}

@Suite struct CryptoConformanceTests {
    @Test func cryptoKeepsTheModuleRules() async throws {
        let problems = try await ModuleConformance.problems(of: CryptoModule())
        #expect(problems == [], "\(problems.joined(separator: "\n"))")
    }
}
