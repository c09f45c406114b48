/// One versioned SQL file of the kernel or of a module.
public struct Migration: Sendable, Equatable {
    /// `kernel` or the module id whose schema this migration belongs to.
    public var owner: String
    public var version: Int
    /// The file name, used in every message about this migration.
    public var fileName: String
    public var sql: String

    public init(owner: String, version: Int, fileName: String, sql: String) {
        self.owner = owner
        self.version = version
        self.fileName = fileName
        self.sql = sql
    }

    /// Builds migrations from `NNNN_description.sql` files, as embedded by the build plugin.
    public static func fromFiles(_ files: [(name: String, sql: String)], owner: String) throws(ConfigurationError) -> [Migration] {
        var seen: [Int: String] = [:]
        return try files.map { file throws(ConfigurationError) in
            let prefix = file.name.prefix { $0.isNumber }
            guard let version = Int(prefix), file.name.hasSuffix(".sql") else {
                throw ConfigurationError("migration \(file.name) of \(owner) must be named NNNN_description.sql")
            }
            if let other = seen[version] {
                throw ConfigurationError("migrations \(other) and \(file.name) of \(owner) share version \(version)")
            }
            seen[version] = file.name
            return Migration(owner: owner, version: version, fileName: file.name, sql: file.sql)
        }.sorted { $0.version < $1.version }
    }

    /// The kernel's own migrations, from the top-level `migrations/` folder.
    public static func kernel() throws(ConfigurationError) -> [Migration] {
        try fromFiles(EmbeddedMigrations.files, owner: "kernel")
    }
}
