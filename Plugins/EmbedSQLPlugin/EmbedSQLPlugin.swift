import Foundation
import PackagePlugin

/// Embeds a target's SQL migrations into its binary as Swift constants.
///
/// The kernel keeps its migrations in the package's top-level `migrations/` folder and
/// each module keeps them in a `migrations/` folder beside its code. Embedding them means
/// the `atrium` binary finds its SQL from any working directory and when installed elsewhere.
@main
struct EmbedSQLPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let folder: URL
        if target.name == "AtriumCore" {
            folder = context.package.directoryURL.appending(path: "migrations")
        } else {
            folder = target.directoryURL.appending(path: "migrations")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path())) ?? []
        var inputs = names.filter { $0.hasSuffix(".sql") }.sorted().map { folder.appending(path: $0) }
        if target.name == "AtriumCore" {
            // The shipped plan catalog, the server's fallback when its tenants folder has none.
            inputs.append(context.package.directoryURL.appending(path: "tenants/plans.yaml"))
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(inputs.count) SQL migrations of \(target.name)",
                executable: try context.tool(named: "EmbedSQL").url,
                arguments: [output.path()] + inputs.map { $0.path() },
                inputFiles: inputs + [folder],
                outputFiles: [output]
            )
        ]
    }
}
