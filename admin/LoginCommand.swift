import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging

/// `atrium login`: a tenant's user (or an API key) logs the console in to a server.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Log in to an Atrium server as a user of a tenant, for the remote commands.",
        discussion: """
            Asks for the email and password (hidden) and, when the account has TOTP, the code. Keeps \
            the refresh token, never the password, in $XDG_CONFIG_HOME/atrium/credentials.json \
            (mode 0600). With --api-key (or $ATRIUM_API_KEY) the key is kept instead. Several \
            logins can be kept; the last one becomes current (`atrium context`).
            """)

    @Option(help: "The server's URL (https://api.example.com).") var server: String
    @Option(help: "The tenant's slug.") var tenant: String
    @Option(help: "Email of the account (asked when not given).") var email: String?
    @Flag(help: "Read the password from the first line of standard input (and a TOTP code from the second).") var passwordStdin = false
    @Option(help: "The TOTP (or recovery) code, when the account has TOTP; asked when needed and not given.") var code: String?
    @Option(help: "Log in with this API key instead of a password (also $ATRIUM_API_KEY).") var apiKey: String?
    @Option(help: "A name for this login (default: <tenant>@<host>).") var name: String?
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.logger(defaultLevel: .warning)
        let server = try RemoteClient.normalizedServer(self.server)
        let host = URL(string: server).map { url in url.host.map { $0 + (url.port.map { ":\($0)" } ?? "") } ?? server } ?? server
        var context = RemoteContext(name: name ?? "\(tenant)@\(host)", server: server, tenant: tenant)
        let file = CredentialsFile.standard()
        _ = try file.read()  // refuse a file others can read before asking for anything
        if let key = apiKey ?? ProcessInfo.processInfo.environment["ATRIUM_API_KEY"].flatMap({ $0.isEmpty ? nil : $0 }) {
            context.apiKey = key
            var client = RemoteClient(context: context, file: nil, logger: logger)
            let me = try? await client.json(.get, "auth/me", as: WhoamiCommand.Me.self)
            if me == nil { _ = try await client.send(.get, "") }  // a key acting for no user: the tenant answers
            context.email = me?.user.email
        } else {
            let client = RemoteClient(context: context, file: nil, logger: logger)
            let (email, pair) = try await passwordLogin(client)
            context.email = email
            context.refreshToken = pair.refreshToken
            context.accessToken = pair.accessToken
            context.accessTokenExpiresAt = Date().addingTimeInterval(TimeInterval(pair.expiresIn))
        }
        let saved = context
        try file.update { contents in
            contents.upsert(saved)
            contents.current = saved.name
        }
        Console.line("Logged in to \(server) as \(context.principal) (tenant \(tenant)); remote commands use the login '\(context.name)'.")
    }

    private func passwordLogin(_ client: RemoteClient) async throws -> (email: String, pair: TokenPair) {
        guard let email = email ?? TerminalInput.ask("Email: ").flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw RemoteFailure.usage("no terminal to ask for the email: pass --email")
        }
        let password: String
        if passwordStdin {
            guard let line = TerminalInput.standardInputLine() else { throw RemoteFailure.usage("no password on standard input") }
            password = line
        } else {
            guard let typed = TerminalInput.ask("Password: ", hidden: true) else {
                throw RemoteFailure.usage("no terminal to ask for the password: use --password-stdin")
            }
            password = typed
        }
        let answer = try await post(client, "auth/login", ["email": email, "password": password])
        if answer.status == 200 { return (email, try decodePair(answer, client)) }
        let problem = try? AtriumJSON.decoder.decode(Challenge.self, from: answer.body)
        guard answer.status == 401, problem?.code == "mfa_required", let challenge = problem?.challengeToken else {
            throw loginFailure(answer, client)
        }
        let code = self.code ?? (passwordStdin ? TerminalInput.standardInputLine() : TerminalInput.ask("Authentication code: "))
        guard let code, !code.isEmpty else { throw RemoteFailure.usage("this account has TOTP: pass --code or type the code when asked") }
        let field = code.count > 8 ? "recovery_code" : "code"
        let verified = try await post(client, "auth/mfa/verify", ["challenge_token": challenge, field: code])
        guard verified.status == 200 else { throw loginFailure(verified, client) }
        return (email, try decodePair(verified, client))
    }

    struct Challenge: Decodable {
        var code: String?
        var challengeToken: String?
    }

    private func post(_ client: RemoteClient, _ path: String, _ body: [String: String]) async throws -> OutboundResponse {
        try await client.exchange(OutboundRequest(
            .post, try client.url(path), headers: [("Content-Type", "application/json")],
            body: try AtriumJSON.encoder.encode(body), timeout: .seconds(60)))
    }

    private func decodePair(_ response: OutboundResponse, _ client: RemoteClient) throws -> TokenPair {
        guard let pair = try? AtriumJSON.decoder.decode(TokenPair.self, from: response.body) else {
            throw RemoteFailure.failure("\(client.context.server) did not answer the login with tokens: is it an Atrium server?")
        }
        return pair
    }

    /// A refused login is a failure (exit 1), not "not logged in".
    private func loginFailure(_ response: OutboundResponse, _ client: RemoteClient) -> RemoteFailure {
        response.status == 401 ? .failure("login refused: \(RemoteFailure.describe(response))") : RemoteFailure.answer(response, server: client.context.server)
    }
}
