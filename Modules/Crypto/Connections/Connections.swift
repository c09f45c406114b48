import AtriumCore
import Foundation
import PostgresNIO

/// A user's connection to an exchange account, as the API shows it: never its secrets,
/// only the key's fingerprint and last four characters.
struct Connection: Codable, Sendable {
    var id: UUID
    var ownerId: UUID
    var exchange: String
    var label: String
    var state: String
    var keyFingerprint: String
    var keyLast4: String
    var permissions: KeyPermissions
    var markets: [String]
    var lastError: String?
    var nextSyncAt: Date?
    var createdAt: Date
    var updatedAt: Date

    static let columns =
        "id, owner_id, exchange, label, state, key_fingerprint, key_last4, permissions::text, markets, last_error, next_sync_at, created_at, updated_at"

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        ownerId = try columns.next()
        exchange = try columns.next()
        label = try columns.next()
        state = try columns.next()
        keyFingerprint = try columns.next()
        keyLast4 = try columns.next()
        let permissions: String = try columns.next()
        self.permissions = try JSONDecoder().decode(KeyPermissions.self, from: Data(permissions.utf8))
        markets = try columns.next()
        lastError = try columns.next()
        nextSyncAt = try columns.next()
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }
}

/// `POST connections`: the exchange, a label, the key and secret, and markets to sync
/// beyond those of the assets held.
struct ConnectionFields: Codable, Sendable {
    var exchange: String
    var label: String
    var apiKey: String
    var apiSecret: String
    var markets: [String]?

    /// The fields checked; the exchange is not called for a body that fails here.
    func validated() throws -> ConnectionFields {
        var checks = FieldChecks()
        checks.fail("exchange", "must be binance", when: exchange != "binance")
        checks.record("label", InputDomain.textProblem(label, maximum: 100))
        checks.fail("label", "must not be empty", when: label.trimmingCharacters(in: .whitespaces).isEmpty)
        Credentials(apiKey: apiKey, apiSecret: apiSecret).check(&checks)
        checks.record("markets", Self.marketsProblem(markets ?? []))
        try checks.finish()
        return self
    }

    /// What is wrong with a list of markets to sync, if anything.
    static func marketsProblem(_ markets: [String]) -> String? {
        if markets.count > 100 { return "at most 100 markets" }
        if markets.contains(where: { !(5...20).contains($0.count) || !$0.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) } }) {
            return "each market is a symbol of 5 to 20 capital letters and digits, such as BTCUSDT"
        }
        return nil
    }

    /// `PUT connections/{id}/credentials`: a new key and secret for the same account (a
    /// key rotated at the exchange, or one that stopped working).
    struct Credentials: Codable, Sendable {
        var apiKey: String
        var apiSecret: String

        func check(_ checks: inout FieldChecks) {
            checks.fail("api_key", "must be the exchange's API key: 64 letters and digits", when: !ConnectionFields.isKey(apiKey))
            checks.fail("api_secret", "must be the key's secret: 64 letters and digits", when: !ConnectionFields.isKey(apiSecret))
        }

        func validated() throws -> Credentials {
            var checks = FieldChecks()
            check(&checks)
            try checks.finish()
            return self
        }

        var exchangeCredentials: ExchangeCredentials { ExchangeCredentials(apiKey: apiKey, apiSecret: apiSecret) }
    }

    static func isKey(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
    }
}

/// `PATCH connections/{id}` (JSON Merge Patch): the label, the markets to sync beyond those
/// of the assets held (`null` clears them), and the owner.
struct ConnectionChanges: Codable, Sendable {
    var label: Patch<String>
    var markets: Patch<[String]>
    var ownerId: Patch<UUID>

    func validated() throws -> ConnectionChanges {
        var checks = FieldChecks()
        checks.fail("label", "cannot be cleared (null)", when: label.isCleared)
        checks.fail("owner_id", "cannot be cleared (null)", when: ownerId.isCleared)
        if let label = label.value {
            checks.record("label", InputDomain.textProblem(label, maximum: 100))
            checks.fail("label", "must not be empty", when: label.trimmingCharacters(in: .whitespaces).isEmpty)
        }
        checks.record("markets", markets.value.flatMap(ConnectionFields.marketsProblem))
        try checks.finish()
        return self
    }
}
