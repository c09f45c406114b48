import Foundation
import Logging
import Synchronization

/// Configures swift-log for the process: human text or one JSON object per line, on stderr
/// so that command output on stdout stays clean for scripts.
enum LogSetup {
    /// swift-log traps on a second bootstrap; a command may ask for its logger twice (a
    /// remote-or-local decision, then the local work), so only the first call configures.
    private static let done = Mutex(false)

    static func bootstrap(format: LogFormat, level: Logger.Level) {
        guard done.withLock({ done in
            defer { done = true }
            return !done
        }) else { return }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text: handler = TextLogHandler(label: label)
            case .json: handler = JSONLogHandler(label: label)
            }
            handler.logLevel = level
            return handler
        }
    }
}
