import Foundation
import HTTPTypes

/// `/v1/tenants/{tenant}/billing/…`: what the tenant has used.
struct BillingRoutes {
    struct UsageReport: Codable, Sendable {
        var period: String
        var data: [Metering.MeterUsage]
    }

    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "billing/usage", summary: "Usage by meter for a month", permission: "kernel.billing.read",
                  query: [.init("period", "The month, YYYY-MM (default: this month, UTC).")], response: UsageReport.self) { request in
            let periodText = request.query("period")
            let period = try Metering.period(periodText)
            let usage = try await request.transaction { transaction in
                try await transaction.metering.usage(period: period, on: transaction.connection)
            }
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyy-MM"
            formatter.timeZone = TimeZone(identifier: "UTC")
            return UsageReport(period: formatter.string(from: period), data: usage)
        }
    }
}
