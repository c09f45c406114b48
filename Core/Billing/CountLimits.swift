import HTTPTypes
import PostgresNIO

extension TenantTransaction {
    /// Takes one of the plan's `quota` slots for a new row of `table`, or answers 403
    /// `plan_upgrade_required` naming the quota, its limit and how many are used.
    ///
    /// For limits on how many rows a tenant keeps (`crypto.exchanges` connections,
    /// `beauty.staff` members), not on usage over time (those are meters). Call it in the
    /// transaction that inserts the row, before the insert: it counts every owner's rows of
    /// `table` under a lock held until this transaction ends, so two concurrent creates
    /// cannot both take the last slot. The limit is the tenant's plan's, as published from
    /// the plan catalog to the database at start; a plan without the quota has no limit.
    /// `table` is the module's own constant, never input.
    public func requireCountSlot(_ quota: String, counting table: String) async throws {
        guard Self.isIdentifier(table) else { throw ConfigurationError("requireCountSlot: '\(table)' is not a table name") }
        guard let row = try await query("SELECT quota_limit, used FROM atrium_count_slot(\(quota), \(table)::regclass)").first else {
            throw AtriumError.internalError()
        }
        let (limit, used) = try row.decode((Int64?, Int64?).self)
        guard let limit, let used, used >= limit else { return }
        var problem = AtriumError.forbidden(
            code: "plan_upgrade_required",
            "The plan includes \(limit) of '\(quota)' and \(used) are used; remove one or upgrade the plan.")
        problem.extensions = ["quota": .string(quota), "limit": .number(Double(limit)), "used": .number(Double(used))]
        throw problem
    }
}
