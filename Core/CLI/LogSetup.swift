import Foundation
import Logging

/// Configures swift-log for the process: human text or one JSON object per line, on stderr
/// so that command output on stdout stays clean for scripts.
enum LogSetup {
    static func bootstrap(format: LogFormat, level: Logger.Level) {
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
