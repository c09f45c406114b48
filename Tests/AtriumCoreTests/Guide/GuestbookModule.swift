import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import PostgresNIO

/// The guide's module (docs/modules.md shows this file): a guestbook whose entries are
/// confirmed by a signed link sent by mail, announced to a tenant's webhook with a sealed
/// token, and streamed to the tenant's screens as they arrive.
struct GuestbookModule: AtriumModule {
    var id: String { "guestbook" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [.init("guestbook.write", description: "Sign the guestbook"), .init("guestbook.manage", description: "Set the guestbook's webhook")]
    }
    var roleGrants: [String: [String]] { ["member": ["guestbook.write"], "admin": ["guestbook.write", "guestbook.manage"]] }
    /// Realtime channels are declared like meters: an undeclared one is refused.
    var channels: [String] { ["guestbook.entries"] }

    func migrations() throws -> [Migration] {
        // A real module keeps these in Modules/Guestbook/migrations/*.sql and returns
        // Migration.fromFiles(EmbeddedMigrations.files, owner: id).
        [Migration(owner: id, version: 1, fileName: "0001_guestbook.sql", sql: """
            CREATE TABLE guestbook_entries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                email text NOT NULL,
                message text NOT NULL CHECK (length(message) BETWEEN 1 AND 500),
                confirmed boolean NOT NULL DEFAULT false,
                PRIMARY KEY (tenant_id, id)
            );
            CREATE TABLE guestbook_webhooks (
                tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
                url text NOT NULL,
                token_sealed bytea NOT NULL
            );
            CALL atrium_tenant_table('guestbook_entries');
            CALL atrium_tenant_table('guestbook_webhooks');
            """)]
    }

    struct Webhook: Codable, Sendable {
        var url: URL
        var token: String
    }

    struct NewEntry: Codable, Sendable {
        var email: String
        var message: String
    }

    struct Entry: Codable, Sendable {
        var id: UUID
        var email: String
        var message: String
        var confirmed: Bool
    }

    struct Confirmation: Codable, Sendable {
        var confirmed: Bool
    }

    static let confirmationMail: MailTemplate? = try? MailTemplate(
        name: "guestbook.confirm", subject: "Confirm your entry in {{tenant}}'s guestbook",
        text: "You wrote: {{message}}\n\nConfirm it here: {{{link}}}\n")

    func routes(_ routes: ModuleRoutes) {
        let context = routes.context

        // Sealing: the webhook's token is stored sealed, bound to its tenant.
        routes.on(.put, "webhook", summary: "Set where new entries are announced", access: .permission("guestbook.manage"),
                  body: Webhook.self, response: NoContent.self, status: .noContent) { request, input in
            let sealed = try context.sealer.seal(input.token, associatedData: request.tenant.id.uuidString)
            try await request.transaction { transaction -> Void in
                // One statement: COMMIT goes in the same write (one round trip, not two).
                _ = try await transaction.lastStatement {
                    try await transaction.query(
                        """
                        INSERT INTO guestbook_webhooks (tenant_id, url, token_sealed) VALUES (\(transaction.tenantID), \(input.url.absoluteString), \(sealed))
                        ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, token_sealed = excluded.token_sealed
                        """)
                }
            }
            return NoContent()
        }

        // An idempotent create that mails a signed link and announces the entry after commit.
        routes.create("entries", summary: "Sign the guestbook", access: .permission("guestbook.write"), body: NewEntry.self, response: Entry.self) {
            request, input in
            guard let template = Self.confirmationMail else { throw AtriumError.internalError() }
            try PasswordPolicy.validate(email: input.email)
            let (entry, webhook) = try await request.transaction { transaction in
                let row = try await transaction.query(
                    """
                    INSERT INTO guestbook_entries (tenant_id, email, message) VALUES (\(transaction.tenantID), \(input.email), \(input.message))
                    RETURNING id
                    """)
                let entry = Entry(id: try row[0].decode(UUID.self), email: input.email, message: input.message, confirmed: false)
                let link = context.links.sign(
                    purpose: "guestbook.confirm", subject: entry.id.uuidString, tenant: request.tenant,
                    expires: context.clock.now.addingTimeInterval(86_400), path: "confirm")
                try await transaction.sendMail(
                    template, to: input.email, data: ["tenant": request.tenant.name, "message": input.message, "link": link.absoluteString])
                try await transaction.notify(channel: "guestbook.entries", id: entry.id.uuidString)
                let hook = try await transaction.query("SELECT url, token_sealed FROM guestbook_webhooks").first?.decode((String, Data).self)
                return (entry, hook)
            }
            // Outbound HTTP, after the commit. (A module that must not lose the call makes
            // it from a job enqueued in the transaction instead.)
            if let (url, sealed) = webhook, let target = URL(string: url) {
                let token = try context.sealer.open(sealed, associatedData: request.tenant.id.uuidString)
                let body = try AtriumJSON.encoder.encode(entry)
                let answer = try await context.http.send(OutboundRequest(
                    .post, target, headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: body,
                    timeout: .seconds(5)))
                request.logger.info("guestbook webhook answered", metadata: ["http.status": "\(answer.status)"])
            }
            return entry
        }

        // Realtime: each new entry, loaded under the subscriber's own row-level security.
        routes.streaming(.get, "events", summary: "New entries, as Server-Sent Events", access: .permission("guestbook.write"),
                         produces: "text/event-stream") { request in
            try request.eventStream(channel: "guestbook.entries") { transaction, id -> ServerSentEvent<Entry>? in
                guard let entryID = UUID(uuidString: id) else { return nil }
                let row = try await transaction.query(
                    "SELECT id, email, message, confirmed FROM guestbook_entries WHERE id = \(entryID)").first
                guard let (id, email, message, confirmed) = try row?.decode((UUID, String, String, Bool).self) else { return nil }
                return ServerSentEvent(id: id.uuidString, event: "entry", data: Entry(id: id, email: email, message: message, confirmed: confirmed))
            }
        }
    }

    // Signed links: the mailed link confirms the entry without signing in.
    func publicRoutes(_ routes: ModuleRoutes) {
        let links = routes.context.links
        routes.on(.get, "confirm", summary: "Confirm an entry from its mailed link", access: .anyCaller, response: Confirmation.self) { request in
            let link = try links.verify(request, purpose: "guestbook.confirm")
            guard let entryID = UUID(uuidString: link.subject) else { throw AtriumError.notFound() }
            let updated = try await request.transaction { transaction in
                try await transaction.query(
                    "UPDATE guestbook_entries SET confirmed = true WHERE id = \(entryID) RETURNING 1").count
            }
            guard updated == 1 else { throw AtriumError.notFound() }
            return Confirmation(confirmed: true)
        }
    }
}
