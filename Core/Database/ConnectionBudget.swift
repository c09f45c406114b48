public import PostgresNIO
public import Logging

/// How many connections one process opens to PostgreSQL in all (`ATRIUM_DB_CONNECTIONS`),
/// and how they are split among its pools: the tenant-change listener, bulk imports'
/// background lane, the shared pool (jobs, the CLI's work) and, per event loop, one pool
/// for authenticated requests and one for the rest.
///
/// One number, so that an operator can add up processes against `max_connections`; the
/// server does that sum at start (`checkCapacity`) and refuses to start when it does not fit.
public struct ConnectionBudget: Sendable, Equatable {
    /// The connections this process opens at most.
    public let total: Int
    public let shared: Int
    /// Each event loop's request pool, and again its other pool.
    public let perLoop: Int
    public let background: Int
    public static let listener = 1

    /// Splits `total` for `loops` event loops: a third of what the listener and imports
    /// leave to the shared pool, the rest evenly to the loops' two pools.
    public init(total: Int, loops: Int) throws(ConfigurationError) {
        let loops = max(1, loops)
        let minimum = Self.minimum(loops: loops)
        guard total >= minimum else {
            throw ConfigurationError("ATRIUM_DB_CONNECTIONS=\(total) is too few for \(loops) event loops: at least \(minimum)")
        }
        background = total >= 24 ? 4 : 1
        let rest = total - Self.listener - background
        shared = max(2, rest / 3)
        perLoop = max(1, (rest - shared) / (2 * loops))
        self.total = Self.listener + background + shared + 2 * loops * perLoop
    }

    /// A split given pool by pool (tests, and `Database.pooled(_:size:)`).
    init(shared: Int, perLoop: Int, background: Int, loops: Int) {
        self.shared = shared
        self.perLoop = perLoop
        self.background = background
        total = Self.listener + background + shared + 2 * max(1, loops) * perLoop
    }

    /// The fewest connections a process can run on.
    public static func minimum(loops: Int) -> Int { listener + 1 + 2 + 2 * max(1, loops) }

    /// The default for a machine of `cores` cores: 29 on two.
    public static func defaultTotal(cores: Int, loops: Int) -> Int {
        let shared = max(8, cores * 4)
        return listener + 4 + shared + 2 * max(1, loops) * max(2, shared / max(1, loops))
    }

    /// Reads `max_connections` (less the superuser's reserve) and what is connected now,
    /// logs how many processes of this size fit, and throws when this one does not.
    public func checkCapacity(on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(
            """
            SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
                (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend')
            """, logger: logger)
        for try await (maximum, reserved, connected) in rows.decode((Int, Int, Int).self) {
            let usable = maximum - reserved
            // This check's own connection is about to close: it is not counted against us.
            let free = usable - max(0, connected - 1)
            logger.notice("database connections", metadata: [
                "db.connections": "\(total)", "db.max_connections": "\(maximum)", "db.connected": "\(connected)",
                "db.processes_that_fit": "\(usable / total)",
            ])
            guard total <= free else {
                throw ConfigurationError(
                    "this process would open \(total) connections, and PostgreSQL has \(free) free of \(usable) "
                        + "(max_connections \(maximum) less \(reserved) reserved; \(connected) in use): "
                        + "lower ATRIUM_DB_CONNECTIONS or raise max_connections")
            }
        }
    }
}
