import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging

/// Which login a remote command uses: `--context NAME`, else the current one (or
/// `ATRIUM_API_KEY` with `ATRIUM_SERVER` and `ATRIUM_TENANT`).
struct RemoteOptions: ParsableArguments {
    @Option(name: .customLong("context"), help: "The login to use (default: the current one; `atrium context list`).")
    var contextName: String?

    func client(_ global: GlobalOptions) throws -> RemoteClient {
        try RemoteClient.resolve(contextName: contextName, logger: global.logger(defaultLevel: .warning))
    }
}

/// `atrium whoami`: who the next remote command acts as, and where.
struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show the server, tenant, user and roles the remote commands use, and which mode the next command runs in.")

    @OptionGroup var remote: RemoteOptions
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false

    struct Me: Codable {
        var user: User
        var permissions: [String]
    }

    struct Answer: Codable {
        var context: String
        var server: String
        var tenant: String
        var user: String
        var roles: [String]
        var permissions: [String]
        var mode: String
    }

    func run() async throws {
        var client = try loggedIn()
        let me = try? await client.json(.get, "auth/me", as: Me.self)
        if me == nil { _ = try await client.send(.get, "") }  // an API key of no user: still a live login
        let answer = Answer(
            context: client.context.name, server: client.context.server, tenant: client.context.tenant,
            user: me?.user.email ?? client.context.principal, roles: me?.user.roles ?? [], permissions: me?.permissions ?? [],
            mode: "remote")
        if json { return try Console.json(answer) }
        Console.line("server:  \(answer.server)")
        Console.line("tenant:  \(answer.tenant)")
        Console.line("user:    \(answer.user)\(client.context.apiKey != nil ? " (API key)" : "")")
        Console.line("roles:   \(answer.roles.isEmpty ? "-" : answer.roles.joined(separator: ", "))")
        Console.line("mode:    remote, login '\(answer.context)' (tenant commands go to this server; --local runs them on this machine's database)")
    }

    /// The login, or "not logged in" saying where commands run instead.
    private func loggedIn() throws -> RemoteClient {
        do {
            return try remote.client(global)
        } catch {
            guard let failure = error as? RemoteFailure, failure.kind == .notLoggedIn, remote.contextName == nil else { throw error }
            throw RemoteFailure(
                .notLoggedIn,
                "not logged in: tenant commands run locally, against this machine's database (operator mode); `atrium login --server URL --tenant SLUG` to work remotely")
        }
    }
}

/// `atrium logout`: ends the session on the server, then forgets the login.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "End the session on the server and forget the login (an API key is only forgotten; revoke it with api-keys revoke).")

    @OptionGroup var remote: RemoteOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        var client = try remote.client(global)
        guard let file = client.file else {
            throw RemoteFailure.usage("the login comes from ATRIUM_API_KEY; unset it (and revoke the key with `atrium api-keys revoke`) instead")
        }
        if client.context.apiKey == nil {
            do {
                _ = try await client.send(.post, "auth/logout")
            } catch {
                // Already ended on the server (401): only forgetting is left.
                guard error.kind == .notLoggedIn else { throw error }
            }
        }
        let name = client.context.name
        try file.update { contents in
            contents.contexts.removeAll { $0.name == name }
            if contents.current == name { contents.current = nil }
        }
        Console.line("Logged out of \(client.context.server) (tenant \(client.context.tenant)); the login '\(name)' is forgotten.")
    }
}

/// `atrium context list|use`: the kept logins, and which one is current.
struct ContextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context", abstract: "List the kept logins, or choose the one remote commands use.", subcommands: [List.self, Use.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the kept logins; * marks the current one.")
        @Flag(help: "Print JSON.") var json = false

        struct Row: Codable {
            var name: String
            var server: String
            var tenant: String
            var user: String
            var current: Bool
        }

        func run() async throws {
            let contents = try CredentialsFile.standard().read()
            let rows = contents.contexts.map { Row(name: $0.name, server: $0.server, tenant: $0.tenant, user: $0.principal, current: $0.name == contents.current) }
            if json { return try Console.json(rows) }
            Console.table(["", "name", "server", "tenant", "user"], rows.map { [$0.current ? "*" : "", $0.name, $0.server, $0.tenant, $0.user] })
        }
    }

    struct Use: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a kept login the current one.")
        @Argument(help: "The login's name.") var name: String

        func run() async throws {
            let name = self.name
            try CredentialsFile.standard().update { (contents: inout CredentialsFile.Contents) throws(RemoteFailure) in
                guard contents.context(named: name) != nil else {
                    throw RemoteFailure.usage("no login named '\(name)'; logins: \(contents.contexts.map(\.name).joined(separator: ", "))")
                }
                contents.current = name
            }
            Console.line("Remote commands now use the login '\(name)'.")
        }
    }
}
