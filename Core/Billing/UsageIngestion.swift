public import Foundation
public import PostgresNIO

extension Metering {
    /// One usage event from outside (the batch ingestion route).
    public struct IncomingEvent: Sendable, Codable {
        public var meter: String
        public var quantity: Int64?
        public var timestamp: Date?
        public var idempotencyKey: String
        public var properties: [String: JSONValue]?
        public init(meter: String, quantity: Int64? = nil, timestamp: Date? = nil, idempotencyKey: String, properties: [String: JSONValue]? = nil) {
            self.meter = meter
            self.quantity = quantity
            self.timestamp = timestamp
            self.idempotencyKey = idempotencyKey
            self.properties = properties
        }
    }

    /// How many events of a batch were new and how many repeated an idempotency key.
    public struct BatchOutcome: Sendable, Codable, Equatable {
        public var accepted: Int
        public var duplicates: Int
    }

    /// The most events one batch may carry.
    public static let maximumBatch = 1000

    /// Checks a batch as a whole before anything is written: every bad event is named
    /// (`events[3].meter`), and one bad event refuses the batch.
    public func validate(_ events: [IncomingEvent]) throws {
        guard !events.isEmpty, events.count <= Self.maximumBatch else {
            throw AtriumError.validation(field: "events", "must hold 1 to \(Self.maximumBatch) events")
        }
        var errors: [AtriumError.FieldError] = []
        for (index, event) in events.enumerated() {
            if meters[event.meter] == nil { errors.append(.init(field: "events[\(index)].meter", message: "'\(event.meter)' is not a declared meter")) }
            if !(0...Metering.maximumQuantity).contains(event.quantity ?? 1) {
                errors.append(.init(field: "events[\(index)].quantity", message: "must be from 0 to \(Metering.maximumQuantity)"))
            }
            if !(1...200).contains(InputDomain.length(event.idempotencyKey)) {
                errors.append(.init(field: "events[\(index)].idempotency_key", message: "must be 1 to 200 characters"))
            }
        }
        if !errors.isEmpty { throw AtriumError.validation(Array(errors.prefix(50)), detail: "\(errors.count) problem(s) in the batch; nothing was recorded.") }
    }

    /// Records a validated batch with one statement: events whose idempotency key the
    /// tenant has used before (ever, or earlier in the batch) are skipped, and the
    /// monthly counters move by exactly the events inserted, in the same statement.
    public func recordBatch(_ events: [IncomingEvent], tenantID: UUID, now: Date = Date(), on connection: PostgresConnection) async throws -> BatchOutcome {
        try validate(events)
        let meters = events.map(\.meter)
        let quantities = events.map { $0.quantity ?? 1 }
        let times = events.map { $0.timestamp ?? now }
        let keys = events.map(\.idempotencyKey)
        let properties = try events.map { String(decoding: try JSONEncoder().encode(JSONValue.object($0.properties ?? [:])), as: UTF8.self) }
        let inserted = try await connection.query(
            """
            WITH input AS (
                SELECT * FROM unnest(\(meters)::text[], \(quantities)::int8[], \(times)::timestamptz[], \(keys)::text[], \(properties)::jsonb[])
                    AS e(meter, quantity, occurred_at, idempotency_key, properties)
            ), inserted AS (
                INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties)
                SELECT \(tenantID), meter, quantity, occurred_at, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, idempotency_key, properties
                FROM input
                ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
                RETURNING meter, period, quantity
            ), counted AS (
                INSERT INTO usage_counters (tenant_id, meter, period, quantity, events, max_quantity)
                SELECT \(tenantID), meter, period, sum(quantity), count(*), max(quantity) FROM inserted GROUP BY meter, period
                ON CONFLICT (tenant_id, meter, period) DO UPDATE SET
                    quantity = usage_counters.quantity + excluded.quantity, events = usage_counters.events + excluded.events,
                    max_quantity = greatest(usage_counters.max_quantity, excluded.max_quantity)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM inserted)::int8
            """, logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
        return BatchOutcome(accepted: Int(inserted), duplicates: events.count - Int(inserted))
    }
}
