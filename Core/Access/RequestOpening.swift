import Foundation
import PostgresNIO

/// The statements that open every authenticated request (migration 0012), as named
/// prepared statements: each pooled connection parses and plans them once, and every
/// later request sends only Bind and Execute. Profiles of the request path put
/// PostgreSQL's parser and planner at the top of its own time, so the statement every
/// request runs is the first to stop paying them.
enum RequestOpening {
    /// Scopes the transaction to the tenant and user and returns the user's roles,
    /// custom-role permissions and the session's expiry if the session and user are live
    /// (no row otherwise; migration 0019).
    struct Session: PostgresPreparedStatement {
        static let name = "atrium_open_session"
        static let sql = "SELECT roles, permissions, expires_at FROM atrium_open_session($1, $2, $3)"
        static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid, .uuid]
        typealias Row = ([String], [String], Date)

        var tenantID: UUID
        var userID: UUID
        var sessionID: UUID

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(tenantID)
            bindings.append(userID)
            bindings.append(sessionID)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Scopes the transaction to the tenant and the key's user and returns the live key's
    /// secret hash, permissions, whether its last use is over a minute old, and the user
    /// it acts for.
    struct APIKey: PostgresPreparedStatement {
        static let name = "atrium_open_api_key_request"
        static let sql = "SELECT secret_hash, permissions, stale, acts_for FROM atrium_open_api_key_request($1, $2)"
        static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid]
        typealias Row = (Data, [String], Bool, UUID?)

        var tenantID: UUID
        var keyID: UUID

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(tenantID)
            bindings.append(keyID)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
