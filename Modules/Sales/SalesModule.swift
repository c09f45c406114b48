public import ArgumentParser
public import AtriumCore
import Foundation

/// Sales: companies, contacts, deals, products and activities, each row owned by a
/// user, with bulk import at database speed. Registered through `AtriumModule` like any
/// module; it uses only AtriumCore's public API.
///
/// Access: `sales_rep` reads and edits the records it owns; `sales_manager` sees every
/// record of the tenant and reassigns owners. Owner scoping is enforced twice: in the
/// handlers' queries and by the tables' row-level security (see the migration).
public struct SalesModule: AtriumModule {
    public init() {}

    public var id: String { "sales" }
    public var version: String { "1.0.0" }
    public var requiredKernelVersion: String { "0.1" }

    public var permissions: [PermissionDefinition] {
        [
            .init(SalesPermission.own, description: "Read and edit the sales records you own"),
            .init(SalesPermission.any, description: "Read and edit every sales record of the tenant"),
            .init(SalesPermission.assign, description: "Give sales records to another owner"),
            .init(SalesPermission.importData, description: "Import and export sales records in bulk"),
        ]
    }

    public var roleGrants: [String: [String]] {
        [
            "sales_rep": [SalesPermission.own, SalesPermission.importData],
            "sales_manager": [SalesPermission.own, SalesPermission.any, SalesPermission.assign, SalesPermission.importData],
            "admin": [SalesPermission.own, SalesPermission.any, SalesPermission.assign, SalesPermission.importData],
        ]
    }

    public var meters: [MeterDefinition] {
        [MeterDefinition(Self.rowsImported, aggregation: .sum, unit: "row")]
    }

    public var commands: [any ParsableCommand.Type] { [SalesCommand.self] }

    public func migrations() throws -> [Migration] {
        try Migration.fromFiles(EmbeddedMigrations.files, owner: id)
    }

    public func routes(_ routes: ModuleRoutes) {
        CompanyRoutes().register(routes)
        ContactRoutes().register(routes)
        ProductRoutes().register(routes)
        DealRoutes().register(routes)
        ActivityRoutes().register(routes)
        Self.imports.register(routes, owned: "sales.records", requiring: SalesPermission.importData)
    }

    public var jobs: [JobDefinition] { [Self.imports.job] }

    /// Rows written by imports, metered per tenant.
    public static let rowsImported = "sales.rows_imported"
    /// Contacts, companies, products and deals from CSV or NDJSON files, by the kernel's bulk import.
    static let imports = BulkImport(module: "sales", entities: SalesImportEntities.all, meter: rowsImported)
}

/// The module's permissions.
/// How Sales' routes declare access: every record is owned by a user.
enum SalesAccess {
    static let records = RouteAccess.owned("sales.records")
    /// The kernel's routes of owned records, for every sales record.
    static let recordRoutes = OwnedRecordRoutes(access: records, assignPermission: SalesPermission.assign)
    static let importing = RouteAccess.owned("sales.records", requiring: SalesPermission.importData)
}

public enum SalesPermission {
    public static let own = "sales.records.own"
    public static let any = "sales.records.any"
    public static let assign = "sales.owners.assign"
    public static let importData = "sales.records.import"
}
