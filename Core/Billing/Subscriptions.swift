public import Foundation
public import Logging
public import PostgresNIO

/// A tenant's subscription: its plan (`tenants.plan`) and where it stands.
///
/// `trialing` bills no flat fee until `trialEndsAt`; `past_due` means a finalized
/// invoice is unpaid after the payment term; `canceled` stops the flat fee from
/// `canceledAt`. The database keeps the plan history (`plan_periods`) in step with
/// every plan change, which is what invoices prorate.
public struct Subscription: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable, CaseIterable {
        case trialing
        case active
        case pastDue = "past_due"
        case canceled
    }
    public var plan: String
    public var status: Status
    public var trialEndsAt: Date?
    public var startedAt: Date
    public var canceledAt: Date?
    /// The month being billed now.
    public var currentPeriodStart: Date
    public var currentPeriodEnd: Date
}

/// Reads and moves subscriptions, in a transaction scoped to the tenant.
public struct Subscriptions: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func find(now: Date = Date(), on connection: PostgresConnection) async throws -> Subscription? {
        guard let row = try await connection.query(
            """
            SELECT t.plan, s.status, s.trial_ends_at, s.started_at, s.canceled_at
            FROM subscriptions s JOIN tenants t ON t.id = s.tenant_id
            """, logger: logger
        ).collect().first else { return nil }
        let (plan, status, trialEndsAt, startedAt, canceledAt) = try row.decode((String, String, Date?, Date, Date?).self)
        let start = try Metering.period(nil, now: now)
        return Subscription(
            plan: plan, status: .init(rawValue: status) ?? .active, trialEndsAt: trialEndsAt, startedAt: startedAt, canceledAt: canceledAt,
            currentPeriodStart: start, currentPeriodEnd: InvoiceCalculation.periodEnd(start))
    }

    /// Starts a trial ending `days` from now (the flat fee is not billed until then).
    public func startTrial(days: Int, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE subscriptions SET status = 'trialing', trial_ends_at = now() + make_interval(days => \(days)::int),
                canceled_at = NULL, updated_at = now()
            """, logger: logger)
    }

    /// Makes a trialing, past-due or canceled subscription active again from now.
    public func activate(on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE subscriptions SET status = 'active', canceled_at = NULL,
                trial_ends_at = CASE WHEN trial_ends_at > now() THEN now() ELSE trial_ends_at END, updated_at = now()
            """, logger: logger)
    }

    /// Cancels now: the flat fee stops; modules and data stay until an operator acts.
    public func cancel(on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE subscriptions SET status = 'canceled', canceled_at = now(), updated_at = now() WHERE status <> 'canceled'", logger: logger)
    }

    /// Moves time-driven states: a trial that has ended becomes active; an invoice unpaid
    /// past its term makes the subscription past due, and paying everything makes it
    /// active again. Canceled stays canceled.
    public func refreshStatus(tenantID: UUID, now: Date = Date(), on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE subscriptions s SET status = next.status, updated_at = now()
            FROM (
                SELECT CASE
                    WHEN EXISTS (SELECT 1 FROM invoices WHERE status = 'finalized'
                                 AND finalized_at < \(now)::timestamptz - make_interval(days => \(Invoices.paymentTermDays)::int)) THEN 'past_due'
                    WHEN trial_ends_at > \(now)::timestamptz THEN 'trialing'
                    ELSE 'active' END AS status
                FROM subscriptions WHERE tenant_id = \(tenantID)
            ) next
            WHERE s.tenant_id = \(tenantID) AND s.status <> 'canceled' AND s.status <> next.status
            """, logger: logger)
    }
}

/// A tenant's subscription as `GET billing/subscription` answers it (and the console reads it).
public struct SubscriptionView: Codable, Sendable {
    public var plan: String
    public var planName: String?
    public var status: String
    public var currency: String?
    public var monthlyFee: Int64?
    public var quotas: [String: Int64]
    public var trialEndsAt: Date?
    public var startedAt: Date
    public var canceledAt: Date?
    public var currentPeriodStart: Date
    public var currentPeriodEnd: Date
}
