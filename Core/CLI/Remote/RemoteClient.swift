public import Foundation
public import HTTPTypes
public import Logging

/// The console's connection to a server's REST API, as one login (a `RemoteContext`):
/// tenant paths, credentials, the refresh of expired access tokens, and the server's
/// problem documents turned into `RemoteFailure`s.
///
/// Access tokens are refreshed when they are about to expire, or once when the server
/// answers 401; the new pair is written back to the credentials file at once. Two
/// commands refreshing the same token together both get the same successor (the
/// server's refresh grace window), so neither gets the session revoked as a replay.
public struct RemoteClient: Sendable {
    public private(set) var context: RemoteContext
    /// Where the context lives; nil for an API key given only in the environment.
    public let file: CredentialsFile?
    let http: OutboundHTTP

    public init(context: RemoteContext, file: CredentialsFile?, logger: Logger) {
        self.context = context
        self.file = file
        // The operator names the server, often on loopback or a private network.
        http = OutboundHTTP(logger: logger, policy: .anyAddress)
    }

    /// The login a command uses: `ATRIUM_API_KEY` with `ATRIUM_SERVER` and
    /// `ATRIUM_TENANT` when set, else the context named (or the current one).
    public static func resolve(
        contextName: String?, file: CredentialsFile = .standard(), environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger
    ) throws(RemoteFailure) -> RemoteClient {
        if contextName == nil, let key = environment["ATRIUM_API_KEY"], !key.isEmpty {
            guard let server = environment["ATRIUM_SERVER"], let tenant = environment["ATRIUM_TENANT"] else {
                throw .usage("ATRIUM_API_KEY needs ATRIUM_SERVER (the server's URL) and ATRIUM_TENANT (the tenant's slug) too")
            }
            var context = RemoteContext(name: "environment", server: try normalizedServer(server), tenant: tenant)
            context.apiKey = key
            return RemoteClient(context: context, file: nil, logger: logger)
        }
        let contents = try file.read()
        if let contextName {
            guard let context = contents.context(named: contextName) else {
                throw RemoteFailure(.notLoggedIn, "no login named '\(contextName)'; `atrium context list` shows them")
            }
            return RemoteClient(context: context, file: file, logger: logger)
        }
        guard let context = contents.currentContext else {
            throw RemoteFailure(.notLoggedIn, "not logged in: run `atrium login --server URL --tenant SLUG` first")
        }
        return RemoteClient(context: context, file: file, logger: logger)
    }

    /// `https://host[:port]` from what a person typed (a trailing slash, no scheme for a
    /// local server); refused when it is not an http(s) URL.
    public static func normalizedServer(_ text: String) throws(RemoteFailure) -> String {
        var text = text.trimmingCharacters(in: .whitespaces)
        if !text.contains("://") { text = (text.hasPrefix("localhost") || text.hasPrefix("127.") ? "http://" : "https://") + text }
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw .usage("'\(text)' is not a server URL (https://api.example.com)")
        }
        return text
    }

    /// The URL of `path`: absolute from the server's root when it starts with `/`,
    /// else under the tenant (`users` → `/v1/tenants/<tenant>/users`).
    public func url(_ path: String) throws(RemoteFailure) -> URL {
        let full = path.hasPrefix("/") ? path : "/v1/tenants/\(context.tenant)/\(path)"
        guard let url = URL(string: context.server + full) else { throw .usage("'\(path)' is not a path of this API") }
        return url
    }

    /// Sends a request as this login; a 2xx answer is returned, anything else thrown as
    /// the failure it means.
    public mutating func send(
        _ method: HTTPRequest.Method, _ path: String, body: Data? = nil, contentType: String = "application/json",
        headers: [(name: String, value: String)] = [], timeout: Duration = .seconds(60)
    ) async throws(RemoteFailure) -> OutboundResponse {
        let request = Attempt(method: method, path: path, body: body, contentType: contentType, headers: headers, timeout: timeout)
        var response = try await attempt(request, refreshing: false)
        if response.status == 401, context.apiKey == nil {
            response = try await attempt(request, refreshing: true)
        }
        guard (200..<300).contains(response.status) else {
            var failure = RemoteFailure.answer(response, server: context.server)
            if failure.kind == .notLoggedIn, context.apiKey == nil {
                failure.message += "\nlog in again: atrium login --server \(context.server) --tenant \(context.tenant)"
            }
            throw failure
        }
        return response
    }

    /// Sends nothing and decodes the JSON answer.
    public mutating func json<Answer: Decodable>(_ method: HTTPRequest.Method, _ path: String, as type: Answer.Type = Answer.self)
        async throws(RemoteFailure) -> Answer
    {
        try decode(try await send(method, path), path)
    }

    /// Sends `body` as JSON and decodes the JSON answer.
    public mutating func json<Answer: Decodable>(
        _ method: HTTPRequest.Method, _ path: String, body: some Encodable, as type: Answer.Type = Answer.self
    ) async throws(RemoteFailure) -> Answer {
        let data: Data
        do {
            data = try AtriumJSON.encoder.encode(body)
        } catch {
            throw .failure("cannot encode the request: \(error)")
        }
        return try decode(try await send(method, path, body: data), path)
    }

    private func decode<Answer: Decodable>(_ response: OutboundResponse, _ path: String) throws(RemoteFailure) -> Answer {
        do {
            return try AtriumJSON.decoder.decode(Answer.self, from: response.body)
        } catch {
            throw .failure("\(context.server) answered \(path) with something this console does not understand (a newer or older server?)")
        }
    }

    struct Attempt {
        var method: HTTPRequest.Method
        var path: String
        var body: Data?
        var contentType: String
        var headers: [(name: String, value: String)]
        var timeout: Duration
    }

    private mutating func attempt(_ request: Attempt, refreshing: Bool) async throws(RemoteFailure) -> OutboundResponse {
        var headers: [(name: String, value: String)] = [("Accept", "application/json, application/problem+json")]
        if request.body != nil { headers.append(("Content-Type", request.contentType)) }
        if let key = context.apiKey {
            headers.append(("X-Api-Key", key))
        } else {
            headers.append(("Authorization", "Bearer \(try await accessToken(refreshing: refreshing))"))
        }
        return try await exchange(OutboundRequest(
            request.method, try url(request.path), headers: headers + request.headers, body: request.body, timeout: request.timeout, maxResponseBytes: 64 << 20))
    }

    /// Sends one request without credentials (login, refresh); network failures name the server.
    public func exchange(_ request: OutboundRequest) async throws(RemoteFailure) -> OutboundResponse {
        do {
            return try await http.send(request)
        } catch {
            throw .failure("cannot reach \(context.server): \(error)")
        }
    }

    /// A live access token: the stored one unless it expires within 30 s (or `refreshing`),
    /// else a refreshed pair, stored before it is used.
    mutating func accessToken(refreshing: Bool) async throws(RemoteFailure) -> String {
        if let file, let stored = try file.read().context(named: context.name) {
            // Another command may have refreshed since this one started.
            context = stored
        }
        if !refreshing, let token = context.accessToken, let expiry = context.accessTokenExpiresAt, expiry > Date().addingTimeInterval(30) {
            return token
        }
        guard let refreshToken = context.refreshToken else {
            throw RemoteFailure(.notLoggedIn, "not logged in to \(context.server) as tenant \(context.tenant)")
        }
        let body = try? AtriumJSON.encoder.encode(["refresh_token": refreshToken])
        let response = try await exchange(OutboundRequest(
            .post, try url("auth/refresh"), headers: [("Content-Type", "application/json")], body: body, timeout: .seconds(30)))
        guard response.status == 200, let pair = try? AtriumJSON.decoder.decode(TokenPair.self, from: response.body) else {
            if response.status == 401 || response.status == 400 {
                throw RemoteFailure(
                    .notLoggedIn,
                    "your login to \(context.server) (tenant \(context.tenant)) has ended; log in again: atrium login --server \(context.server) --tenant \(context.tenant)")
            }
            throw RemoteFailure.answer(response, server: context.server)
        }
        try store(pair)
        return pair.accessToken
    }

    /// Keeps `pair` as this context's tokens, in memory and in the file (unless the
    /// context was logged out meanwhile).
    mutating func store(_ pair: TokenPair) throws(RemoteFailure) {
        context.accessToken = pair.accessToken
        context.refreshToken = pair.refreshToken
        context.accessTokenExpiresAt = Date().addingTimeInterval(TimeInterval(pair.expiresIn))
        guard let file else { return }
        let updated = context
        try file.update { (contents: inout CredentialsFile.Contents) throws(RemoteFailure) in
            guard contents.context(named: updated.name) != nil else { return }
            contents.upsert(updated)
        }
    }
}
