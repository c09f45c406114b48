public import Foundation

/// A module's settings from the environment: `ATRIUM_<MODULE>_<NAME>` (upper-cased), so
/// `settings.string("sync_interval")` of module `crypto` reads `ATRIUM_CRYPTO_SYNC_INTERVAL`.
/// A setting that is present but malformed stops start-up with a message naming it,
/// rather than running with a default the operator did not choose.
public struct ModuleSettings: Sendable {
    public let moduleID: String
    let environment: [String: String]

    public init(moduleID: String, environment: [String: String]) {
        self.moduleID = moduleID
        self.environment = environment
    }

    /// The variable a setting is read from.
    public func variable(_ name: String) -> String {
        "ATRIUM_\(moduleID)_\(name)".uppercased()
    }

    public func string(_ name: String) -> String? {
        environment[variable(name)].flatMap { $0.isEmpty ? nil : $0 }
    }

    public func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = string(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError("\(variable(name)) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    public func bool(_ name: String, default value: Bool) throws(ConfigurationError) -> Bool {
        guard let text = string(name)?.lowercased() else { return value }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError("\(variable(name)) must be true or false")
        }
    }

    public func url(_ name: String) throws(ConfigurationError) -> URL? {
        guard let text = string(name) else { return nil }
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host() != nil else {
            throw ConfigurationError("\(variable(name)) must be an http(s) URL")
        }
        return url
    }
}
