import AtriumCore
import AtriumTesting
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import Synchronization
import Testing

/// The billing routes over the real router: batch usage ingestion, subscription and
/// invoices, the webhook on finalize, and seats.
@Suite("Billing over HTTP")
struct BillingRoutesTests {
    static let catalogText = """
        meters:
          partner.calls: { aggregation: count, unit: call }
          partner.bytes: { aggregation: sum, unit: byte }
        plans:
          free:
            name: Free
            price: 0
            quotas: { seats: 2 }
            meters:
              partner.calls: { per_unit: 2 }
          pro:
            name: Pro
            price: 1999
        """

    func withBillingApp(
        _ db: TestDatabase, _ body: @escaping @Sendable (any TestClientProtocol, PlanCatalog) async throws -> Void
    ) async throws {
        let catalog = try PlanCatalog.parse(Self.catalogText, path: "plans.yaml")
        try await db.withApp(maximumConnections: 6) { database in
            let registry = try ModuleRegistry([NotesModule()])
            let metering = Metering(registry: registry, catalog: catalog, logger: TestDatabase.logger)
            try await db.withOwner { try await MeterDeclarations(metering: metering, logger: TestDatabase.logger).synchronize(on: $0) }
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), plans: catalog, logger: TestDatabase.logger,
                expectedMigrations: try registry.allMigrations())
            let app = Application(router: buildRouter(dependencies), logger: TestDatabase.logger)
            try await app.test(.router) { client in try await body(client, catalog) }
        }
    }

    func post(_ client: any TestClientProtocol, _ uri: String, _ body: String, auth: String) async throws -> TestResponse {
        try await client.execute(
            uri: uri, method: .post, headers: [.authorization: auth, .contentType: "application/json"], body: ByteBuffer(string: body))
    }

    @Test func batchIngestionIsIdempotentPerEventAndAllOrNothingOnBadInput() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        try await withBillingApp(db) { client, _ in
            let writer = TestAuthenticator.header(acme, "kernel.usage.write")
            let reader = TestAuthenticator.header(acme, "kernel.billing.read")
            let batch = """
                {"events": [
                  {"meter": "partner.calls", "idempotency_key": "c1"},
                  {"meter": "partner.calls", "idempotency_key": "c2"},
                  {"meter": "partner.calls", "idempotency_key": "c1"},
                  {"meter": "partner.bytes", "quantity": 500, "idempotency_key": "b1", "properties": {"region": "eu"}},
                  {"meter": "partner.bytes", "quantity": 250, "idempotency_key": "b2", "timestamp": "2026-10-05T10:00:00Z"}
                ]}
                """
            let first = try await post(client, "/v1/tenants/acme/billing/usage/events", batch, auth: writer)
            #expect(first.status == .ok)
            #expect(json(first)["accepted"] == 4)
            #expect(json(first)["duplicates"] == 1)
            // The same batch again records nothing.
            let again = try await post(client, "/v1/tenants/acme/billing/usage/events", batch, auth: writer)
            #expect(json(again)["accepted"] == 0)
            #expect(json(again)["duplicates"] == 5)
            // One bad event refuses the whole batch and names it.
            let bad = try await post(
                client, "/v1/tenants/acme/billing/usage/events",
                #"{"events": [{"meter": "partner.calls", "idempotency_key": "c3"}, {"meter": "nope.x", "idempotency_key": "n1"}, {"meter": "partner.bytes", "quantity": -1, "idempotency_key": "b3"}]}"#,
                auth: writer)
            #expect(bad.status == .unprocessableContent)
            let fields = json(bad)["errors"]?.array?.compactMap { $0["field"]?.string }
            #expect(fields == ["events[1].meter", "events[2].quantity"])
            // A batch holds at most 1,000 events, and a quantity is at most 10^12.
            func batchOf(_ count: Int, prefix: String) -> String {
                #"{"events": ["# + (0..<count).map { #"{"meter": "partner.calls", "idempotency_key": "\#(prefix)\#($0)"}"# }.joined(separator: ",") + "]}"
            }
            let tooMany = try await post(client, "/v1/tenants/acme/billing/usage/events", batchOf(1_001, prefix: "over"), auth: writer)
            #expect(tooMany.status == .unprocessableContent)
            #expect(json(tooMany)["errors"]?.array?.first?["field"]?.string == "events")
            let huge = try await post(
                client, "/v1/tenants/acme/billing/usage/events",
                #"{"events": [{"meter": "partner.bytes", "quantity": 1000000000001, "idempotency_key": "huge"}]}"#, auth: writer)
            #expect(json(huge)["errors"]?.array?.first?["field"]?.string == "events[0].quantity")
            // Reading needs billing.read; writing needs usage.write.
            #expect(try await post(client, "/v1/tenants/acme/billing/usage/events", batch, auth: reader).status == .forbidden)
            let usage = try await client.execute(uri: "/v1/tenants/acme/billing/usage", method: .get, headers: [.authorization: reader])
            let values = Dictionary(uniqueKeysWithValues: (json(usage)["data"]?.array ?? []).compactMap { entry in
                entry["meter"]?.string.map { ($0, entry["value"]) }
            })
            #expect(values["partner.calls"] == 2)  // c3 was refused with its batch
            #expect(values["partner.bytes"] == 500)
            let october = try await client.execute(uri: "/v1/tenants/acme/billing/usage?period=2026-10", method: .get, headers: [.authorization: reader])
            #expect((json(october)["data"]?.array ?? []).first { $0["meter"]?.string == "partner.bytes" }?["value"] == 250)
        }
    }

    @Test func invoicesAndTheSubscriptionAreReadableOnlyByTheirTenant() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let globex = try await db.createTenant("globex")
        try await db.backdateSubscription(of: acme)
        let catalog = try PlanCatalog.parse(Self.catalogText, path: "plans.yaml")
        let metering = Metering(registry: try ModuleRegistry([NotesModule()]), catalog: catalog, logger: TestDatabase.logger)
        try await db.withOwner { try await MeterDeclarations(metering: metering, logger: TestDatabase.logger).synchronize(on: $0) }
        let october = try Metering.period("2026-10")
        let invoice = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await metering.record("partner.calls", quantity: 1, idempotencyKey: "k", at: october.addingTimeInterval(60), properties: [:], tenantID: acme.id, on: connection)
                return try #require(try await Invoices(catalog: catalog, metering: metering, logger: TestDatabase.logger)
                    .close(period: october, tenantID: acme.id, on: connection)).invoice
            }
        }
        try await withBillingApp(db) { client, _ in
            let reader = TestAuthenticator.header(acme, "kernel.billing.read")
            let list = try await client.execute(uri: "/v1/tenants/acme/billing/invoices", method: .get, headers: [.authorization: reader])
            #expect(json(list)["data"]?.array?.first?["number"]?.string == "ACME-202610")
            let one = try await client.execute(uri: "/v1/tenants/acme/billing/invoices/\(invoice.id)", method: .get, headers: [.authorization: reader])
            #expect(one.status == .ok)
            #expect(json(one)["total"] == 2)
            #expect(json(one)["lines"]?.array?.contains { $0["meter"]?.string == "partner.calls" && $0["amount"] == 2 } == true)
            // Globex's admin asking for Acme's invoice gets the answer of a missing one.
            let foreign = try await client.execute(
                uri: "/v1/tenants/globex/billing/invoices/\(invoice.id)", method: .get,
                headers: [.authorization: TestAuthenticator.header(globex, "kernel.billing.read")])
            #expect(foreign.status == .notFound)
            let subscription = try await client.execute(uri: "/v1/tenants/acme/billing/subscription", method: .get, headers: [.authorization: reader])
            #expect(json(subscription)["plan"]?.string == "free")
            #expect(json(subscription)["status"]?.string == "active")
            #expect(json(subscription)["quotas"]?["seats"] == 2)
        }
    }

    @Test func seatsCapActiveUsersOnEveryPath() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let catalog = try PlanCatalog.parse(Self.catalogText, path: "plans.yaml")
        try await db.withOwner { try await catalog.publishQuotas(on: $0, logger: TestDatabase.logger) }
        let first = try await db.createUser("a@acme.test", password: "correct horse battery", roles: ["owner"], in: acme)
        _ = try await db.createUser("b@acme.test", password: "correct horse battery", roles: [], in: acme)
        let refused = await #expect(throws: TestFailure.self) {
            _ = try await db.createUser("c@acme.test", password: "correct horse battery", roles: [], in: acme)
        }
        #expect(refused?.description.contains("seat_limit_reached") == true)
        // Disabling a user frees the seat; enabling it again needs one.
        try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                _ = try await UserStore(logger: TestDatabase.logger).setStatus("disabled", userID: first.id, on: connection)
            }
        }
        _ = try await db.createUser("c@acme.test", password: "correct horse battery", roles: [], in: acme)
        let reenabled = await #expect(throws: PSQLError.self) {
            try await db.withOwner { connection in
                try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                    _ = try await UserStore(logger: TestDatabase.logger).setStatus("active", userID: first.id, on: connection)
                }
            }
        }
        #expect(reenabled.flatMap { AtriumError.fromDatabaseRule($0) }?.code == "seat_limit_reached")
        #expect(reenabled.flatMap { AtriumError.fromDatabaseRule($0) }?.status == .forbidden)
    }
}

extension BillingRoutesTests {
    /// The seat check runs under a per-tenant lock: sign-ups racing for the last seat get it once.
    @Test func concurrentSignUpsTakeTheLastSeatOnce() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let catalog = try PlanCatalog.parse(Self.catalogText, path: "plans.yaml")
        try await db.withOwner { try await catalog.publishQuotas(on: $0, logger: TestDatabase.logger) }
        _ = try await db.createUser("a@acme.test", password: "correct horse battery", roles: ["owner"], in: acme)
        let outcomes = await withTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                group.addTask {
                    do {
                        _ = try await db.createUser("racer\(index)@acme.test", password: "correct horse battery", roles: [], in: acme)
                        return "created"
                    } catch {
                        return "\(error)".contains("seat_limit_reached") ? "refused" : "other: \(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == "created" }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == "refused" }.count == 7, "\(outcomes)")
        let active = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query("SELECT count(*)::int FROM users WHERE status = 'active'", logger: TestDatabase.logger)
                    .collect().first?.decode(Int.self)
            }
        }
        #expect(active == 2)
    }
}

/// An HTTP receiver on a real socket that records what it is sent and answers with
/// the statuses it is told to, in order.
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        var headers: HTTPFields
        var body: Data
    }
    let deliveries = Mutex<[Delivery]>([])
    let statuses: Mutex<[HTTPResponse.Status]>

    init(statuses: [HTTPResponse.Status]) {
        self.statuses = Mutex(statuses)
    }

    func run(_ body: @escaping @Sendable (URL) async throws -> Void) async throws {
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let data = try await request.body.collect(upTo: 1 << 20)
            self.deliveries.withLock { $0.append(Delivery(headers: request.headers, body: Data(buffer: data))) }
            let status = self.statuses.withLock { $0.isEmpty ? .ok : $0.removeFirst() }
            return Response(status: status)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            guard let port = client.port, let url = URL(string: "http://127.0.0.1:\(port)/hook") else { throw TestFailure("no port") }
            try await body(url)
        }
    }
}

@Suite("Billing webhooks")
struct WebhookTests {
    @Test func finalizingSendsASignedInvoiceEventAndRetriesFailures() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        try await db.backdateSubscription(of: acme)
        let catalog = try PlanCatalog.parse(BillingRoutesTests.catalogText, path: "plans.yaml")
        let registry = try ModuleRegistry([])
        let metering = Metering(registry: registry, catalog: catalog, logger: TestDatabase.logger)
        let masterKey = MasterKey.generate()
        let receiver = WebhookReceiver(statuses: [.internalServerError])
        try await receiver.run { url in
            let secret = try await db.withOwner { connection in
                try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                    try await Webhooks(masterKey: masterKey, logger: TestDatabase.logger).setEndpoint(url: url.absoluteString, tenantID: acme.id, on: connection)
                }
            }
            #expect(secret.hasPrefix("whsec_"))
            try await db.withOwner { connection in
                try await MeterDeclarations(metering: metering, logger: TestDatabase.logger).synchronize(on: connection)
                try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                    let invoices = Invoices(catalog: catalog, metering: metering, logger: TestDatabase.logger)
                    let draft = try #require(try await invoices.close(period: try Metering.period("2026-10"), tenantID: acme.id, on: connection)).invoice
                    _ = try await invoices.finalize(draft.id, tenantID: acme.id, on: connection)
                }
            }
            try await db.withApp { database in
                let worker = JobWorker(
                    database: database, registry: registry,
                    kernelJobs: BillingJobs.definitions(
                        catalog: catalog, metering: metering, masterKey: masterKey, outbound: OutboundAddressPolicy(allowing: [.loopback]),
                        logger: TestDatabase.logger),
                    configuration: .init(), kit: .ephemeral(logger: TestDatabase.logger), logger: TestDatabase.logger)
                #expect(try await worker.runAvailableJobs() == 1)
                // The receiver answered 500: the job waits for its retry. Bring the retry forward.
                try await db.withOwner { connection in
                    try await connection.withPlatformTransaction(logger: TestDatabase.logger) { connection in
                        try await connection.query("UPDATE jobs SET run_at = now() WHERE state = 'pending'", logger: TestDatabase.logger)
                    }
                }
                #expect(try await worker.runAvailableJobs() == 1)
            }
            let deliveries = receiver.deliveries.withLock { $0 }
            #expect(deliveries.count == 2)
            let delivery = try #require(deliveries.last)
            let event = try JSONDecoder().decode(JSONValue.self, from: delivery.body)
            #expect(event["type"]?.string == "invoice.finalized")
            #expect(event["data"]?["number"]?.string == "ACME-202610")
            #expect(event["data"]?["status"]?.string == "finalized")
            // The signature verifies over "<t>.<body>" with the endpoint's secret.
            let header = try #require(delivery.headers[HTTPField.Name("Atrium-Signature")!])
            let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").compactMap { part -> (String, String)? in
                let pair = part.split(separator: "=", maxSplits: 1)
                return pair.count == 2 ? (String(pair[0]), String(pair[1])) : nil
            })
            let timestamp = try #require(parts["t"].flatMap { Int64($0) })
            #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 120)
            var signed = Data("\(timestamp).".utf8)
            signed.append(delivery.body)
            let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
            #expect(parts["v1"] == mac.map { String(format: "%02x", $0) }.joined())
            let jobState = try await db.withOwner { connection in
                try await connection.withPlatformTransaction(logger: TestDatabase.logger) { connection in
                    try await connection.query("SELECT state, attempts FROM jobs WHERE kind = 'kernel.webhooks.deliver'", logger: TestDatabase.logger)
                        .collect().first?.decode((String, Int).self)
                }
            }
            #expect(jobState?.0 == "succeeded")
            #expect(jobState?.1 == 2)
        }
    }
}
