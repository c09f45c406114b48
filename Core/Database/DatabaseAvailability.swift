import HTTPTypes
import NIOCore
import PostgresNIO

/// Tells a lost database (a connection that died, a server restarting or refusing
/// connections) from a statement that failed, so that the first is answered 503 with
/// `Retry-After` — the client may try again in a moment — and never as a 500.
enum DatabaseAvailability {
    /// Seconds a client is asked to wait before retrying.
    static let retryAfterSeconds = 1

    /// Whether `error` means the database or the connection to it went away.
    static func isLost(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            switch error.code {
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError, .poolClosed:
                return true
            case .server:
                // 57P01-03: the server is shutting down, crashed or starting; 08: the
                // connection failed; 53300: it takes no more connections.
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("57P") || state.hasPrefix("08") || state == "53300"
            default:
                return false
            }
        case let outcome as PipelinedBeginHandler.CommitOutcome:
            return outcome == .connectionClosed
        case is RequestConnectionLost, is RequestPoolClosed, is ChannelError, is NIOConnectionError, is IOError:
            return true
        default:
            return false
        }
    }

    /// The answer to a request whose database went away.
    static func problem() -> AtriumError {
        var problem = AtriumError(
            status: .serviceUnavailable, code: "database_unavailable", title: "Database unavailable",
            detail: "The database connection was lost. Nothing is known to have been saved; try again in a moment.")
        problem.headers[.retryAfter] = String(retryAfterSeconds)
        return problem
    }
}

/// A request's connection died. `sentStatement` says whether anything of the request
/// had been written to it: when nothing had, no statement of it ran, and it can run again
/// on a fresh connection.
struct RequestConnectionLost: Error, CustomStringConvertible {
    var sentStatement: Bool
    var underlying: any Error

    var description: String {
        "the request's database connection was lost \(sentStatement ? "after" : "before") its first statement was sent: \(String(reflecting: underlying))"
    }
}
