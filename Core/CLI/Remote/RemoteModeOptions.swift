public import ArgumentParser
import Foundation
import Logging

/// Where a tenant command runs, never ambiguous: remotely (over REST, as the logged-in
/// user) when `--remote`, `--context` or `--server` is given, `ATRIUM_API_KEY` is set or a
/// login is current; locally (operator mode, this machine's database) otherwise or
/// with `--local`.
public struct RemoteModeOptions: ParsableArguments {
    public init() {}

    @Flag(help: "Run on this machine's database as the operator, even while logged in to a server.") public var local = false
    @Flag(help: "Run on the server of the current login (`atrium login`).") public var remote = false
    @Option(name: .customLong("context"), help: "Run on the server of this login (`atrium context list`).") public var contextName: String?
    @Option(help: "Run on this server, with the login kept for it.") public var server: String?

    /// The client of the remote mode, or nil for the local one.
    public func client(_ global: GlobalOptions) throws -> RemoteClient? {
        let remoteAsked = remote || contextName != nil || server != nil
        if local {
            guard !remoteAsked else { throw RemoteFailure.usage("--local runs on this machine's database; it cannot be combined with --remote, --context or --server") }
            return nil
        }
        let logger = global.logger(defaultLevel: .warning)
        if let server {
            let wanted = try RemoteClient.normalizedServer(server)
            let contents = try CredentialsFile.standard().read()
            let candidates = contents.contexts.filter { $0.server == wanted }
            guard let context = candidates.first(where: { $0.name == contents.current }) ?? candidates.first else {
                throw RemoteFailure(.notLoggedIn, "not logged in to \(wanted): run `atrium login --server \(wanted) --tenant SLUG` first")
            }
            return try RemoteClient.resolve(contextName: context.name, logger: logger)
        }
        let keyInEnvironment = !(ProcessInfo.processInfo.environment["ATRIUM_API_KEY"] ?? "").isEmpty
        if try remoteAsked || keyInEnvironment || CredentialsFile.standard().read().currentContext != nil {
            return try RemoteClient.resolve(contextName: contextName, logger: logger)
        }
        return nil
    }

    /// The tenant a local command works on: `--tenant`, required in that mode.
    public static func localTenant(_ tenant: String?) throws -> String {
        guard let tenant else {
            throw RemoteFailure.usage("--tenant SLUG is required on this machine's database (not logged in; `atrium login` to work remotely)")
        }
        return tenant
    }

    /// Refuses a `--tenant` other than the login's: a login acts for one tenant.
    public static func check(_ tenant: String?, against client: RemoteClient) throws {
        if let tenant, tenant != client.context.tenant {
            throw RemoteFailure.usage(
                "the login '\(client.context.name)' is for tenant \(client.context.tenant), not \(tenant); log in to \(tenant) or pass --local")
        }
    }
}
