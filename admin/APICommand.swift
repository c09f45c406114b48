import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes

/// `atrium api METHOD PATH`: any route, as the logged-in user (like `gh api`), for what
/// has no command of its own yet.
struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "Call any route of the API as the logged-in user and print the JSON it answers.",
        discussion: """
            PATH is under the tenant: `auth/me` and `/auth/me` are both /v1/tenants/<tenant>/auth/me, \
            as in `gh api`. A path starting with /v1/ (or /healthz, /readyz, /metrics) is from the \
            server's root. A refused call prints the server's problem document on standard output \
            and what it means on standard error.
            """)

    @Argument(help: "GET, POST, PUT, PATCH or DELETE.") var method: String
    @Argument(help: "The route: under the tenant (a leading / is optional), or from the server's root when it starts with /v1/.") var path: String
    @Option(name: [.customShort("d"), .long], help: "The JSON body, or @FILE to read it from a file (@- for standard input).") var data: String?
    @Option(name: [.customShort("H"), .customLong("header")], help: "An extra header, 'Name: value' (repeatable; e.g. Idempotency-Key).")
    var headers: [String] = []
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let allowed: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete]
        guard let method = HTTPRequest.Method(method.uppercased()), allowed.contains(method) else {
            throw RemoteFailure.usage("'\(self.method)' is not one of GET, POST, PUT, PATCH, DELETE")
        }
        let extra = try headers.map { header -> (name: String, value: String) in
            guard let colon = header.firstIndex(of: ":"), colon != header.startIndex else {
                throw RemoteFailure.usage("header '\(header)' is not 'Name: value'")
            }
            return (String(header[..<colon]), header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = try data.map(Self.body)
        var client = try remote.client(global)
        do {
            let response = try await client.send(method, Self.route(path), body: body, headers: extra)
            Self.printBody(response.body)
        } catch {
            if let body = error.body { Self.printBody(body) }
            throw error
        }
    }

    /// The path `RemoteClient` takes (a leading / means the server's root): a tenant path
    /// loses its optional leading slash; `/v1/…` and the health routes keep theirs.
    static func route(_ path: String) -> String {
        let rootPaths = ["/v1/", "/healthz", "/readyz", "/metrics"]
        guard path.hasPrefix("/"), !rootPaths.contains(where: { path.hasPrefix($0) }) else { return path }
        return String(path.drop { $0 == "/" })
    }

    /// `--data`: the JSON itself, or `@file` / `@-`.
    static func body(_ data: String) throws -> Data {
        guard data.hasPrefix("@") else { return Data(data.utf8) }
        let path = String(data.dropFirst())
        if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        guard let contents = FileManager.default.contents(atPath: path) else { throw RemoteFailure.usage("cannot read \(path)") }
        return contents
    }

    /// JSON indented for people; anything else as it came.
    static func printBody(_ body: Data) {
        guard !body.isEmpty else { return }
        if let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        {
            Console.line(String(decoding: pretty, as: UTF8.self))
        } else {
            Console.raw(String(decoding: body, as: UTF8.self))
        }
    }
}
