public import Foundation
import HTTPTypes
public import Logging
public import PostgresNIO

/// Records and reads metered usage inside tenant transactions.
public struct Metering: Sendable {
    /// Usage of one meter in one month, aggregated as the meter declares.
    public struct MeterUsage: Sendable, Codable, Equatable {
        public var meter: String
        public var aggregation: String
        public var unit: String
        public var value: Int64
        public var events: Int64
        public init(meter: String, aggregation: String, unit: String, value: Int64, events: Int64) {
            self.meter = meter
            self.aggregation = aggregation
            self.unit = unit
            self.value = value
            self.events = events
        }
    }

    let meters: [String: MeterDefinition]
    let logger: Logger

    /// The largest quantity one event may carry (10^12). Bounded so that a month's
    /// counter, a sum in `bigint`, stays millions of maximal events away from overflow.
    public static let maximumQuantity: Int64 = 1_000_000_000_000

    /// The kernel's own meters. `kernel.api_calls` sums: each recorded event carries the calls of one process in one second.
    public static let kernelMeters = [MeterDefinition("kernel.api_calls", aggregation: .sum, unit: "request")]

    /// Every meter this binary records: the kernel's, the modules' and the plan catalog's.
    public var definitions: [MeterDefinition] { meters.values.sorted { $0.name < $1.name } }

    public init(registry: ModuleRegistry, catalog: PlanCatalog? = nil, logger: Logger) {
        var meters: [String: MeterDefinition] = [:]
        for meter in Self.kernelMeters + registry.modules.flatMap(\.meters) + (catalog?.meters ?? []) { meters[meter.name] = meter }
        self.meters = meters
        self.logger = logger
    }

    /// Records `quantity` of `meter`; returns false when `idempotencyKey` was recorded
    /// before (ever), in which case nothing changes.
    ///
    /// The event goes straight into `usage_events` and the month's counter, whose row it
    /// locks until the transaction ends: for work recorded now and then (an import, a
    /// second's API calls), not for every request. A request records through
    /// `TenantTransaction.recordUsage`, which appends to `usage_pending` instead and locks
    /// nothing shared. A key pending from a request is not seen here: it is answered new,
    /// and counted once all the same (the fold and the readers drop the pending copy).
    ///
    /// With a `quota` (a hard limit on the meter's monthly count or sum), the month's
    /// counter row is locked first and the event refused with 429 `quota_exceeded` when
    /// it would pass the quota: concurrent transactions queue on that row, so two can
    /// never both take the last unit, and a rolled-back one gives its unit back.
    @discardableResult
    public func record(
        _ meter: String, quantity: Int64, idempotencyKey: String, at time: Date, properties: [String: JSONValue], tenantID: UUID,
        quota: Int64? = nil, on connection: PostgresConnection
    ) async throws -> Bool {
        let json = try checkedProperties(meter, quantity: quantity, idempotencyKey: idempotencyKey, properties: properties)
        guard let quota else {
            let inserted = try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties)
                    VALUES (\(tenantID), \(meter), \(quantity), \(time), date_trunc('month', \(time)::timestamptz AT TIME ZONE 'UTC')::date, \(idempotencyKey), \(json)::jsonb)
                    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
                    RETURNING meter, period, quantity
                ), counted AS (
                    INSERT INTO usage_counters (tenant_id, meter, period, quantity, events, max_quantity)
                    SELECT \(tenantID), meter, period, quantity, 1, quantity FROM inserted
                    ON CONFLICT (tenant_id, meter, period) DO UPDATE SET
                        quantity = usage_counters.quantity + excluded.quantity, events = usage_counters.events + 1,
                        max_quantity = greatest(usage_counters.max_quantity, excluded.max_quantity)
                    RETURNING 1
                )
                SELECT count(*)::int8 FROM inserted
                """, logger: logger
            ).collect().first?.decode(Int64.self) ?? 0
            return inserted > 0
        }
        guard try await consume(meter, quantity: quantity, quota: quota, idempotencyKey: idempotencyKey, at: time, tenantID: tenantID, on: connection)
        else { return false }
        // Under the counter's lock, recorded and counted at once: the next holder sees it.
        try await connection.query(
            """
            WITH inserted AS (
                INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties)
                VALUES (\(tenantID), \(meter), \(quantity), \(time), date_trunc('month', \(time)::timestamptz AT TIME ZONE 'UTC')::date, \(idempotencyKey), \(json)::jsonb)
                ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
                RETURNING meter, period, quantity
            )
            UPDATE usage_counters c SET quantity = c.quantity + i.quantity, events = c.events + 1, max_quantity = greatest(c.max_quantity, i.quantity)
            FROM inserted i WHERE c.meter = i.meter AND c.period = i.period
            """, logger: logger)
        return true
    }

    /// The statement a request's `recordUsage` runs, its values checked: the event appended
    /// to `usage_pending`, whatever its key. One statement with text parameters, so that a
    /// request can send it in front of its own statement, in the same write. The table has
    /// no key to check (migration 0025 says what that saves): a key recorded before, pending
    /// or folded, is pending again beside it, and `usage_records`, `usage_totals` and the
    /// fold count the first-recorded row of each key once.
    func recordingStatement(
        _ meter: String, quantity: Int64, idempotencyKey: String, at time: Date, properties: [String: JSONValue], tenantID: UUID
    ) throws -> PrefixedStatement {
        let json = try checkedProperties(meter, quantity: quantity, idempotencyKey: idempotencyKey, properties: properties)
        // Microseconds since 1970, exact in PostgreSQL's arithmetic (as the driver binds a Date).
        let micros = Int64((time.timeIntervalSince1970 * 1_000_000).rounded())
        return PrefixedStatement(
            name: "atrium_append_usage",
            text: """
                INSERT INTO usage_pending (tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties)
                SELECT $1::uuid, $2, $3::int8, at, date_trunc('month', at AT TIME ZONE 'UTC')::date, $5, $6::jsonb
                FROM (SELECT timestamptz 'epoch' + $4::int8 * interval '1 microsecond' AS at) t
                """,
            values: [tenantID.uuidString, meter, String(quantity), String(micros), idempotencyKey, json])
    }

    /// Refuses what the tables would (so that nothing fails once sent) and encodes the
    /// properties as JSON text.
    private func checkedProperties(_ meter: String, quantity: Int64, idempotencyKey: String, properties: [String: JSONValue]) throws -> String {
        guard meters[meter] != nil else {
            logger.error("usage recorded for an undeclared meter", metadata: ["meter": "\(meter)"])
            throw AtriumError.internalError()
        }
        guard (0...Self.maximumQuantity).contains(quantity) else {
            throw AtriumError.validation(field: "quantity", "must be from 0 to \(Self.maximumQuantity)")
        }
        // PostgreSQL's length() counts code points, and text holds no NUL.
        guard (1...200).contains(idempotencyKey.unicodeScalars.count), !idempotencyKey.unicodeScalars.contains("\0") else {
            logger.error("a usage idempotency key has 1 to 200 characters and no NUL", metadata: ["meter": "\(meter)"])
            throw AtriumError.internalError()
        }
        // Most records carry none: no encoder for those, on the request path.
        if properties.isEmpty { return "{}" }
        return String(decoding: try JSONEncoder().encode(JSONValue.object(properties)), as: UTF8.self)
    }

    /// Moves every committed pending event into `usage_events` and its month's counter
    /// (platform work: all tenants), in one statement. Of the pending rows of one key the
    /// first recorded moves, and none when the key is an event already (a retry): the
    /// others are dropped. Rows of a tenant deleted meanwhile are dropped too (its trigger
    /// removes them; this covers a delete that raced the fold). Concurrent folds each move
    /// a row once: the second waits on the first's delete and skips what it took. Returns
    /// the events recorded.
    @discardableResult
    public static func fold(on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        try await connection.query(
            """
            WITH moved AS (
                DELETE FROM usage_pending
                RETURNING tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties, recorded_at
            ), kept AS (
                SELECT DISTINCT ON (tenant_id, idempotency_key) * FROM moved
                WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = moved.tenant_id)
                ORDER BY tenant_id, idempotency_key, recorded_at
            ), recorded AS (
                INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, period, idempotency_key, properties, recorded_at)
                SELECT * FROM kept
                ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
                RETURNING tenant_id, meter, period, quantity
            ), folded AS (
                INSERT INTO usage_counters (tenant_id, meter, period, quantity, events, max_quantity)
                SELECT tenant_id, meter, period, sum(quantity), count(*), max(quantity) FROM recorded GROUP BY tenant_id, meter, period
                ON CONFLICT (tenant_id, meter, period) DO UPDATE SET
                    quantity = usage_counters.quantity + excluded.quantity, events = usage_counters.events + excluded.events,
                    max_quantity = greatest(usage_counters.max_quantity, excluded.max_quantity)
            )
            SELECT count(*)::int8 FROM recorded
            """, logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    /// Locks the month's counter and checks the quota; false when the key is a repeat.
    private func consume(
        _ meter: String, quantity: Int64, quota: Int64, idempotencyKey: String, at time: Date, tenantID: UUID, on connection: PostgresConnection
    ) async throws -> Bool {
        guard let definition = meters[meter], definition.aggregation == .count || definition.aggregation == .sum else {
            logger.error("a quota needs a count or sum meter", metadata: ["meter": "\(meter)"])
            throw AtriumError.internalError()
        }
        try await connection.query(
            """
            INSERT INTO usage_counters (tenant_id, meter, period)
            VALUES (\(tenantID), \(meter), date_trunc('month', \(time)::timestamptz AT TIME ZONE 'UTC')::date)
            ON CONFLICT DO NOTHING
            """, logger: logger)
        let row = try await connection.query(
            """
            SELECT CASE WHEN \(definition.aggregation == .count) THEN c.events + p.events ELSE c.quantity + p.quantity END,
                   EXISTS (SELECT 1 FROM usage_records WHERE idempotency_key = \(idempotencyKey))
            FROM usage_counters c,
                 LATERAL (SELECT count(*)::int8 AS events, coalesce(sum(quantity), 0)::int8 AS quantity FROM usage_pending_first p
                          WHERE p.meter = c.meter AND p.period = c.period) p
            WHERE c.meter = \(meter) AND c.period = date_trunc('month', \(time)::timestamptz AT TIME ZONE 'UTC')::date FOR UPDATE OF c
            """, logger: logger
        ).collect().first
        let (used, repeated) = try row?.decode((Int64, Bool).self) ?? (Int64(0), false)
        if repeated { return false }
        guard used + (definition.aggregation == .count ? 1 : quantity) <= quota else {
            var error = AtriumError(
                status: .tooManyRequests, code: "quota_exceeded", title: "Quota exceeded",
                detail: "The plan's monthly quota of \(quota) for \(meter) is used up; upgrade the plan or wait for the next month.")
            error.extensions = ["meter": .string(meter), "quota": .number(Double(quota))]
            throw error
        }
        return true
    }

    /// Whether `meter` is declared.
    public func isDeclared(_ meter: String) -> Bool { meters[meter] != nil }

    /// Every declared meter's usage in the month starting `period` (UTC).
    public func usage(period: Date, on connection: PostgresConnection) async throws -> [MeterUsage] {
        var counters: [String: (quantity: Int64, events: Int64, max: Int64)] = [:]
        let rows = try await connection.query(
            "SELECT meter, quantity, events, max_quantity FROM usage_totals WHERE period = (\(period)::timestamptz AT TIME ZONE 'UTC')::date",
            logger: logger)
        for try await (meter, quantity, events, maximum) in rows.decode((String, Int64, Int64, Int64).self) {
            counters[meter] = (quantity, events, maximum)
        }
        var usage: [MeterUsage] = []
        for meter in meters.values.sorted(by: { $0.name < $1.name }) {
            let counter = counters[meter.name] ?? (0, 0, 0)
            var value: Int64
            switch meter.aggregation {
            case .count: value = counter.events
            case .sum: value = counter.quantity
            case .max: value = counter.max
            case .uniqueCount, .latest:
                value = try await fromEvents(meter, period: period, on: connection)
            }
            usage.append(MeterUsage(meter: meter.name, aggregation: meter.aggregation.rawValue, unit: meter.unit, value: value, events: counter.events))
        }
        return usage
    }

    /// Aggregations that need the events themselves: distinct `properties.unique_key`, or the last quantity.
    private func fromEvents(_ meter: MeterDefinition, period: Date, on connection: PostgresConnection) async throws -> Int64 {
        let rows: [PostgresRow]
        if meter.aggregation == .uniqueCount {
            rows = try await connection.query(
                "SELECT count(DISTINCT properties->>'unique_key')::int8 FROM usage_records WHERE meter = \(meter.name) AND period = (\(period)::timestamptz AT TIME ZONE 'UTC')::date",
                logger: logger
            ).collect()
        } else {
            rows = try await connection.query(
                "SELECT coalesce((SELECT quantity FROM usage_records WHERE meter = \(meter.name) AND period = (\(period)::timestamptz AT TIME ZONE 'UTC')::date ORDER BY occurred_at DESC, recorded_at DESC LIMIT 1), 0)::int8",
                logger: logger
            ).collect()
        }
        return try rows.first?.decode(Int64.self) ?? 0
    }

    /// The first day (UTC) of the month `text` (YYYY-MM) names, or of the current month.
    public static func period(_ text: String?, now: Date = Date()) throws -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard let text else {
            let parts = calendar.dateComponents([.year, .month], from: now)
            return calendar.date(from: parts) ?? now
        }
        let pieces = text.split(separator: "-")
        guard pieces.count == 2, let year = Int(pieces[0]), let month = Int(pieces[1]), (1...12).contains(month), (2000...9999).contains(year),
            let date = calendar.date(from: DateComponents(year: year, month: month, day: 1))
        else {
            throw AtriumError.validation(field: "period", "must be a month as YYYY-MM")
        }
        return date
    }
}
