import AtriumCore
import AtriumTesting
import Foundation
import Testing

@Suite("The atrium command line, run as a built binary", .serialized)
struct CLITests {
    @Test func helpExplainsEveryCommand() async throws {
        let help = try await AtriumBinary().run("--help")
        #expect(help.status == 0)
        for command in ["serve", "worker", "migrate", "doctor", "db", "tenants", "users", "roles", "api-keys", "audit", "modules", "jobs", "keys"] {
            #expect(help.stdout.contains("  \(command)"), "help lists \(command)")
        }
        let tenants = try await AtriumBinary().run("tenants", "--help")
        for command in ["create", "list", "show", "suspend", "resume", "delete", "apply"] {
            #expect(tenants.stdout.contains("  \(command)"), "tenants help lists \(command)")
        }
    }

    /// With no data folder named, a command finds the project's `.atrium` from a subfolder
    /// (as git finds `.git`), and elsewhere refuses, naming what to do, instead of making an
    /// empty database there and failing on its missing tables.
    @Test func operatorCommandsFindTheProjectsDataOrRefuse() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let project = scratch.appending(path: "project")
        let subfolder = project.appending(path: "docs/notes")
        let elsewhere = scratch.appending(path: "elsewhere")
        for folder in [subfolder, elsewhere] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let atrium = AtriumBinary()
        let migrate = try await atrium.run(in: project, "migrate")
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let found = try await atrium.run(in: subfolder, "tenants", "list")
        #expect(found.status == 0, "\(found.stderr)")
        #expect(found.stdout.contains("(none)"))
        let refused = try await atrium.run(in: elsewhere, "tenants", "list")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("no Atrium database here"), "\(refused.stderr)")
        #expect(refused.stderr.contains("ATRIUM_DATA_DIR"))
        #expect(!FileManager.default.fileExists(atPath: elsewhere.appending(path: ".atrium").path()), "a refused command left a data folder")
    }

    /// A server whose connections would not fit in PostgreSQL's max_connections refuses
    /// to start and says what to change (the embedded cluster allows 500).
    @Test func aServerThatWouldNotFitItsConnectionsRefusesToStart() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_DB_CONNECTIONS": "900"])
        let refused = try await atrium.run("serve", "--port", String(try LocalPort.free()), "--tenants-dir", scratch.appending(path: "none").path(),
                                     timeout: .seconds(120))
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("this process would open"), "\(refused.stderr)")
        #expect(refused.stderr.contains("lower ATRIUM_DB_CONNECTIONS or raise max_connections"))
    }

    @Test func everyAdminCommandWorksOnTheEmbeddedDatabase() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let tenantsDirectory = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenantsDirectory, withIntermediateDirectories: true)
        try "slug: acme\nname: Acme\nplan: pro\nsettings:\n  timezone: UTC\n".write(to: tenantsDirectory.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        try "slug: glow\nname: Glow\n".write(to: tenantsDirectory.appending(path: "glow.yaml"), atomically: true, encoding: .utf8)
        try "plans:\n  free:\n    price: 0\n  pro:\n    price: 1999\n".write(to: tenantsDirectory.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)

        let migrate = try await atrium.run("migrate")
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(migrate.stdout.contains("applied kernel/0001_platform.sql"))
        #expect(try await atrium.run("migrate").stdout.contains("Database is up to date."))
        let status = try await atrium.run("migrate", "status", "--json")
        #expect(status.stdout.contains(#""state" : "applied""#))

        let doctor = try await atrium.run("doctor")
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
        #expect(doctor.stdout.contains("ok   application role: owns nothing"))
        // A tenant table whose row-level security is switched off fails the doctor, named, exit 1.
        #expect(try await atrium.run("db", "shell", "--role", "owner", "-c", "ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY").status == 0)
        let sick = try await atrium.run("doctor")
        #expect(sick.status == 1, "\(sick.stdout)\(sick.stderr)")
        #expect(sick.stdout.contains("FAIL tenancy schema:") && sick.stdout.contains("audit_events"))
        #expect(try await atrium.run("db", "shell", "--role", "owner", "-c", "ALTER TABLE audit_events FORCE ROW LEVEL SECURITY").status == 0)
        #expect(try await atrium.run("doctor").status == 0)
        // A migration changed after it was applied: the schema is not what this binary runs
        // on, so its tenancy rules are not reported as kept.
        let flip = "UPDATE atrium_migrations SET checksum = reverse(checksum) WHERE owner = 'kernel' AND version = 1"
        #expect(try await atrium.run("db", "shell", "--role", "owner", "-c", flip).status == 0)
        let stale = try await atrium.run("doctor")
        #expect(stale.status == 1)
        #expect(stale.stdout.contains("FAIL migrations"), "\(stale.stdout)")
        #expect(stale.stdout.contains("FAIL tenancy schema: not verified until the migrations are current"), "\(stale.stdout)")
        #expect(try await atrium.run("db", "shell", "--role", "owner", "-c", flip).status == 0)
        #expect(try await atrium.run("doctor").status == 0)

        let apply = try await atrium.run("tenants", "apply", tenantsDirectory.path())
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("acme: created"))
        #expect(apply.stdout.contains("glow: created"))
        #expect(try await atrium.run("tenants", "apply", tenantsDirectory.path()).stdout == "No changes.\n")
        try "slug: glow\nname: Glow Studio\nplan: pro\n".write(to: tenantsDirectory.appending(path: "glow.yaml"), atomically: true, encoding: .utf8)
        #expect(try await atrium.run("tenants", "apply", tenantsDirectory.path()).stdout.contains("glow: updated (name, plan free -> pro)"))

        let plans = tenantsDirectory.appending(path: "plans.yaml").path()
        #expect(try await atrium.run("tenants", "set-plan", "glow", "free", "--plans", plans).stdout == "glow: pro -> free\n")
        let unknownPlan = try await atrium.run("tenants", "set-plan", "glow", "gold", "--plans", plans)
        #expect(unknownPlan.status != 0)
        #expect(unknownPlan.stderr.contains("'gold' is not in the plan catalog"))

        let create = try await atrium.run("tenants", "create", "zeta", "--name", "Zeta Corp", "--plan", "pro")
        #expect(create.status == 0)
        // A plan the catalog does not have would be a tenant no limit applies to.
        let noSuchPlan = try await atrium.run("tenants", "create", "eta", "--name", "Eta", "--plan", "gold", "--plans", plans)
        #expect(noSuchPlan.status != 0)
        #expect(noSuchPlan.stderr.contains("no plan 'gold' in the plan catalog"), "\(noSuchPlan.stderr)")
        let duplicate = try await atrium.run("tenants", "create", "zeta", "--name", "Again")
        #expect(duplicate.status != 0)
        #expect(duplicate.stderr.contains("a tenant with slug 'zeta' already exists"))
        #expect(duplicate.stderr.hasPrefix("error: "), "one prefix for every error, local or remote: \(duplicate.stderr)")
        #expect(duplicate.stderr.split(separator: "\n").count <= 2)

        let list = try await atrium.run("tenants", "list", "--json")
        let slugs = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        #expect(slugs?.compactMap { $0["slug"] as? String } == ["acme", "glow", "zeta"])
        #expect(try await atrium.run("tenants", "show", "acme").stdout.contains("Acme"))
        #expect(try await atrium.run("tenants", "suspend", "zeta").stdout.contains("suspended"))
        #expect(try await atrium.run("tenants", "resume", "zeta").stdout.contains("active"))
        let refused = try await atrium.run("tenants", "delete", "zeta")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--yes"))
        #expect(try await atrium.run("tenants", "delete", "zeta", "--yes").stdout == "deleted zeta\n")
        #expect(try await atrium.run("tenants", "show", "zeta").status != 0)

        #expect(try await atrium.run("modules", "list", "--tenant", "acme").status == 0)
        let unknownModule = try await atrium.run("modules", "enable", "nosuch", "--tenant", "acme")
        #expect(unknownModule.stderr.contains("module 'nosuch' is not installed"))
        #expect(try await atrium.run("jobs", "list", "--json").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")
        let noJob = try await atrium.run("jobs", "retry", UUID().uuidString)
        #expect(noJob.status != 0)
        #expect(try await atrium.run("jobs", "list", "--state", "bogus").status != 0)

        // A job put on the queue by hand can be canceled and retried by id.
        let inserted = try await atrium.run(
            "db", "shell", "--role", "owner", "-c",
            "SELECT set_config('app.scope', 'platform', false); INSERT INTO jobs (kind, run_at) VALUES ('kernel.jobs.prune', now() + interval '1 day') RETURNING id")
        let jobID = try #require(inserted.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { UUID(uuidString: $0) != nil })
        #expect(try await atrium.run("jobs", "cancel", jobID).stdout == "canceled \(jobID)\n")
        #expect(try await atrium.run("jobs", "cancel", jobID).status != 0)
        #expect(try await atrium.run("jobs", "retry", jobID).stdout == "retried \(jobID)\n")
        #expect(try await atrium.run("jobs", "list", "--state", "pending").stdout.contains(jobID))

        let createdUser = try await atrium.run("users", "create", "--tenant", "acme", "--email", "Admin@Acme.test", "--password", "admin-password-1", "--role", "admin")
        #expect(createdUser.status == 0, "\(createdUser.stderr)")
        #expect(try await atrium.run("users", "create", "--tenant", "acme", "--email", "x@acme.test", "--password", "short").stderr.contains("password"))
        #expect(try await atrium.run("users", "create", "--tenant", "acme", "--email", "y@acme.test", "--password", "long-enough-1", "--role", "emperor").stderr.contains("unknown role 'emperor'"))
        #expect(try await atrium.run("users", "create", "--tenant", "acme", "--email", "admin@acme.test", "--password", "admin-password-1").stderr.contains("already exists"))
        let users = try await atrium.run("users", "list", "--tenant", "acme")
        #expect(users.stdout.contains("Admin@Acme.test"))
        #expect(users.stdout.contains("admin"))
        #expect(try await atrium.run("users", "disable", "--tenant", "acme", "--email", "admin@acme.test").stdout == "admin@acme.test disabled\n")
        #expect(try await atrium.run("users", "disable", "--tenant", "acme", "--email", "admin@acme.test").status != 0)
        #expect(try await atrium.run("users", "enable", "--tenant", "acme", "--email", "admin@acme.test").status == 0)
        #expect(try await atrium.run("roles", "grant", "--tenant", "acme", "--email", "admin@acme.test", "--role", "owner").stdout == "admin@acme.test granted owner\n")
        // admin@ is now the tenant's only owner, so the role stays.
        let lastOwner = try await atrium.run("roles", "revoke", "--tenant", "acme", "--email", "admin@acme.test", "--role", "owner")
        #expect(lastOwner.status != 0)
        #expect(lastOwner.stderr.contains("last active owner"))
        #expect(try await atrium.run("roles", "revoke", "--tenant", "acme", "--email", "admin@acme.test", "--role", "admin").status == 0)
        #expect(try await atrium.run("roles", "list", "--tenant", "acme").stdout.contains("kernel.owners.manage"))
        let key = try await atrium.run("api-keys", "create", "--tenant", "acme", "--name", "ci", "--permission", "kernel.audit.read")
        #expect(key.status == 0, "\(key.stderr)")
        #expect(key.stdout.hasPrefix("atr_"))
        #expect(key.stderr.contains("not shown again"))
        let keys = try await atrium.run("api-keys", "list", "--tenant", "acme", "--json")
        let keyID = try #require((try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [[String: Any]])?.first?["id"] as? String)
        #expect(!keys.stdout.contains(String(key.stdout.trimmingCharacters(in: .whitespacesAndNewlines).suffix(20))))
        #expect(try await atrium.run("api-keys", "revoke", "--tenant", "acme", keyID).stdout == "revoked \(keyID)\n")
        let unknownPermission = try await atrium.run("api-keys", "create", "--tenant", "acme", "--name", "x", "--permission", "nope.nothing")
        #expect(unknownPermission.status != 0)
        #expect(unknownPermission.stderr.contains("'nope.nothing' is not a permission; permissions: ") && unknownPermission.stderr.contains("sales.records.any"))
        let noPermission = try await atrium.run("api-keys", "create", "--tenant", "acme", "--name", "x")
        #expect(noPermission.status != 0)
        #expect(noPermission.stderr.contains("at least one --permission"))
        let audit = try await atrium.run("audit", "--tenant", "acme")
        for action in ["user.created", "user.disabled", "role.granted", "role.revoked", "api_key.created", "api_key.revoked"] {
            #expect(audit.stdout.contains(action), "audit shows \(action)")
        }
        #expect(audit.stdout.contains("operator:"))
        let rotated = try await atrium.run("keys", "rotate-signing")
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(rotated.stdout.hasPrefix("added signing key atr-"))

        let url = try await atrium.run("db", "url", "--role", "owner")
        #expect(url.stdout.hasPrefix("postgres://atrium_owner:"))
        let shell = try await atrium.run("db", "shell", "-c", "SELECT count(*) AS tenants FROM tenants")
        #expect(shell.status == 0, "\(shell.stderr)")
        #expect(shell.stdout.contains("2"))

        // Each command started the cluster for its own duration and stopped it again.
        #expect(try await atrium.run("db", "stop").stdout.contains("not running"))
    }

    @Test func serveAppliesTenantFilesServesAndStopsCleanlyOnSIGTERM() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tenantsDirectory = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenantsDirectory, withIntermediateDirectories: true)
        try "slug: acme\nname: Acme\nusers:\n  - email: owner@acme.test\n    password: owner-demo-pw\n    roles: [owner]\n"
            .write(to: tenantsDirectory.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        let port = try LocalPort.free()
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_LOG_FORMAT": "json"])
        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenantsDirectory.path()])
        try await server.waitUntilReady(port: port)
        let known = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme")
        #expect(known.status == 401)  // the demo tenant exists; no unauthenticated way in
        let unknown = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/nobody")
        #expect(unknown.status == 404)
        #expect(unknown.contentType == "application/problem+json")
        // The demo login from the tenant file works against the running server.
        let login = try await HTTP.post("http://127.0.0.1:\(port)/v1/tenants/acme/auth/login", json: #"{"email":"owner@acme.test","password":"owner-demo-pw"}"#)
        #expect(login.status == 200)
        let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
        let me = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/auth/me", bearer: token)
        #expect(me.status == 200)
        let jwks = try await HTTP.get("http://127.0.0.1:\(port)/.well-known/jwks.json")
        #expect(String(decoding: jwks.body, as: UTF8.self).contains(#""crv":"Ed25519""#))
        server.signal(SIGTERM)
        let result = try await server.wait(timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains(#""message":"request""#))  // JSON access log lines
        #expect(result.stderr.contains(#""request.id":""#) && !result.stderr.contains("hb.request.id"))  // one id per line
        #expect(result.stdout.contains("owner@acme.test"))  // the demo login was printed
        #expect(try await atrium.run("db", "stop").stdout.contains("not running"))
    }

    @Test func workerRunsUntilSIGTERMAndExitsCleanly() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let worker = try atrium.start(["worker", "--concurrency", "2"])
        var started = false
        for _ in 0..<600 where !started {
            try await Task.sleep(for: .milliseconds(100))
            started = worker.output().1.contains("job worker started")
        }
        #expect(started)
        // The worker's first pass enqueued and ran the kernel's prune schedule.
        var pruned = false
        for _ in 0..<100 where !pruned {
            try await Task.sleep(for: .milliseconds(100))
            pruned = worker.output().1.contains("pruned finished jobs")
        }
        #expect(pruned)
        worker.signal(SIGTERM)
        let result = try await worker.wait(timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("job worker stopped"))
        #expect(try await atrium.run("db", "stop").stdout.contains("not running"))
    }

    @Test func externalDatabaseNeedsBothURLsAndWorksWithThem() async throws {
        let missingOwner = try await AtriumBinary(extra: ["DATABASE_URL": "postgres://atrium_app:x@127.0.0.1:1/atrium"]).run("migrate")
        #expect(missingOwner.status != 0)
        #expect(missingOwner.stderr.contains("DATABASE_OWNER_URL"))

        let unreachable = try await AtriumBinary(extra: [
            "DATABASE_URL": "postgres://atrium_app:x@127.0.0.1:1/atrium", "DATABASE_OWNER_URL": "postgres://atrium_owner:x@127.0.0.1:1/atrium",
        ]).run("migrate")
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.contains("cannot connect to PostgreSQL at postgres://atrium_owner:***@127.0.0.1:1/atrium"))

        // The throwaway cluster of `make test`, used as an external server.
        let testCluster = try #require(ProcessInfo.processInfo.environment["ATRIUM_TEST_DATA_DIR"])
        let clusterTool = AtriumBinary(dataDirectory: URL(fileURLWithPath: testCluster))
        let app = try await clusterTool.run("db", "url", "--role", "app").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let owner = try await clusterTool.run("db", "url", "--role", "owner").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let external = AtriumBinary(extra: ["DATABASE_URL": app, "DATABASE_OWNER_URL": owner])
        #expect(try await external.run("migrate").status == 0)
        let doctor = try await external.run("doctor")
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
        #expect(doctor.stdout.contains("external postgres://atrium_app:***@"))
    }

    @Test func missingServerBinariesGiveAClearError() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let result = try await AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_PG_BINDIR": "/nonexistent"]).run("migrate")
        #expect(result.status != 0)
        #expect(result.stderr.contains("ATRIUM_PG_BINDIR=/nonexistent does not contain the PostgreSQL server binaries"))
        #expect(!result.stderr.contains("Fatal error"))
    }
}
