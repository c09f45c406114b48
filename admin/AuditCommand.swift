import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Show a tenant's audit log, newest first.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var mode: RemoteModeOptions
    @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
    @Option(help: "Only events at or after this RFC 3339 time.") var since: String?
    @Option(help: "At most this many events.") var limit: Int = 100
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var start: Date?
        if let since {
            guard let date = ISO8601DateFormatter().date(from: since) else { throw ValidationFailure("--since must be an RFC 3339 time") }
            start = date
        }
        let events: [AuditLog.Event]
        if var client = try mode.client(global) {
            try RemoteModeOptions.check(tenant, against: client)
            var query = URLComponents()
            query.queryItems = [URLQueryItem(name: "limit", value: String(min(limit, 200)))] + (since.map { [URLQueryItem(name: "since", value: $0)] } ?? [])
            events = try await client.json(.get, "admin/audit?\(query.percentEncodedQuery ?? "")", as: Page<AuditLog.Event>.self).data
        } else {
            let logger = global.logger(defaultLevel: .warning)
            let (from, limit) = (start, limit)
            events = try await UsersCommand.inTenant(try RemoteModeOptions.localTenant(tenant), global: global, logger: logger) { connection, _ in
                try await AuditLog(logger: logger).list(since: from, limit: limit, on: connection)
            }
        }
        if json {
            try Console.json(events)
        } else {
            Console.table(["time", "action", "actor", "subject", "ip"], events.map {
                [Console.timestamp($0.occurredAt), $0.action, "\($0.actorType):\($0.actorID ?? "-")", $0.subject ?? "-", $0.ip ?? "-"]
            })
        }
    }
}
