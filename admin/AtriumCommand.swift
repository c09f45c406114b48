import ArgumentParser
import AtriumCore

@main
struct AtriumCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atrium",
        abstract: "Atrium: a multi-tenant SaaS backend in one binary.",
        discussion: """
            With no DATABASE_URL, commands use the embedded PostgreSQL cluster under the data folder \
            (--data-dir, ATRIUM_DATA_DIR, default .atrium), starting it for their own duration when no \
            server is running. With DATABASE_URL (application role) and DATABASE_OWNER_URL (owner role) \
            they use that server instead.
            """,
        subcommands: [
            ServeCommand.self, WorkerCommand.self, MigrateCommand.self, DoctorCommand.self, DBCommand.self,
            TenantsCommand.self, UsersCommand.self, RolesCommand.self, APIKeysCommand.self, AuditCommand.self, ModulesCommand.self,
            OIDCCommand.self, JobsCommand.self, KeysCommand.self, InvoicesCommand.self, BillingCommand.self, UsageCommand.self,
            BenchCommand.self,
        ] + installedModules.flatMap(\.commands)
    )
}
