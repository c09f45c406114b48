import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// A tenant with the portfolio module on a real database: two investors and a manager,
/// logged in for real, and a market of instruments the tests trade.
struct PortfolioTeam {
    static let base = "/v1/tenants/fund/portfolio"
    let db: TestDatabase
    let tenant: Tenant
    let client: any TestClientProtocol
    let ann: String
    let bob: String
    let manager: String
    let advisor: String
    let annID: UUID
    let bobID: UUID
    let advisorID: UUID

    static func withTeam(module: PortfolioModule = PortfolioModule(), _ body: @escaping @Sendable (PortfolioTeam) async throws -> Void) async throws {
        let db = try await TestDatabase.create(modules: [module])
        let tenant = try await db.createTenant("fund", modules: ["portfolio"])
        let ann = try await db.createUser("ann@fund.test", password: "correct horse battery", roles: ["investor"], in: tenant)
        let bob = try await db.createUser("bob@fund.test", password: "correct horse battery", roles: ["investor"], in: tenant)
        _ = try await db.createUser("max@fund.test", password: "correct horse battery", roles: ["portfolio_manager"], in: tenant)
        let advisor = try await db.createUser("ada@fund.test", password: "correct horse battery", roles: ["portfolio_advisor"], in: tenant)
        try await withTestApplication(db, modules: [module]) { client, _ in
            let team = PortfolioTeam(
                db: db, tenant: tenant, client: client,
                ann: try await client.login("fund", "ann@fund.test", "correct horse battery").access,
                bob: try await client.login("fund", "bob@fund.test", "correct horse battery").access,
                manager: try await client.login("fund", "max@fund.test", "correct horse battery").access,
                advisor: try await client.login("fund", "ada@fund.test", "correct horse battery").access, annID: ann.id, bobID: bob.id, advisorID: advisor.id)
            try await body(team)
        }
    }

    /// Sends `json` to `path` (under the module) as `token`, expecting `status`; answers the body.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, _ token: String, _ json: String? = nil, expect status: HTTPResponse.Status = .ok,
        headers: HTTPFields = [:], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> JSONValue {
        let response = try await client.send(method, Self.base + path, token: token, json: json, headers: headers)
        #expect(response.status == status, "\(method) \(path): \(String(buffer: response.body))", sourceLocation: sourceLocation)
        return AtriumTesting.json(response)
    }

    /// Ann's new portfolio; its id.
    func portfolio(_ name: String, base: String = "USD", method: String = "fifo", token: String? = nil) async throws -> String {
        let created = try await call(.post, "/portfolios", token ?? ann, #"{"name":"\#(name)","base_currency":"\#(base)","cost_method":"\#(method)"}"#, expect: .created)
        return try #require(created["id"]?.string)
    }

    /// Records a trade; its id.
    @discardableResult
    func trade(
        _ portfolio: String, _ type: String, _ symbol: String, _ quantity: String, at price: String, on date: String, fee: String = "0",
        currency: String = "USD", extra: String = "", token: String? = nil, expect status: HTTPResponse.Status = .created,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> JSONValue {
        try await call(
            .post, "/portfolios/\(portfolio)/transactions", token ?? ann,
            #"{"type":"\#(type)","symbol":"\#(symbol)","quantity":"\#(quantity)","price":"\#(price)","currency":"\#(currency)","trade_date":"\#(date)","fee":"\#(fee)"\#(extra)}"#,
            expect: status, sourceLocation: sourceLocation)
    }

    /// Every usage event of the tenant: meter, quantity and the user it was billed for.
    func usage() async throws -> [(meter: String, quantity: Int64, user: String?)] {
        try await db.withOwner { owner in
            try await owner.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "SELECT meter, quantity, properties->>'user' FROM usage_records WHERE meter LIKE 'portfolio.%' ORDER BY meter, recorded_at",
                    logger: TestDatabase.logger
                ).collect().map { row in
                    let (meter, quantity, user) = try row.decode((String, Int64, String?).self)
                    return (meter, quantity, user)
                }
            }
        }
    }

    /// Runs the jobs queued now (an uploaded import's) with the module's worker; how many ran.
    func runJobs() async throws -> Int {
        try await db.withApp { database in
            try await JobWorker(
                database: database, registry: try ModuleRegistry([PortfolioModule()]), configuration: .init(), kit: .ephemeral(logger: TestDatabase.logger),
                logger: TestDatabase.logger
            ).runAvailableJobs()
        }
    }

    /// The manager lists an instrument and its closes.
    func market(_ symbol: String, currency: String = "USD", sector: String = "Technology", closes: [(String, String)] = []) async throws {
        try await call(.put, "/market/instruments/\(symbol)", manager, #"{"name":"\#(symbol) Inc.","sector":"\#(sector)","currency":"\#(currency)"}"#)
        if !closes.isEmpty {
            let body = closes.map { #"{"date":"\#($0.0)","close":"\#($0.1)"}"# }.joined(separator: ",")
            try await call(.post, "/market/instruments/\(symbol)/prices", manager, #"{"closes":[\#(body)]}"#)
        }
    }
}
