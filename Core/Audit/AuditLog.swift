public import Foundation
public import Logging
public import PostgresNIO

/// Writes security events and administrative actions to the tenant's audit log, in the
/// caller's transaction, so an action and its record commit together.
public struct AuditLog: Sendable {
    public enum ActorType: String, Sendable, Codable {
        case user
        case apiKey = "api_key"
        case `operator`
        case anonymous
        case system
    }

    /// Who did it and from where.
    public struct Actor: Sendable {
        public var type: ActorType
        public var id: String?
        public var ip: String?
        public var userAgent: String?
        public init(type: ActorType, id: String? = nil, ip: String? = nil, userAgent: String? = nil) {
            self.type = type
            self.id = id
            self.ip = ip
            self.userAgent = userAgent
        }
    }

    public struct Event: Sendable, Codable, Equatable {
        public var id: UUID
        public var occurredAt: Date
        public var action: String
        public var actorType: String
        public var actorID: String?
        public var subject: String?
        public var ip: String?
        public var userAgent: String?
        public var details: JSONValue

        /// `actorId`, not `actorID`: the API's snake_case keys (`actor_id`) come back as
        /// `actorId`, so `actorID` would decode as missing in the remote console.
        enum CodingKeys: String, CodingKey {
            case id, occurredAt, action, actorType, actorID = "actorId", subject, ip, userAgent, details
        }
    }

    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func record(
        _ action: String, tenantID: UUID, actor: Actor, subject: String? = nil, details: [String: JSONValue] = [:],
        on connection: PostgresConnection
    ) async throws {
        let json = String(decoding: try JSONEncoder().encode(JSONValue.object(details)), as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO audit_events (tenant_id, action, actor_type, actor_id, subject, ip, user_agent, details)
            VALUES (\(tenantID), \(action), \(actor.type.rawValue), \(actor.id), \(subject), \(actor.ip)::inet, \(actor.userAgent), \(json)::jsonb)
            """, logger: logger)
        logger.info("audit", metadata: ["audit.action": "\(action)", "audit.actor": "\(actor.type.rawValue):\(actor.id ?? "-")"])
    }

    /// Newest first, optionally since a time.
    public func list(since: Date? = nil, limit: Int = 100, on connection: PostgresConnection) async throws -> [Event] {
        let rows = try await connection.query(
            """
            SELECT id, occurred_at, action, actor_type, actor_id, subject, host(ip), user_agent, details::text
            FROM audit_events WHERE (\(since)::timestamptz IS NULL OR occurred_at >= \(since))
            ORDER BY occurred_at DESC LIMIT \(limit)
            """, logger: logger)
        var events: [Event] = []
        for try await row in rows.decode((UUID, Date, String, String, String?, String?, String?, String?, String).self) {
            let details = (try? JSONDecoder().decode(JSONValue.self, from: Data(row.8.utf8))) ?? .object([:])
            events.append(Event(id: row.0, occurredAt: row.1, action: row.2, actorType: row.3, actorID: row.4, subject: row.5, ip: row.6, userAgent: row.7, details: details))
        }
        return events
    }
}
