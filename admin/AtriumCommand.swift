import ArgumentParser
import AtriumCore
import Foundation

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
            BenchCommand.self, LoginCommand.self, LogoutCommand.self, WhoamiCommand.self, ContextCommand.self, APICommand.self, SessionsCommand.self,
        ] + installedModules.flatMap(\.commands)
    )

    /// Runs the command with the console's exit codes: 0 ok, 1 failure, 2 usage error,
    /// 3 not logged in, 4 permission denied (ArgumentParser alone would exit 64 on a
    /// usage error).
    static func main() async {
        if let refusal = OperatorOnly.refusal(Array(CommandLine.arguments.dropFirst())) {
            Console.error("error: \(refusal)")
            Foundation.exit(RemoteFailure.Kind.usage.rawValue)
        }
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch let failure as RemoteFailure {
            Console.error("error: \(failure.message)")
            Foundation.exit(failure.exitCode)
        } catch let failure as ValidationFailure {
            // A command's own refusal: one line with the same prefix as every other error.
            Console.error("error: \(failure.description)")
            Foundation.exit(ExitCode.failure.rawValue)
        } catch {
            if exitCode(for: error) == .validationFailure {
                Console.error(fullMessage(for: error))
                Foundation.exit(RemoteFailure.Kind.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
