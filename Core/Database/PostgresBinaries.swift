import Foundation

/// Where the PostgreSQL server programs are installed.
struct PostgresBinaries: Sendable {
    var directory: String
    var initdb: String { directory + "/initdb" }
    var pgCtl: String { directory + "/pg_ctl" }
    /// Whether the server can preload `pg_stat_statements` (Debian ships it with the server).
    var hasStatStatements: Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).deletingLastPathComponent().appending(path: "lib/pg_stat_statements.so").path())
    }

    /// Finds the server binaries: `ATRIUM_PG_BINDIR`, then Debian's versioned folders
    /// (newest first), then the usual install prefixes.
    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresBinaries {
        if let configured = environment["ATRIUM_PG_BINDIR"], !configured.isEmpty {
            // An explicit setting is obeyed, never silently replaced by another install.
            guard FileManager.default.isExecutableFile(atPath: configured + "/initdb"),
                FileManager.default.isExecutableFile(atPath: configured + "/pg_ctl")
            else {
                throw ConfigurationError("ATRIUM_PG_BINDIR=\(configured) does not contain the PostgreSQL server binaries initdb and pg_ctl")
            }
            return PostgresBinaries(directory: configured)
        }
        var candidates: [String] = []
        let debian = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debian)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        candidates += versions.map { "\(debian)/\($0)/bin" }
        candidates += ["/usr/local/pgsql/bin", "/usr/local/bin", "/usr/bin"]
        for directory in candidates where FileManager.default.isExecutableFile(atPath: directory + "/initdb")
            && FileManager.default.isExecutableFile(atPath: directory + "/pg_ctl")
        {
            return PostgresBinaries(directory: directory)
        }
        throw ConfigurationError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found in \(candidates.joined(separator: ", ")); "
                + "install Debian's postgresql package (make run does) or set ATRIUM_PG_BINDIR, "
                + "or point DATABASE_URL and DATABASE_OWNER_URL at an existing server")
    }
}
