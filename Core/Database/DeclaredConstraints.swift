import Foundation
public import HTTPTypes
public import Logging
import PostgresNIO
import Synchronization

/// What a module's migration says a constraint means to a client, next to the
/// constraint itself:
///
/// ```sql
/// ALTER TABLE beauty_bookings ADD CONSTRAINT beauty_bookings_no_overlap
///     EXCLUDE USING gist (resource_id WITH =, slot WITH &&);
/// COMMENT ON CONSTRAINT beauty_bookings_no_overlap ON beauty_bookings IS
///     'problem: 409 slot_taken starts_at this time overlaps another booking';
/// ```
///
/// The comment reads `problem: <status> <code> <field> <message>`. When the constraint
/// refuses a write, the client gets that problem instead of the generic mapping of
/// `DatabaseProblems` (which still answers every constraint without a comment: unique →
/// 409, foreign key → 422, exclusion → 409, check → 422). Comments are read on the first
/// refusal by each constraint, on the error path only, and cached for the process.
public final class DeclaredConstraints: Sendable {
    /// A parsed `problem:` comment.
    public struct Declaration: Sendable, Equatable {
        public var status: HTTPResponse.Status
        public var code: String
        public var field: String
        public var message: String

        /// Parses a comment; nil for one that is not a `problem:` declaration.
        public init?(comment: String) {
            let trimmed = comment.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.hasPrefix("problem:") else { return nil }
            let parts = trimmed.dropFirst("problem:".count).split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
            guard parts.count == 4, let status = Int(parts[0]), (400...499).contains(status), parts[1].allSatisfy({ $0.isLetter || $0 == "_" })
            else { return nil }
            self.status = HTTPResponse.Status(code: status)
            self.code = String(parts[1])
            self.field = String(parts[2])
            self.message = String(parts[3])
        }

        var problem: AtriumError {
            var error = AtriumError(
                status: status, code: code, title: status.reasonPhrase, detail: "\(field): \(message)",
                fieldErrors: [.init(field: field, message: message)])
            error.headers = [:]
            return error
        }
    }

    private let cache = Mutex<[String: Declaration?]>([:])
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// The declared problem for the constraint `error` names, if its comment declares one.
    func problem(for error: PSQLError) async -> AtriumError? {
        guard let constraint = error.serverInfo?[.constraintName], let table = error.serverInfo?[.tableName] else { return nil }
        return await problem(constraint: constraint, table: table)
    }

    /// The problem declared for `constraint` of `table`, if its migration declared one.
    func problem(constraint: String, table: String) async -> AtriumError? {
        let key = table + "." + constraint
        if let cached = cache.withLock({ $0[key] }) { return cached?.problem }
        let declaration: Declaration?
        do {
            let rows = try await database.client.withConnection { connection in
                try await connection.query(
                    """
                    SELECT d.description FROM pg_constraint c
                    JOIN pg_class t ON t.oid = c.conrelid
                    JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_constraint'::regclass
                    WHERE c.conname = \(constraint) AND t.relname = \(table)
                    """, logger: logger
                ).collect()
            }
            declaration = try rows.first.flatMap { Declaration(comment: try $0.decode(String.self)) }
        } catch {
            // The generic mapping still answers; try again on the next refusal.
            logger.warning("constraint comment unreadable", metadata: ["constraint": "\(key)", "error": "\(String(reflecting: error))"])
            return nil
        }
        cache.withLock { cache in
            if cache.count < 10_000 { cache[key] = .some(declaration) }
        }
        return declaration?.problem
    }
}
