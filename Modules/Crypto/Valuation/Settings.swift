import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// A user's crypto settings: the asset their holdings, snapshots and P&L are valued in.
struct CryptoSettings: Codable, Sendable {
    var valuationAsset: String

    static let defaultValuationAsset = "USDT"

    func validated() throws -> CryptoSettings {
        var checks = FieldChecks()
        checks.fail("valuation_asset", "must be an asset such as USDT, BTC or EUR: 2 to 12 capital letters and digits", when: !Self.isAsset(valuationAsset))
        try checks.finish()
        return self
    }

    static func isAsset(_ text: String) -> Bool {
        (2...12).contains(text.utf8.count) && text.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    /// `owner`'s valuation asset (USDT until they choose).
    static func valuationAsset(of owner: UUID, on transaction: TenantTransaction) async throws -> String {
        try await transaction.query("SELECT valuation_asset FROM crypto_settings WHERE owner_id = \(owner)").first?.decode(String.self)
            ?? defaultValuationAsset
    }
}

struct SettingsRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "settings", summary: "Your crypto settings (the asset values are told in)", access: CryptoAccess.records, response: CryptoSettings.self) { request in
            let owner = try request.requireOwnership().userID
            return try await request.transaction { transaction in
                try await transaction.lastStatement { CryptoSettings(valuationAsset: try await CryptoSettings.valuationAsset(of: owner, on: transaction)) }
            }
        }
        routes.on(
            .put, "settings", summary: "Change your crypto settings", access: CryptoAccess.records, body: CryptoSettings.self, response: CryptoSettings.self
        ) { request, input in
            let settings = try input.validated()
            let owner = try request.requireOwnership().userID
            return try await request.transaction { transaction in
                _ = try await transaction.lastStatement {
                    try await transaction.query(
                        """
                        INSERT INTO crypto_settings (tenant_id, owner_id, valuation_asset) VALUES (\(transaction.tenantID), \(owner), \(settings.valuationAsset))
                        ON CONFLICT (tenant_id, owner_id) DO UPDATE SET valuation_asset = excluded.valuation_asset, updated_at = now()
                        """)
                }
                return settings
            }
        }
    }
}
