import Crypto
public import Foundation
public import Logging
public import PostgresNIO

/// Billing events a tenant receives at its own URL (`invoice.finalized`, …), signed so
/// the receiver can prove they came from Atrium and are fresh.
///
/// Signature: `Atrium-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
/// under the endpoint's secret (`whsec_…`, shown once when the endpoint is set). A
/// receiver recomputes the HMAC over the raw body and rejects timestamps older than a
/// few minutes. Deliveries are jobs: enqueued in the transaction that caused the event,
/// sent through libcurl, retried with backoff on any non-2xx answer or network error.
public struct Webhooks: Sendable {
    /// What a tenant has configured; the secret stays sealed.
    public struct Endpoint: Sendable, Codable, Equatable {
        public var url: String
        public var updatedAt: Date
    }

    /// The job payload: the event, fixed at the time it happened.
    struct Event: Codable, Sendable {
        var id: UUID
        var type: String
        var createdAt: Date
        var data: JSONValue
    }

    public static let deliveryJob = "kernel.webhooks.deliver"

    let masterKey: MasterKey?
    /// Which addresses endpoints may have (`ATRIUM_OUTBOUND_ALLOW`): a tenant admin names
    /// the URL, so by default only public ones.
    let outbound: OutboundAddressPolicy
    let logger: Logger

    public init(masterKey: MasterKey?, outbound: OutboundAddressPolicy = .publicInternet, logger: Logger) {
        self.masterKey = masterKey
        self.outbound = outbound
        self.logger = logger
    }

    /// Sets the tenant's endpoint and returns its new signing secret (the only time it is
    /// readable). Only http(s) URLs are accepted.
    public func setEndpoint(url: String, tenantID: UUID, on connection: PostgresConnection) async throws -> String {
        guard let masterKey else { throw ConfigurationError("webhooks need the master key") }
        guard let parsed = URL(string: url), parsed.scheme == "https" || parsed.scheme == "http", parsed.host() != nil else {
            throw AtriumError.validation(field: "url", "must be an http(s) URL")
        }
        let secret = "whsec_" + SecureRandom.base64URL(bytes: 32)
        let sealed = try masterKey.seal(Data(secret.utf8), context: Self.sealContext(tenantID))
        try await connection.query(
            """
            INSERT INTO webhook_endpoints (tenant_id, url, secret_sealed) VALUES (\(tenantID), \(url), \(sealed))
            ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, secret_sealed = excluded.secret_sealed, updated_at = now()
            """, logger: logger)
        return secret
    }

    public func endpoint(on connection: PostgresConnection) async throws -> Endpoint? {
        let row = try await connection.query("SELECT url, updated_at FROM webhook_endpoints", logger: logger).collect().first
        return try row.map { row in
            let (url, updated) = try row.decode((String, Date).self)
            return Endpoint(url: url, updatedAt: updated)
        }
    }

    public func removeEndpoint(on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM webhook_endpoints", logger: logger)
    }

    /// Queues `type` for delivery when the tenant has an endpoint; does nothing otherwise.
    public func enqueue(_ type: String, data: JSONValue, tenantID: UUID, on connection: PostgresConnection) async throws {
        guard try await endpoint(on: connection) != nil else { return }
        let event = Event(id: UUID(), type: type, createdAt: Date(), data: data)
        try await JobQueue(logger: logger).enqueue(
            kind: Self.deliveryJob, tenantID: tenantID, moduleID: nil, payload: event, uniqueKey: nil, maxAttempts: 10, on: connection)
    }

    /// `t=…,v1=…` for `body` sent at `timestamp`.
    public static func signature(body: Data, timestamp: Int64, secret: String) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=" + mac.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    static func sealContext(_ tenantID: UUID) -> String { "webhook-secret:\(tenantID.uuidString.lowercased())" }

    /// The delivery job: reads the endpoint at send time (a changed URL gets the event).
    func definition() -> JobDefinition {
        JobDefinition(kind: Self.deliveryJob, maxAttempts: 10, lease: .seconds(60), backoff: .seconds(30), maxBackoff: .seconds(6 * 3600)) { context in
            guard let tenantID = context.tenantID else { return }
            guard let masterKey else { throw ConfigurationError("this worker has no master key to sign webhooks with") }
            let event = try context.decodePayload(Event.self)
            let logger = context.logger
            let target = try await context.database.withTenantTransaction(tenantID, logger: logger) { connection -> (String, Data)? in
                try await connection.query("SELECT url, secret_sealed FROM webhook_endpoints", logger: logger).collect().first?
                    .decode((String, Data).self)
            }
            guard let (url, sealed) = target, let destination = URL(string: url) else {
                logger.info("webhook endpoint removed; event dropped", metadata: ["webhook.event": "\(event.type)"])
                return
            }
            let secret = String(decoding: try masterKey.open(sealed, context: Self.sealContext(tenantID)), as: UTF8.self)
            let body = try AtriumJSON.encoder.encode(event)
            let signature = Self.signature(body: body, timestamp: Int64(Date().timeIntervalSince1970), secret: secret)
            let response = try await CurlHTTP(policy: outbound).post(
                destination, body: body,
                headers: ["Content-Type: application/json", "Atrium-Signature: \(signature)", "Atrium-Event-Id: \(event.id.uuidString.lowercased())",
                          "Atrium-Event-Type: \(event.type)", "User-Agent: Atrium-Webhooks/1"])
            guard (200..<300).contains(response.status) else {
                throw OutboundError("webhook \(event.type) to \(destination.host() ?? "?") answered \(response.status)")
            }
            logger.info("webhook delivered", metadata: ["webhook.event": "\(event.type)", "http.status": "\(response.status)"])
        }
    }
}
