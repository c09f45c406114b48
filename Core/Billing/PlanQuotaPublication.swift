import Foundation
public import Logging
public import PostgresNIO

extension PlanCatalog {
    /// Copies every plan's quotas into `plan_quotas`, replacing what was there, so rules
    /// the database enforces (seats) follow the catalog this process loaded.
    /// Runs in its own platform transaction on `connection` (owner or application role).
    public func publishQuotas(on connection: PostgresConnection, logger: Logger) async throws {
        let rows = plans.values.flatMap { plan in plan.quotas.map { (plan.id, $0.key, $0.value) } }
        let (planIDs, names, values) = (rows.map(\.0), rows.map(\.1), rows.map(\.2))
        try await connection.withPlatformTransaction(logger: logger) { connection in
            try await connection.query("DELETE FROM plan_quotas", logger: logger)
            try await connection.query(
                """
                INSERT INTO plan_quotas (plan, name, value)
                SELECT * FROM unnest(\(planIDs)::text[], \(names)::text[], \(values)::int8[])
                """, logger: logger)
        }
    }
}
