import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// The module context: sealing, signed links and settings (outbound HTTP: `OutboundHTTPTests`).
@Suite struct ModuleKitTests {
    let logger = TestDatabase.logger
    let tenant = Tenant(id: UUID(), slug: "acme", name: "Acme", status: .active, plan: "free", createdAt: Date(), updatedAt: Date())

    // MARK: - Sealing

    @Test func sealedValuesOpenOnlyWithTheirAssociatedDataAndModule() throws {
        let master = MasterKey.generate()
        let crypto = ModuleKit.ephemeral(masterKey: master, logger: logger).context(for: "crypto").sealer
        let sealed = try crypto.seal("exchange-secret", associatedData: "exchange_keys:1")
        #expect(try crypto.open(sealed, associatedData: "exchange_keys:1") == "exchange-secret")
        #expect(!sealed.contains(Data("exchange-secret".utf8)))
        #expect(throws: SealingError.self) { try crypto.open(sealed, associatedData: "exchange_keys:2") as String }
        let beauty = ModuleKit.ephemeral(masterKey: master, logger: logger).context(for: "beauty").sealer
        #expect(throws: SealingError.self) { try beauty.open(sealed, associatedData: "exchange_keys:1") as String }
        // Two seals of one value differ (a fresh data key and nonce each time).
        #expect(try crypto.seal("exchange-secret", associatedData: "exchange_keys:1") != sealed)
    }

    @Test func retiredMasterKeysStillOpenAndRewrapMovesValuesToTheCurrentKey() throws {
        let old = MasterKey.generate()
        let oldSealer = old.sealer(scope: "module:crypto")
        let sealed = try oldSealer.seal("api-secret", associatedData: "row-7")

        let new = MasterKey.generate()
        let withoutPrevious = new.sealer(scope: "module:crypto")
        let refused = #expect(throws: SealingError.self) { try withoutPrevious.open(sealed, associatedData: "row-7") as String }
        #expect(refused?.description.contains(try oldSealer.keyID(of: sealed)) == true)

        let rotating = new.retiring([old]).sealer(scope: "module:crypto")
        #expect(try rotating.open(sealed, associatedData: "row-7") == "api-secret")
        #expect(try rotating.keyID(of: sealed) == oldSealer.currentKeyID)
        let rewrapped = try #require(try rotating.rewrap(sealed))
        #expect(try rotating.keyID(of: rewrapped) == rotating.currentKeyID)
        #expect(rotating.currentKeyID != oldSealer.currentKeyID)
        // A second pass changes nothing, and the new key alone now opens the value.
        #expect(try rotating.rewrap(rewrapped) == nil)
        #expect(try withoutPrevious.open(rewrapped, associatedData: "row-7") == "api-secret")
        #expect(throws: SealingError.self) { try withoutPrevious.open(rewrapped, associatedData: "row-8") as String }
    }

    @Test func damagedOrForeignBytesAreRefusedWithoutTrapping() throws {
        let sealer = MasterKey.generate().sealer(scope: "module:crypto")
        var sealed = try sealer.seal("secret", associatedData: "a")
        for bytes in [Data(), Data([1]), Data(repeating: 1, count: 90), Data("not sealed at all, just text".utf8)] {
            #expect(throws: SealingError.self) { try sealer.open(bytes, associatedData: "a") as String }
        }
        sealed[sealed.count - 1] ^= 1
        #expect(throws: SealingError.self) { try sealer.open(sealed, associatedData: "a") as String }
    }

    @Test func kernelSecretsSealedUnderARetiredKeyStillOpen() throws {
        let old = MasterKey.generate()
        let sealed = try old.seal(Data("totp".utf8), context: "totp:1")
        #expect(throws: (any Error).self) { try MasterKey.generate().open(sealed, context: "totp:1") }
        #expect(try MasterKey.generate().retiring([old]).open(sealed, context: "totp:1") == Data("totp".utf8))
    }

    // MARK: - Signed links

    @Test func signedLinksVerifyOnlyForTheirPurposeTenantAndModuleUntilTheyExpire() throws {
        let master = MasterKey.generate()
        let clock = MovableClock(Date(timeIntervalSince1970: 1_800_000_000))
        let kit = ModuleKit(masterKey: master, publicURL: try #require(URL(string: "https://api.example.com/base")), clock: clock, logger: logger)
        let links = kit.context(for: "beauty").links
        let url = links.sign(purpose: "booking.cancel", subject: "b-1/é", tenant: tenant, expires: clock.now.addingTimeInterval(3600), path: "bookings/cancel")
        #expect(url.absoluteString.hasPrefix("https://api.example.com/base/v1/public/acme/beauty/bookings/cancel?token="))
        let token = try #require(URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?.first { $0.name == "token" }?.value)
        #expect(try links.verify(token, purpose: "booking.cancel", tenant: tenant).subject == "b-1/é")

        func refusal(_ body: () throws(AtriumError) -> SignedLinks.Link) -> String? {
            do {
                _ = try body()
                return nil
            } catch {
                return error.code
            }
        }
        var other = tenant
        other.id = UUID()
        #expect(refusal { () throws(AtriumError) in try links.verify(token, purpose: "booking.confirm", tenant: tenant) } == "invalid_link")
        #expect(refusal { () throws(AtriumError) in try links.verify(token, purpose: "booking.cancel", tenant: other) } == "invalid_link")
        let crypto = kit.context(for: "crypto").links
        #expect(refusal { () throws(AtriumError) in try crypto.verify(token, purpose: "booking.cancel", tenant: tenant) } == "invalid_link")
        let parts = token.split(separator: ".").map(String.init)
        let otherSubject = links.token(purpose: "booking.cancel", subject: "b-2", tenant: tenant, expires: clock.now.addingTimeInterval(3600))
        let spliced = [parts[0], otherSubject.split(separator: ".").map(String.init)[1], parts[2]].joined(separator: ".")
        #expect(refusal { () throws(AtriumError) in try links.verify(spliced, purpose: "booking.cancel", tenant: tenant) } == "invalid_link")
        let later = [String(Int(parts[0])! + 86400), parts[1], parts[2]].joined(separator: ".")
        #expect(refusal { () throws(AtriumError) in try links.verify(later, purpose: "booking.cancel", tenant: tenant) } == "invalid_link")
        for junk in ["", "...", "1.2", "x.y.z", "1.@@@.AAAA", token + "A"] {
            #expect(refusal { () throws(AtriumError) in try links.verify(junk, purpose: "booking.cancel", tenant: tenant) } == "invalid_link")
        }

        clock.advance(by: 3599)
        #expect(refusal { () throws(AtriumError) in try links.verify(token, purpose: "booking.cancel", tenant: tenant) } == nil)
        clock.advance(by: 1)
        #expect(refusal { () throws(AtriumError) in try links.verify(token, purpose: "booking.cancel", tenant: tenant) } == "link_expired")
    }

    // MARK: - Settings

    @Test func settingsComeFromPrefixedVariablesAndMalformedOnesStopStartUp() throws {
        let settings = ModuleKit(
            masterKey: .generate(), publicURL: Identity.defaultAppURL,
            environment: ["ATRIUM_CRYPTO_SYNC_SECONDS": "90", "ATRIUM_CRYPTO_SANDBOX": "yes", "ATRIUM_CRYPTO_BASE_URL": "ftp://x", "ATRIUM_CRYPTO_LIMIT": "lots"],
            logger: logger
        ).context(for: "crypto").settings
        #expect(settings.variable("sync_seconds") == "ATRIUM_CRYPTO_SYNC_SECONDS")
        #expect(try settings.int("sync_seconds", default: 60, in: 10...3600) == 90)
        #expect(try settings.int("absent", default: 60, in: 10...3600) == 60)
        #expect(try settings.bool("sandbox", default: false))
        #expect(throws: ConfigurationError.self) { try settings.url("base_url") }
        let error = #expect(throws: ConfigurationError.self) { try settings.int("limit", default: 5, in: 1...10) }
        #expect(error?.description.contains("ATRIUM_CRYPTO_LIMIT") == true)
    }
}
