public import Foundation
import Yams

/// A declarative tenant: one `tenants/<slug>.yaml` file.
///
/// ```yaml
/// slug: acme
/// name: Acme Inc.
/// plan: pro
/// modules: [sales]
/// settings:
///   timezone: Europe/Berlin
/// users:                 # demo logins, created when missing
///   - email: owner@acme.test
///     password: demo-password
///     roles: [owner]
/// ```
public struct TenantFile: Sendable, Equatable, Decodable {
    /// A user the file declares; created when missing, never changed afterwards.
    public struct DeclaredUser: Sendable, Equatable, Decodable {
        public var email: String
        public var password: String
        public var roles: [String]?
    }

    public var slug: String
    public var name: String
    public var plan: String?
    public var modules: [String]?
    public var settings: [String: JSONValue]?
    public var users: [DeclaredUser]?
    /// The file it came from, for messages.
    public var path: String = ""

    enum CodingKeys: String, CodingKey {
        case slug, name, plan, modules, settings, users
    }

    /// Every `*.yaml` / `*.yml` in `directory` except the plan catalog, sorted by name.
    public static func load(directory: URL) throws -> [TenantFile] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path())
        } catch {
            throw ConfigurationError("cannot read tenant files in \(directory.path()): \(error.localizedDescription)")
        }
        let files = names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix("plans.") }.sorted()
        var seen: [String: String] = [:]
        return try files.map { name in
            let url = directory.appending(path: name)
            var file = try parse(String(contentsOf: url, encoding: .utf8), path: url.path())
            file.path = url.path()
            if let other = seen[file.slug] {
                throw ConfigurationError("\(name): slug '\(file.slug)' is also declared in \(other)")
            }
            seen[file.slug] = name
            return file
        }
    }

    public static func parse(_ text: String, path: String) throws -> TenantFile {
        do {
            var file = try YAMLDecoder().decode(TenantFile.self, from: text)
            file.path = path
            try Tenant.validate(slug: file.slug)
            return file
        } catch let error as AtriumError {
            throw ConfigurationError("\(path): \(error.detail ?? error.title)")
        } catch let error as DecodingError {
            throw ConfigurationError("\(path): \(AtriumRequestDecoder.problem(for: error).detail ?? "invalid tenant file")")
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
    }
}
