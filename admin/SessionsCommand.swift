import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes

/// `atrium sessions`: a user's active sessions, and ending them, as the tenant's admin.
struct SessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions", abstract: "List or end a user's active sessions (remote, as the logged-in admin).", subcommands: [List.self, End.self])

    static func client(_ mode: RemoteModeOptions, _ global: GlobalOptions) throws -> RemoteClient {
        guard let client = try mode.client(global) else {
            throw RemoteFailure.usage("sessions are managed through a server: log in first (`atrium login`); on this machine, `users disable` ends them all")
        }
        return client
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A user's active sessions.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Email of the user.") var email: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var client = try SessionsCommand.client(mode, global)
            let id = try await RemoteAdmin.userID(email, &client)
            let sessions = try await client.json(.get, "admin/users/\(id.lowercasedString)/sessions", as: Page<SessionService.SessionView>.self).data
            if json { return try Console.json(sessions) }
            Console.table(["id", "started", "last used", "expires", "ip", "client"], sessions.map {
                [$0.id.lowercasedString, Console.timestamp($0.createdAt), Console.timestamp($0.lastUsedAt), Console.timestamp($0.expiresAt), $0.ip ?? "-",
                 $0.userAgent ?? "-"]
            })
        }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End every session of a user (they must log in again).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Email of the user.") var email: String

        func run() async throws {
            var client = try SessionsCommand.client(mode, global)
            let id = try await RemoteAdmin.userID(email, &client)
            _ = try await client.send(.delete, "admin/users/\(id.lowercasedString)/sessions")
            Console.line("ended every session of \(email)")
        }
    }
}
