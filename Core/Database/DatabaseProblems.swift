import Foundation
import PostgresNIO

/// Turns PostgreSQL's refusals of a value into the API's 4xx answers.
///
/// The edge checks values before they reach SQL; this is the net under it, and the one
/// mapping every module inherits through the kernel's problem middleware. A data
/// exception (SQLSTATE class 22), a check, not-null, unique, exclusion or foreign-key violation, an
/// over-long index entry or a write a row-level security policy refuses is the client's
/// doing, so it is answered 422, 409 or 403 with the API field it concerns — never the
/// constraint's name or the server's text, which go to the log. Anything else stays a
/// 500: a real fault.
public enum DatabaseProblems {
    /// The API answer for `error`, or nil when it is not about the request's values.
    public static func problem(for error: any Error) -> AtriumError? {
        if let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] {
            return problem(
                state: state, message: error.serverInfo?[.message] ?? "", constraint: error.serverInfo?[.constraintName],
                table: error.serverInfo?[.tableName], column: error.serverInfo?[.columnName])
        }
        // A commit PostgreSQL refused (a deferred constraint checked at the end of the
        // transaction) is the same refusal, arriving after the statement.
        if case .refused(let state, let message, let constraint, let table, let column) = error as? PipelinedBeginHandler.CommitOutcome {
            return problem(state: state, message: message, constraint: constraint, table: table, column: column)
        }
        return nil
    }

    /// The API answer for a refusal with SQLSTATE `state` and the fields PostgreSQL named.
    static func problem(state: String, message: String, constraint: String?, table: String?, column: String?) -> AtriumError? {
        switch state {
        case "22001", "54000":
            return .validation(field: column ?? field(constraint: constraint, table: table), "is too long")
        case "22003":
            return .validation(field: column ?? "body", "is out of the range this field accepts")
        case "22007", "22008":
            return .validation(field: column ?? "body", "is not a real date or time in years 1 to 9999")
        case "22021", "22P05":
            return .validation(field: column ?? "body", "holds characters that cannot be stored (such as NUL)")
        case _ where state.hasPrefix("22"):
            return .validation(field: column ?? "body", "has a value outside what this field accepts")
        case "23514":
            return .validation(field: field(constraint: constraint, table: table), "is not valid")
        case "23502":
            return .validation(field: column ?? "body", "is required")
        case "23505":
            return .conflict(code: "duplicate", "another record already has this \(field(constraint: constraint, table: table))")
        case "23P01":
            return .conflict(code: "conflict", "this \(field(constraint: constraint, table: table)) conflicts with another record")
        case "23503" where message.hasPrefix("update or delete"):
            return .conflict(code: "in_use", "other records still refer to this one")
        case "23503":
            return .validation(field: field(constraint: constraint, table: table), "does not name a record of this tenant")
        case "42501" where message.hasPrefix("new row violates row-level security policy"):
            // A write that an ownership policy refuses: the row would belong to someone
            // whose records the caller may not change. (Other 42501s are real faults.)
            return .forbidden(code: "permission_denied", "this record would belong to someone whose records you may not change")
        default:
            return nil
        }
    }

    /// The API field a constraint guards, from PostgreSQL's default constraint names
    /// (`<table>_<column>_check`, `<table>_<column>_key`, `<table>_<column>_fkey`); a
    /// constraint over several columns names the body.
    public static func field(constraint: String?, table: String?) -> String {
        guard var name = constraint else { return "body" }
        if let table, name.hasPrefix(table + "_") { name.removeFirst(table.count + 1) } else { return "body" }
        for suffix in ["_check", "_key", "_fkey", "_not_null"] {
            if let range = name.range(of: suffix, options: .backwards), name[range.upperBound...].allSatisfy(\.isNumber) {
                name = String(name[..<range.lowerBound])
                break
            }
        }
        if name.hasPrefix("tenant_id_") { name.removeFirst("tenant_id_".count) }
        return name.isEmpty || name == "check" ? "body" : name
    }
}
