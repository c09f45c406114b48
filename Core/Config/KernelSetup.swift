public import Logging

/// Start-up steps shared by `atrium serve`, `atrium worker` and `atrium migrate`.
public enum KernelSetup {
    /// Applies pending migrations of the kernel and every installed module as the owner role.
    @discardableResult
    public static func migrate(_ location: DatabaseLocation, registry: ModuleRegistry, logger: Logger) async throws -> [Migration] {
        let migrator = Migrator(migrations: try registry.allMigrations(), logger: logger)
        return try await withPostgresConnection(location.owner, logger: logger) { connection in
            try await migrator.migrate(connection)
        }
    }
}
