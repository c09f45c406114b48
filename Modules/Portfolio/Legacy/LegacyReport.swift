import Foundation

/// What an import of the legacy stores did, or would do (`dry_run`): per entity, rows
/// created, unchanged, updated and rejected; each rejection by file and JSON Pointer;
/// warnings (unknown fields kept, withdrawals above the cash, users linked rather than
/// made); and what became of each user's password.
struct LegacyReport: Codable, Sendable {
    struct Counts: Codable, Sendable, Equatable {
        var created = 0
        var unchanged = 0
        var updated = 0
        var rejected = 0
    }

    struct Finding: Codable, Sendable, Equatable {
        var file: String
        var pointer: String
        var message: String
    }

    struct Password: Codable, Sendable, Equatable {
        var email: String
        /// `kept` (bcrypt or salted SHA-256: upgraded to Argon2id at first login) or
        /// `dropped` (any other scheme: the user resets by email).
        var treatment: String
    }

    var dryRun: Bool
    /// Whether the import's writes were committed (false for a dry run and for an
    /// all-or-nothing import that rejected something).
    var committed = false
    var entities: [String: Counts] = [:]
    var rejections: [Finding] = []
    var warnings: [Finding] = []
    var passwords: [Password] = []

    mutating func count(_ entity: String, _ keyPath: WritableKeyPath<Counts, Int>) {
        entities[entity, default: Counts()][keyPath: keyPath] += 1
    }

    /// The report for a terminal: counts per entity, then each rejection and warning.
    var lines: [String] {
        var lines = [(dryRun ? "dry run: nothing was written" : committed ? "imported" : "nothing was imported (rejections; --skip-invalid imports the rest)")]
        for (entity, counts) in entities.sorted(by: { $0.key < $1.key }) {
            lines.append("\(entity): \(counts.created) created, \(counts.unchanged) unchanged, \(counts.updated) updated, \(counts.rejected) rejected")
        }
        lines += rejections.map { "rejected \($0.file)#\($0.pointer): \($0.message)" }
        lines += warnings.map { "warning \($0.file)#\($0.pointer): \($0.message)" }
        lines += passwords.map { "password of \($0.email): \($0.treatment)" }
        return lines
    }
}
