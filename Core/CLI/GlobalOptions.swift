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

    /// The data folder: `--data-dir` or `$ATRIUM_DATA_DIR` when given; otherwise the
    /// nearest `.atrium` holding an embedded database, in this folder or a parent (as git
    /// finds `.git`), so commands run from a project's subfolder find its data; otherwise
    /// `.atrium` here, which only the commands that create a database use.
    public var dataDirectoryURL: URL { dataFolder.url }

    /// Where the data folder came from: named by the operator, found, or neither.
    enum DataFolder {
        case named(URL)
        case found(URL)
        case none(URL)

        var url: URL {
            switch self {
            case .named(let url), .found(let url), .none(let url): url
            }
        }
    }

    var dataFolder: DataFolder {
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if let path = dataDirectory ?? ProcessInfo.processInfo.environment["ATRIUM_DATA_DIR"] {
            return .named(URL(fileURLWithPath: path, relativeTo: here).standardizedFileURL)
        }
        var folder = here.standardizedFileURL
        while true {
            let candidate = folder.appending(path: ".atrium")
            if FileManager.default.fileExists(atPath: candidate.appending(path: "database.json").path()) { return .found(candidate) }
            let parent = folder.deletingLastPathComponent()
            if parent.path() == folder.path() { break }
            folder = parent
        }
        return .none(here.appending(path: ".atrium").standardizedFileURL)
    }

    /// Sets up logging once for the process and returns the root logger.
    public func logger(defaultLevel: Logger.Level) -> Logger {
        let format = logFormat ?? ProcessInfo.processInfo.environment["ATRIUM_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) ?? .text
        let level = logLevel ?? ProcessInfo.processInfo.environment["ATRIUM_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
        LogSetup.bootstrap(format: format, level: level)
        return Logger(label: "atrium")
    }

    /// The database for this command, with the embedded cluster running while `body` runs.
    /// Only a command that `creates` one (`serve`, `migrate`, `db start`) makes a new
    /// embedded database where none was named or found: any other refuses, naming where it
    /// looked, rather than work on an empty database it just made.
    public func withDatabase<Result: Sendable>(
        logger: Logger, creates: Bool = false, _ body: (DatabaseLocation) async throws -> Result
    ) async throws -> Result {
        try await CommandErrors.mapped {
            try requireDatabase(creates: creates)
            return try await DatabaseLocation.withDatabase(dataDirectory: dataDirectoryURL, logger: logger, body)
        }
    }

    /// Throws when this command would make a new embedded database nobody asked for.
    public func requireDatabase(creates: Bool) throws(ConfigurationError) {
        guard !creates, ProcessInfo.processInfo.environment["DATABASE_URL"]?.isEmpty ?? true, case .none(let url) = dataFolder else { return }
        throw ConfigurationError(
            "no Atrium database here: \(url.path()) holds none, and neither does a .atrium in a parent folder. "
                + "Run this in the project folder (where `make run` or `atrium serve` made it), "
                + "or name it with --data-dir or ATRIUM_DATA_DIR, or an external one with DATABASE_URL")
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
