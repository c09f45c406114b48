public import Foundation
public import Logging
import PostgresNIO

/// A private PostgreSQL cluster under the data folder, for `make run` and the tests.
///
/// It is created on first use with the installed server binaries, keeps its data
/// across runs, and is shared by every `atrium` command pointed at the same folder:
/// a command finds it running (and connects) or starts it for its own duration.
/// Roles follow the security model: a superuser used only to bootstrap, an owner
/// role that runs migrations and owns the tables, and an application role that
/// owns nothing and cannot bypass row-level security.
public struct EmbeddedPostgres: Sendable {
    public static let databaseName = "atrium"
    public static let ownerRole = "atrium_owner"
    public static let appRole = "atrium_app"
    static let superuser = "atrium_superuser"

    /// Connection secrets and the port, kept in `<data>/database.json` (mode 0600).
    struct Credentials: Codable {
        var port: Int
        var superuserPassword: String
        var ownerPassword: String
        var appPassword: String
    }

    public let dataDirectory: URL
    let logger: Logger

    public init(dataDirectory: URL, logger: Logger) {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.logger = logger
    }

    var clusterDirectory: URL { dataDirectory.appending(path: "postgres") }
    var credentialsFile: URL { dataDirectory.appending(path: "database.json") }
    var serverLog: URL { clusterDirectory.appending(path: "server.log") }

    /// The owner and application URLs of the cluster (initialised, not necessarily running).
    public func urls() throws -> (app: DatabaseURL, owner: DatabaseURL) {
        let credentials = try loadCredentials()
        return (url(Self.appRole, credentials.appPassword, credentials), url(Self.ownerRole, credentials.ownerPassword, credentials))
    }

    /// The bootstrap superuser's URL, for test harnesses that create a database per suite.
    public func superuserURL(database: String = "postgres") throws -> DatabaseURL {
        let credentials = try loadCredentials()
        return DatabaseURL(
            username: Self.superuser, password: credentials.superuserPassword, host: "127.0.0.1", port: credentials.port, database: database)
    }

    public var isInitialized: Bool {
        FileManager.default.fileExists(atPath: clusterDirectory.appending(path: "PG_VERSION").path())
            && FileManager.default.fileExists(atPath: credentialsFile.path())
    }

    /// Whether a postmaster is running on the cluster.
    public func isRunning() throws -> Bool {
        guard isInitialized else { return false }
        let binaries = try PostgresBinaries.locate()
        return try runner().run(binaries.pgCtl, ["status", "-D", clusterDirectory.path()]).status == 0
    }

    /// Initialises the cluster if needed and starts it unless it is already running.
    /// - Returns: true when this call started the server, so the caller should stop it.
    @discardableResult
    ///
    /// A cluster left running by an `atrium` process that no longer exists (killed with
    /// SIGKILL, say) is adopted: this call then answers true, and the caller stops it on
    /// exit as its starter would have. With `persistent` (`atrium db start`) the cluster
    /// is nobody's to stop but `atrium db stop`'s.
    public func start(persistent: Bool = false) async throws -> Bool {
        let binaries = try PostgresBinaries.locate()
        let credentials = try isInitialized ? loadCredentials() : initialize(binaries)
        if try runner().run(binaries.pgCtl, ["status", "-D", clusterDirectory.path()]).status == 0 {
            guard !persistent, let orphan = orphanedStarter() else { return false }
            logger.warning("adopting embedded PostgreSQL left running by a process that is gone; it stops when this one exits", metadata: [
                "db.directory": "\(clusterDirectory.path())", "db.started_by": "\(orphan)",
            ])
            recordStarter(persistent: false)
            return true
        }
        logger.info("starting embedded PostgreSQL", metadata: ["db.port": "\(credentials.port)", "db.directory": "\(clusterDirectory.path())"])
        // Room for several servers, workers and a parallel test suite on one development
        // machine, and memory settings sized for the box (see `EmbeddedTuning`).
        let tuning = EmbeddedTuning(memoryBytes: ProcessInfo.processInfo.physicalMemory, statStatements: binaries.hasStatStatements)
        let options = "-c listen_addresses=127.0.0.1 -p \(credentials.port) -c unix_socket_directories='\(socketDirectory ?? "")' -c max_connections=500 "
            + tuning.options.map { "-c \($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        let result = try runner().run(
            binaries.pgCtl, ["start", "-D", clusterDirectory.path(), "-l", serverLog.path(), "-w", "-t", "60", "-o", options])
        if result.status != 0 {
            // Another command may have started it at the same moment; that is fine.
            if try runner().run(binaries.pgCtl, ["status", "-D", clusterDirectory.path()]).status == 0 { return false }
            let tail = (try? String(contentsOf: serverLog, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
            throw ConfigurationError(
                "embedded PostgreSQL did not start (port \(credentials.port) may be taken; see \(serverLog.path())): \(tail)")
        }
        recordStarter(persistent: persistent)
        try await bootstrapRoles(credentials, statStatements: tuning.statStatements)
        return true
    }

    // MARK: - Who stops the cluster

    var starterFile: URL { dataDirectory.appending(path: "postgres.starter") }

    /// Notes which process will stop the cluster: this one's pid, or `persistent`.
    private func recordStarter(persistent: Bool) {
        let text = persistent ? "persistent" : String(getpid())
        do {
            try Data(text.utf8).write(to: starterFile, options: .atomic)
        } catch {
            logger.warning("cannot record who started embedded PostgreSQL", metadata: ["error": "\(error)"])
        }
    }

    /// The pid of the `atrium` process that started the running cluster, when that process
    /// is gone; nil when it lives, when the cluster is persistent or its starter unknown.
    func orphanedStarter() -> Int32? {
        guard let text = try? String(contentsOf: starterFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            pid > 0, pid != getpid()
        else { return nil }
        // A live process of that pid counts only if it is still an atrium (pids are reused).
        if kill(pid, 0) == 0 || errno == EPERM {
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            if command.contains("atrium") { return nil }
        }
        return pid
    }

    /// Stops the server cleanly (fast shutdown: sessions end, data is checkpointed).
    public func stop() throws {
        let binaries = try PostgresBinaries.locate()
        logger.info("stopping embedded PostgreSQL", metadata: ["db.directory": "\(clusterDirectory.path())"])
        let result = try runner().run(binaries.pgCtl, ["stop", "-D", clusterDirectory.path(), "-m", "fast", "-w", "-t", "60"])
        try? FileManager.default.removeItem(at: starterFile)
        if result.status != 0 {
            throw ConfigurationError("embedded PostgreSQL did not stop: \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    // MARK: - First start

    private func initialize(_ binaries: PostgresBinaries) throws -> Credentials {
        let files = FileManager.default
        try files.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        if files.fileExists(atPath: clusterDirectory.path()) {
            let contents = try files.contentsOfDirectory(atPath: clusterDirectory.path())
            guard contents.isEmpty else {
                throw ConfigurationError("\(clusterDirectory.path()) exists but holds no complete Atrium cluster; move it away and retry")
            }
        }
        let credentials = Credentials(
            port: try LocalPort.free(),
            superuserPassword: SecureRandom.hex(bytes: 24),
            ownerPassword: SecureRandom.hex(bytes: 24),
            appPassword: SecureRandom.hex(bytes: 24))
        let passwordFile = dataDirectory.appending(path: ".initdb-password")
        try Data(credentials.superuserPassword.utf8).write(to: passwordFile)
        defer { try? files.removeItem(at: passwordFile) }
        try files.createDirectory(at: clusterDirectory, withIntermediateDirectories: true)
        if let user = osUser {
            // initdb refuses to run as root; the cluster belongs to the postgres OS user,
            // which must be able to reach the data folder.
            try chown(clusterDirectory, to: user)
            try chown(passwordFile, to: user)
            try files.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dataDirectory.path())
        }
        try files.setAttributes([.posixPermissions: 0o700], ofItemAtPath: clusterDirectory.path())
        if osUser != nil, try runner().run("/usr/bin/test", ["-w", clusterDirectory.path()]).status != 0 {
            try? files.removeItem(at: clusterDirectory)
            throw ConfigurationError(
                "the postgres OS user cannot reach \(clusterDirectory.path()) (a parent folder is closed to other users); "
                    + "set ATRIUM_DATA_DIR to a folder it can enter, for example /var/lib/atrium")
        }
        logger.info("initialising embedded PostgreSQL cluster", metadata: ["db.directory": "\(clusterDirectory.path())"])
        let result = try runner().run(
            binaries.initdb,
            [
                "-D", clusterDirectory.path(), "-U", Self.superuser, "--pwfile", passwordFile.path(),
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions",
            ])
        guard result.status == 0 else {
            throw ConfigurationError("initdb failed: \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let data = try AtriumJSON.encoder.encode(credentials)
        try data.write(to: credentialsFile, options: .atomic)
        try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: credentialsFile.path())
        return credentials
    }

    /// Creates the owner and application roles and the database; safe to repeat.
    private func bootstrapRoles(_ credentials: Credentials, statStatements: Bool) async throws {
        var configuration = PostgresConnection.Configuration(
            host: "127.0.0.1", port: credentials.port, username: Self.superuser,
            password: credentials.superuserPassword, database: "postgres", tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            for (role, password, attributes) in [
                (Self.ownerRole, credentials.ownerPassword, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"),
                (Self.appRole, credentials.appPassword, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"),
            ] {
                let exists = try await connection.query("SELECT 1 FROM pg_roles WHERE rolname = \(role)", logger: logger)
                    .collect().isEmpty == false
                // Role names are constants; the password literal is quoted by the server's format(%L).
                let verb = exists ? "ALTER" : "CREATE"
                let statement = try await connection.query(
                    "SELECT format('\(unescaped: verb) ROLE %I \(unescaped: attributes) PASSWORD %L', \(role)::text, \(password)::text)",
                    logger: logger
                ).collect().first?.decode(String.self) ?? ""
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            let hasDatabase = try await connection.query(
                "SELECT 1 FROM pg_database WHERE datname = \(Self.databaseName)", logger: logger
            ).collect().isEmpty == false
            if !hasDatabase {
                try await connection.query(
                    PostgresQuery(unsafeSQL: "CREATE DATABASE \(Self.databaseName) OWNER \(Self.ownerRole)"), logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "REVOKE ALL ON DATABASE \(Self.databaseName) FROM PUBLIC"), logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "GRANT CONNECT, TEMPORARY ON DATABASE \(Self.databaseName) TO \(Self.appRole)"),
                    logger: logger)
            }
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
        if statStatements { try await createStatStatements(credentials) }
    }

    /// `pg_stat_statements` in the application database, readable by the owner role, so
    /// `make bench` (and an operator) can count the statements each request costs.
    private func createStatStatements(_ credentials: Credentials) async throws {
        var configuration = PostgresConnection.Configuration(
            host: "127.0.0.1", port: credentials.port, username: Self.superuser,
            password: credentials.superuserPassword, database: Self.databaseName, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
        do {
            try await connection.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "GRANT pg_read_all_stats TO \(Self.ownerRole)"), logger: logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }

    // MARK: - Helpers

    private func loadCredentials() throws -> Credentials {
        do {
            return try AtriumJSON.decoder.decode(Credentials.self, from: Data(contentsOf: credentialsFile))
        } catch {
            throw ConfigurationError("cannot read \(credentialsFile.path()): \(error.localizedDescription)")
        }
    }

    private func url(_ role: String, _ password: String, _ credentials: Credentials) -> DatabaseURL {
        var url = DatabaseURL(username: role, password: password, host: "127.0.0.1", port: credentials.port, database: Self.databaseName)
        // A cluster started by an older build has no socket; its connections stay on TCP.
        if let socketDirectory, FileManager.default.fileExists(atPath: "\(socketDirectory)/.s.PGSQL.\(credentials.port)") {
            url.socketDirectory = socketDirectory
        }
        return url
    }

    /// Where the cluster puts its Unix socket (its own directory), unless that path is too
    /// long or odd for one: then it listens on TCP only.
    var socketDirectory: String? {
        let directory = clusterDirectory.path()
        return Self.socketDirectoryIsUsable(directory) ? directory : nil
    }

    /// Whether PostgreSQL can put its socket in `directory`: the socket's path fits in
    /// `sun_path` (108 bytes, with `/.s.PGSQL.65535` and a NUL), and the directory goes
    /// into `pg_ctl`'s shell command inside single quotes, so only plain characters.
    static func socketDirectoryIsUsable(_ directory: String) -> Bool {
        directory.hasPrefix("/") && directory.utf8.count <= 90 && directory.utf8.allSatisfy(plainPathBytes.contains)
    }

    private static let plainPathBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-".utf8)

    /// The OS user the server tools run as: `postgres` when we are root, else ourselves.
    private var osUser: String? { geteuid() == 0 ? "postgres" : nil }

    private func runner() throws -> ProcessRunner {
        if let user = osUser, getpwnam(user) == nil {
            throw ConfigurationError("running as root needs the '\(user)' OS user to own the embedded cluster; install the postgresql package")
        }
        return ProcessRunner(runAsUser: osUser)
    }

    private func chown(_ url: URL, to user: String) throws {
        guard let entry = getpwnam(user) else { throw ConfigurationError("no OS user named '\(user)'") }
        guard Foundation.chown(url.path(), entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw ConfigurationError("cannot give \(url.path()) to the '\(user)' OS user")
        }
    }
}
