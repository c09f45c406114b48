import AtriumCore
import Foundation

/// What a valuation read covers — the caller's connections (an admin's `?owner=` narrows
/// to one user), or one `?connection=` — and the asset it values in: `?valuation_asset=`,
/// else the owner's setting, else USDT. Shared by holdings and P&L.
struct ValuationScope: Sendable {
    var owner: UUID?
    var connection: UUID?
    var asked: String?
    var caller: UUID

    static let parameters: [QueryParameter] = [
        .init("owner", "Only this user's connections (for those who may see everyone's)."), .init("connection", "Only this connection."),
        .init("valuation_asset", "The asset to value in (default: the owner's setting, else USDT)."),
    ]

    init(_ request: TenantRequest) throws {
        owner = try ListFilter(request).owner
        connection = try request.uuidQuery("connection")
        asked = request.query("valuation_asset")
        if let asked, !CryptoSettings.isAsset(asked) { throw AtriumError.validation(field: "valuation_asset", "must be an asset such as USDT or BTC") }
        caller = try request.requireOwnership().userID
    }

    /// The asset to value in, read in `transaction` when the request did not name one.
    func valuationAsset(on transaction: TenantTransaction) async throws -> String {
        if let asked { return asked }
        return try await CryptoSettings.valuationAsset(of: owner ?? caller, on: transaction)
    }
}
