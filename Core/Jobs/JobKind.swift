public import Foundation

/// A kind of job with its payload type, so the code that enqueues and the code that
/// runs it cannot disagree on the payload's shape:
///
/// ```swift
/// static let sync = JobKind<SyncRequest>("crypto.exchange.sync")
/// var jobs: [JobDefinition] { [Self.sync.definition(maxAttempts: 8) { context, request in ... }] }
/// try await transaction.enqueue(Self.sync, SyncRequest(exchange: id))
/// ```
public struct JobKind<Payload: Codable & Sendable>: Sendable {
    /// `<module>.<name>`.
    public let name: String

    public init(_ name: String) {
        self.name = name
    }

    /// The job's definition, whose handler gets the payload decoded.
    public func definition(
        maxAttempts: Int = 5, lease: Duration = .seconds(300), backoff: Duration = .seconds(5), maxBackoff: Duration = .seconds(3600),
        handler: @escaping @Sendable (JobContext, Payload) async throws -> Void
    ) -> JobDefinition {
        JobDefinition(kind: name, maxAttempts: maxAttempts, lease: lease, backoff: backoff, maxBackoff: maxBackoff) { context in
            try await handler(context, try JSONDecoder().decode(Payload.self, from: context.payload))
        }
    }

    /// The payload as stored: Swift's own key names both ways (the API's snake_case
    /// conversion does not survive a round trip of names like `userID`).
    func encode(_ payload: Payload) throws -> Data {
        try JSONEncoder().encode(payload)
    }
}

extension TenantTransaction {
    /// Enqueues a typed job for this tenant, committed with the transaction's writes.
    @discardableResult
    public func enqueue<Payload>(_ kind: JobKind<Payload>, _ payload: Payload, runAt: Date? = nil, uniqueKey: String? = nil) async throws -> UUID? {
        let owner = kind.name.split(separator: ".").first.map(String.init)
        try gate.admitStatement()
        return try await jobs.enqueue(
            kind: kind.name, tenantID: tenantID, moduleID: owner == "kernel" ? nil : owner, payload: try kind.encode(payload), runAt: runAt,
            uniqueKey: uniqueKey, on: connection)
    }
}

extension JobContext {
    /// A transaction of the job's tenant, as a request's would be: row-level security
    /// shows this tenant's rows; `actingAs` names the user whose owned rows it reaches
    /// (all owners' with `seesAllOwners`), since a job has no caller of its own.
    public func transaction<Result: Sendable>(
        actingAs userID: UUID? = nil, seesAllOwners: Bool = false, _ body: @Sendable (TenantTransaction) async throws -> Result
    ) async throws -> Result {
        guard let tenantID else { throw ConfigurationError("job \(kind) is a platform job: it has no tenant to open a transaction for") }
        let (logger, metering, channels) = (logger, metering, channels)
        return try await database.withTenantTransaction(tenantID, principal: userID, logger: logger) { connection in
            if seesAllOwners { try await connection.scopeToAllOwners(logger: logger) }
            return try await body(TenantTransaction(
                connection: connection, tenantID: tenantID, principalID: userID, logger: logger, jobs: JobQueue(logger: logger), metering: metering,
                channels: channels, ownerFilter: seesAllOwners ? nil : userID))
        }
    }
}
