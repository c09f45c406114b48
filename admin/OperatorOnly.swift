import Foundation

/// The commands that only an operator runs, on the server's machine against its database:
/// asked to run remotely, they refuse in one line instead of ArgumentParser's "unknown
/// option".
enum OperatorOnly {
    static let commands = [
        "serve", "worker", "migrate", "doctor", "db", "tenants", "keys", "jobs", "bench", "billing reconcile", "invoices close",
        "invoices finalize", "invoices void", "invoices pay", "users create",
    ]

    /// The refusal for `arguments` (without the program name), nil when they ask for no
    /// remote mode or name a command that has one.
    static func refusal(_ arguments: [String]) -> String? {
        let remoteFlags = ["--remote", "--context", "--server"]
        guard arguments.contains(where: { argument in remoteFlags.contains { argument == $0 || argument.hasPrefix($0 + "=") } }) else { return nil }
        let words = arguments.prefix { !$0.hasPrefix("-") }
        let path = words.prefix(2).joined(separator: " ")
        guard let command = commands.first(where: { path == $0 || path.hasPrefix($0 + " ") }) else { return nil }
        let hint = command == "users create" ? " (a tenant's admin invites instead: atrium users invite)" : ""
        return "`atrium \(command)` is an operator command: it runs on the server's machine against its database and has no remote mode\(hint)"
    }
}
