import Foundation
public import Logging
public import PostgresNIO

/// Keeps the `meters` table in step with the meters this binary declares, and refuses
/// to start when a meter that already has recorded events would change its aggregation:
/// the events were recorded meaning one thing, and invoices would silently re-read them
/// as another.
public struct MeterDeclarations: Sendable {
    let metering: Metering
    let logger: Logger

    public init(metering: Metering, logger: Logger) {
        self.metering = metering
        self.logger = logger
    }

    /// Runs in its own platform transaction on `connection` (owner or application role).
    public func synchronize(on connection: PostgresConnection) async throws {
        let definitions = metering.definitions
        let logger = logger
        try await connection.withPlatformTransaction(logger: logger) { connection in
            for meter in definitions {
                let declaredBy = String(meter.name.prefix { $0 != "." })
                let existing = try await connection.query(
                    "SELECT aggregation FROM meters WHERE name = \(meter.name) FOR UPDATE", logger: logger
                ).collect().first?.decode(String.self)
                if existing == meter.aggregation.rawValue { continue }
                if let existing {
                    let used = try await connection.query(
                        "SELECT EXISTS (SELECT 1 FROM usage_records WHERE meter = \(meter.name))", logger: logger
                    ).collect().first?.decode(Bool.self) ?? false
                    if used {
                        throw ConfigurationError(
                            "meter '\(meter.name)' has recorded events aggregated as \(existing); it cannot become \(meter.aggregation.rawValue). Declare a new meter instead.")
                    }
                }
                try await connection.query(
                    """
                    INSERT INTO meters (name, aggregation, unit, declared_by) VALUES (\(meter.name), \(meter.aggregation.rawValue), \(meter.unit), \(declaredBy))
                    ON CONFLICT (name) DO UPDATE SET aggregation = excluded.aggregation, unit = excluded.unit, declared_at = now()
                    """, logger: logger)
            }
        }
    }
}
