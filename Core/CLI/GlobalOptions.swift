public import ArgumentParser
public import Foundation
public import Logging

/// Options every command takes, the kernel's and modules' alike
/// (`@OptionGroup var global: GlobalOptions`).
public struct GlobalOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("data-dir"), help: "Data folder for the embedded database (default: $ATRIUM_DATA_DIR or .atrium).")
    public var dataDirectory: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.", transform: GlobalOptions.parseLevel)
    public var logLevel: Logger.Level?

    @Option(help: "Log format: text or json (default: $ATRIUM_LOG_FORMAT or text).")
    public var logFormat: LogFormat?

    public var dataDirectoryURL: URL {
        let path = dataDirectory ?? ProcessInfo.processInfo.environment["ATRIUM_DATA_DIR"] ?? ".atrium"
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
    }

    /// Sets up logging once for the process and returns the root logger.
    public func logger(defaultLevel: Logger.Level) -> Logger {
        let format = logFormat ?? ProcessInfo.processInfo.environment["ATRIUM_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) ?? .text
        let level = logLevel ?? ProcessInfo.processInfo.environment["ATRIUM_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
        LogSetup.bootstrap(format: format, level: level)
        return Logger(label: "atrium")
    }

    /// The database for this command, with the embedded cluster running while `body` runs.
    public func withDatabase<Result: Sendable>(logger: Logger, _ body: (DatabaseLocation) async throws -> Result) async throws -> Result {
        try await CommandErrors.mapped {
            try await DatabaseLocation.withDatabase(dataDirectory: dataDirectoryURL, logger: logger, body)
        }
    }
}

extension GlobalOptions {
    static func parseLevel(_ text: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else {
            throw ValidationError("log level must be one of trace, debug, info, notice, warning, error, critical")
        }
        return level
    }
}

public enum LogFormat: String, ExpressibleByArgument, Sendable {
    case text, json
}

/// Turns driver and configuration errors into one-line messages for the terminal.
public enum CommandErrors {
    public static func mapped<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as ConfigurationError {
            throw ValidationFailure(error.description)
        } catch let error as AtriumError {
            throw ValidationFailure(error.detail ?? error.title)
        } catch let error as ValidationFailure {
            throw error
        } catch let error as ExitCode {
            throw error
        } catch {
            throw ValidationFailure(DatabaseErrors.describe(error))
        }
    }
}

extension CommandErrors {
    public static func mappedSync<Result>(_ body: () throws -> Result) throws -> Result {
        do {
            return try body()
        } catch let error as ConfigurationError {
            throw ValidationFailure(error.description)
        } catch let error as AtriumError {
            throw ValidationFailure(error.detail ?? error.title)
        }
    }
}

/// A failure whose message is printed as is, with a non-zero exit.
public struct ValidationFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
