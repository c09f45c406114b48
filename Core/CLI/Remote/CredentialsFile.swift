public import Foundation

/// One login of the console: a server, a tenant on it, and what lets the console act
/// there — a refresh token (never the password) and the access token it last got, or
/// an API key.
public struct RemoteContext: Codable, Sendable, Equatable {
    /// `<tenant>@<host>` unless `atrium login --name` chose another.
    public var name: String
    /// The server's base URL (`https://api.example.com`).
    public var server: String
    public var tenant: String
    public var email: String?
    public var refreshToken: String?
    public var accessToken: String?
    public var accessTokenExpiresAt: Date?
    public var apiKey: String?

    public init(name: String, server: String, tenant: String) {
        self.name = name
        self.server = server
        self.tenant = tenant
    }

    /// Who the context acts as, for people.
    public var principal: String { email ?? (apiKey != nil ? "API key" : "-") }
}

/// The console's logins, in `$XDG_CONFIG_HOME/atrium/credentials.json` (else
/// `~/.config/atrium/`), readable by its owner only.
///
/// A file readable by others is refused rather than used: it holds refresh tokens and
/// API keys, each as good as a password until revoked. Every change is written to a
/// new file and renamed over the old one under an exclusive lock, so two commands
/// refreshing at once never lose each other's tokens.
public struct CredentialsFile: Sendable {
    public struct Contents: Codable, Sendable, Equatable {
        public var current: String?
        public var contexts: [RemoteContext] = []

        public var currentContext: RemoteContext? { contexts.first { $0.name == current } }

        public func context(named name: String) -> RemoteContext? { contexts.first { $0.name == name } }

        /// Adds or replaces the context of that name.
        public mutating func upsert(_ context: RemoteContext) {
            contexts.removeAll { $0.name == context.name }
            contexts.append(context)
            contexts.sort { $0.name < $1.name }
        }
    }

    public let url: URL

    public init(url: URL) {
        self.url = url
    }

    /// The file in the user's config folder (`ATRIUM_CREDENTIALS` names another).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> CredentialsFile {
        if let path = environment["ATRIUM_CREDENTIALS"], !path.isEmpty { return CredentialsFile(url: URL(fileURLWithPath: path)) }
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory()).appending(path: ".config")
        return CredentialsFile(url: base.appending(path: "atrium/credentials.json"))
    }

    /// The logins; none when the file does not exist yet.
    public func read() throws(RemoteFailure) -> Contents {
        guard FileManager.default.fileExists(atPath: url.path) else { return Contents() }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else {
            throw .failure("cannot read \(url.path)")
        }
        guard mode & 0o077 == 0 else {
            throw .failure(
                "refusing to use \(url.path): its mode is \(String(mode, radix: 8)), so others can read the tokens in it; run `chmod 600 \(url.path)` (and log in again if others may have read it)")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw .failure("cannot read \(url.path)") }
        do {
            return try AtriumJSON.decoder.decode(Contents.self, from: data)
        } catch {
            throw .failure("\(url.path) is not a credentials file this console wrote; move it away and log in again")
        }
    }

    /// Reads, lets `change` edit, and writes back, holding the file's lock throughout.
    @discardableResult
    public func update<Result>(_ change: (inout Contents) throws(RemoteFailure) -> Result) throws(RemoteFailure) -> Result {
        try withLock { () throws(RemoteFailure) -> Result in
            var contents = try read()
            let result = try change(&contents)
            try write(contents)
            return result
        }
    }

    /// Runs `body` holding an exclusive lock on `credentials.lock` next to the file.
    public func withLock<Result>(_ body: () throws(RemoteFailure) -> Result) throws(RemoteFailure) -> Result {
        try makeFolder()
        let lockPath = url.deletingLastPathComponent().appending(path: "credentials.lock").path
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .failure("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw .failure("cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    private func write(_ contents: Contents) throws(RemoteFailure) {
        let encoder = AtriumJSON.encoder
        encoder.outputFormatting.insert(.prettyPrinted)
        let temporary = url.deletingLastPathComponent().appending(path: ".credentials-\(UUID().lowercasedString).json").path
        do {
            let data = try encoder.encode(contents)
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw RemoteFailure.failure("cannot write \(temporary): \(String(cString: strerror(errno)))") }
            let written = data.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            let synced = fsync(descriptor)
            close(descriptor)
            guard written == data.count, synced == 0, rename(temporary, url.path) == 0 else {
                unlink(temporary)
                throw RemoteFailure.failure("cannot write \(url.path): \(String(cString: strerror(errno)))")
            }
        } catch let failure as RemoteFailure {
            throw failure
        } catch {
            throw .failure("cannot write \(url.path): \(error)")
        }
    }

    private func makeFolder() throws(RemoteFailure) {
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .failure("cannot create \(folder.path): \(error.localizedDescription)")
        }
    }
}
