import AtriumCore
import AtriumTesting
import Foundation
import HummingbirdOTP
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The `atrium` console against a running `atrium serve`, as a tenant's admin and member
/// would use it: login (password, TOTP), whoami, contexts, raw API calls, refresh of an
/// expired access token, two commands at once, logout, and the exit codes scripts use.
@Suite("The remote admin console", .serialized)
struct RemoteConsoleTests {
    /// A server with two tenants, and a console whose config folder is the test's own.
    struct Setup {
        let scratch: URL
        let server: RunningProcess
        let atrium: AtriumBinary
        let console: AtriumBinary
        let url: String
        var credentials: URL { scratch.appending(path: "config/atrium/credentials.json") }

        func stop() {
            server.stop()
            _ = try? atrium.runBlocking("db", "stop")
            try? FileManager.default.removeItem(at: scratch)
        }

        func stored() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: credentials)) as? [String: Any])
        }

        func context(_ name: String) throws -> [String: Any] {
            let contexts = try #require(try stored()["contexts"] as? [[String: Any]])
            return try #require(contexts.first { $0["name"] as? String == name })
        }

        /// Rewrites one field of a stored login (as time passing, or a token going bad, would).
        func edit(_ name: String, _ key: String, _ value: Any) throws {
            var contents = try stored()
            var contexts = try #require(contents["contexts"] as? [[String: Any]])
            let index = try #require(contexts.firstIndex { $0["name"] as? String == name })
            contexts[index][key] = value
            contents["contexts"] = contexts
            try JSONSerialization.data(withJSONObject: contents).write(to: credentials)
        }
    }

    static func start() async throws -> Setup {
        let scratch = try makeScratchDirectory()
        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try """
            plans:
              pro:
                price: 1999
                modules: [sales]
              free:
                price: 0
                modules: []
            """.write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
        for (slug, password, plan) in [("acme", "acme-owner-pass", "pro"), ("globex", "globex-owner-pass", "free")] {
            try """
                slug: \(slug)
                name: \(slug.capitalized)
                plan: \(plan)
                modules: []
                users:
                  - email: owner@\(slug).test
                    password: \(password)
                    roles: [owner]
                  - email: member@\(slug).test
                    password: member-pass-123
                    roles: [member]
                """.write(to: tenants.appending(path: "\(slug).yaml"), atomically: true, encoding: .utf8)
        }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let port = try LocalPort.free()
        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
        try await server.waitUntilReady(port: port)
        var environment = atrium.environment
        environment["XDG_CONFIG_HOME"] = scratch.appending(path: "config").path()
        environment.removeValue(forKey: "ATRIUM_API_KEY")
        environment.removeValue(forKey: "ATRIUM_CREDENTIALS")
        var console = atrium
        console.environment = environment
        return Setup(scratch: scratch, server: server, atrium: atrium, console: console, url: "http://127.0.0.1:\(port)")
    }

    @Test(.timeLimit(.minutes(5))) func anAdminLogsInWorksRemotelyAndLogsOut() async throws {
        let setup = try await Self.start()
        defer { setup.stop() }
        let console = setup.console

        let unreachable = try await console.run("login", "--server", "http://127.0.0.1:9", "--tenant", "acme", "--email", "owner@acme.test",
                                          "--password-stdin", stdin: "x\n")
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("cannot reach http://127.0.0.1:9"), "\(unreachable.stderr)")

        let notYet = try await console.run("whoami")
        #expect(notYet.status == 3, "\(notYet)")
        #expect(notYet.stderr.contains("not logged in"))

        let login = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "owner@acme.test", "--password-stdin",
                                    stdin: "acme-owner-pass\n")
        #expect(login.status == 0, "\(login.stderr)")
        let attributes = try FileManager.default.attributesOfItem(atPath: setup.credentials.path())
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let file = try String(contentsOf: setup.credentials, encoding: .utf8)
        #expect(!file.contains("acme-owner-pass"))
        #expect(file.contains("refresh_token"))

        let whoami = try await console.run("whoami")
        #expect(whoami.status == 0, "\(whoami.stderr)")
        #expect(whoami.stdout.contains("owner@acme.test"))
        #expect(whoami.stdout.contains(setup.url))
        #expect(whoami.stdout.contains("roles:   owner"))
        #expect(whoami.stdout.contains("remote"))

        // The same command, the same JSON shape, whichever side runs it.
        let remote = try await console.run("users", "list", "--json")
        let local = try await console.run("users", "list", "--json", "--local", "--tenant", "acme")
        #expect(remote.status == 0, "\(remote.stderr)")
        #expect(local.status == 0, "\(local.stderr)")
        let remoteUsers = try #require(try JSONSerialization.jsonObject(with: Data(remote.stdout.utf8)) as? [[String: Any]])
        let localUsers = try #require(try JSONSerialization.jsonObject(with: Data(local.stdout.utf8)) as? [[String: Any]])
        #expect(remoteUsers.count == 2)
        #expect(remoteUsers.map { Set($0.keys) } == localUsers.map { Set($0.keys) })
        #expect(Set(remoteUsers.compactMap { $0["email"] as? String }) == ["owner@acme.test", "member@acme.test"])

        let raw = try await console.run("api", "GET", "admin/users")
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(raw.stdout.contains("member@acme.test"))
        // As in `gh api`, a tenant path may start with a slash; /v1/… is the server's root.
        let slashed = try await console.run("api", "GET", "/admin/users")
        #expect(slashed.status == 0, "\(slashed.stderr)")
        #expect(slashed.stdout == raw.stdout)
        let rooted = try await console.run("api", "GET", "/v1/tenants/acme/admin/users")
        #expect(rooted.status == 0, "\(rooted.stderr)")
        #expect(rooted.stdout.contains("member@acme.test"))
        let created = try await console.run("api", "POST", "admin/roles", "--data", #"{"name":"auditor","permissions":["kernel.audit.read"]}"#)
        #expect(created.status == 0, "\(created.stderr)")
        let invalid = try await console.run("api", "POST", "admin/roles", "--data", #"{"name":"Bad Name!","permissions":[]}"#)
        #expect(invalid.status == 1)
        #expect(invalid.stdout.contains("422"))
        #expect(!invalid.stderr.contains("Fatal"))

        // A token of tenant acme never works on globex: answered like no login at all.
        let foreign = try await console.run("api", "GET", "/v1/tenants/globex/admin/users")
        #expect(foreign.status == 3, "\(foreign)")
        #expect(!foreign.stdout.contains("globex.test"))

        // An access token that went bad (or expired) is refreshed without the user noticing.
        let before = try setup.context("acme@127.0.0.1:\(URL(string: setup.url)?.port ?? 0)")
        let name = try #require(before["name"] as? String)
        try setup.edit(name, "access_token", "not-a-token")
        let refreshed = try await console.run("api", "GET", "auth/me")
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        #expect(try setup.context(name)["refresh_token"] as? String != before["refresh_token"] as? String)

        // Two commands at once, both finding the access token expired, both refresh: the
        // session survives (neither refresh is taken for a replay).
        try setup.edit(name, "access_token_expires_at", "2000-01-01T00:00:00Z")
        let pair = try [console.start(["api", "GET", "auth/me"]), console.start(["api", "GET", "auth/me"])]
        for process in pair {
            let result = try await process.wait(timeout: .seconds(60))
            #expect(result.status == 0, "\(result.stderr)")
        }
        #expect(try await console.run("whoami").status == 0)

        // Logout ends the session on the server: the refresh token it kept no longer works.
        let kept = try #require(try setup.context(name)["refresh_token"] as? String)
        let logout = try await console.run("logout")
        #expect(logout.status == 0, "\(logout.stderr)")
        let reuse = try await HTTP.post("\(setup.url)/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(kept)"}"#)
        #expect(reuse.status == 401)
        #expect(try await console.run("whoami").status == 3)
        #expect(try await console.run("api", "GET", "auth/me").status == 3)
    }

    @Test(.timeLimit(.minutes(5))) func membersPermissionsTOTPContextsAndRefusals() async throws {
        let setup = try await Self.start()
        defer { setup.stop() }
        let console = setup.console

        let member = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "member@acme.test", "--password-stdin",
                                     "--name", "acme-member", stdin: "member-pass-123\n")
        #expect(member.status == 0, "\(member.stderr)")
        let denied = try await console.run("users", "list")
        #expect(denied.status == 4, "\(denied)")
        #expect(denied.stderr.contains("kernel.users.read"))
        let wrongPassword = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "member@acme.test", "--password-stdin",
                                            stdin: "wrong-password\n")
        #expect(wrongPassword.status == 1)
        #expect(wrongPassword.stderr.contains("login refused"))

        // The owner turns TOTP on (over the API), then logs in with a code as a second line.
        let owner = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "owner@acme.test", "--password-stdin",
                                    "--name", "acme-owner", stdin: "acme-owner-pass\n")
        #expect(owner.status == 0, "\(owner.stderr)")
        let enrolled = try await console.run("api", "POST", "auth/mfa/totp/enroll", "--data", "{}")
        let secret = try #require((try JSONSerialization.jsonObject(with: Data(enrolled.stdout.utf8)) as? [String: Any])?["secret"] as? String)
        let confirmed = try await console.run("api", "POST", "auth/mfa/totp/confirm", "--data", #"{"code":"\#(Self.code(secret, at: Date()))"}"#)
        #expect(confirmed.status == 0, "\(confirmed.stderr)")
        let noCode = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "owner@acme.test", "--password-stdin",
                                     "--name", "acme-owner", stdin: "acme-owner-pass\n")
        #expect(noCode.status == 2, "\(noCode)")
        let withCode = try await console.run(
            "login", "--server", setup.url, "--tenant", "acme", "--email", "owner@acme.test", "--password-stdin", "--name", "acme-owner",
            stdin: "acme-owner-pass\n\(Self.code(secret, at: Date().addingTimeInterval(30)))\n")
        #expect(withCode.status == 0, "\(withCode.stderr)")

        // Two logins kept; the current one is what commands use; --context picks another.
        let list = try await console.run("context", "list")
        #expect(list.stdout.contains("* ") && list.stdout.contains("acme-owner") && list.stdout.contains("acme-member"), "\(list.stdout)")
        #expect(try await console.run("users", "list").status == 0)
        #expect(try await console.run("users", "list", "--context", "acme-member").status == 4)
        #expect(try await console.run("context", "use", "acme-member").status == 0)
        #expect(try await console.run("whoami").stdout.contains("member@acme.test"))
        #expect(try await console.run("context", "use", "nobody").status == 2)

        // Usage errors exit 2; a credentials file others can read is refused.
        #expect(try await console.run("api", "FETCH", "auth/me").status == 2)
        #expect(try await console.run("api", "GET").status == 2)
        #expect(try await console.run("users", "list", "--local", "--remote").status == 2)
        let operatorOnly = try await console.run("migrate", "--remote")
        #expect(operatorOnly.status == 2)
        #expect(operatorOnly.stderr.contains("`atrium migrate` is an operator command"))
        #expect(try await console.run("users", "create", "--context", "acme-owner", "--email", "x@acme.test").stderr.contains("users invite"))
        chmod(setup.credentials.path(), 0o644)
        let exposed = try await console.run("whoami")
        #expect(exposed.status == 1)
        #expect(exposed.stderr.contains("chmod 600"))
    }

    @Test(.timeLimit(.minutes(5))) func anAdminAdministersTheTenantRemotely() async throws {
        let setup = try await Self.start()
        defer { setup.stop() }
        let console = setup.console
        let login = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "owner@acme.test", "--password-stdin",
                                    stdin: "acme-owner-pass\n")
        #expect(login.status == 0, "\(login.stderr)")

        let invited = try await console.run("users", "invite", "--email", "new@acme.test", "--role", "member")
        #expect(invited.status == 0, "\(invited.stderr)")
        #expect(try await console.run("audit", "--json").stdout.contains("new@acme.test"))
        // The table names the acting user, as the local command does (not `user:-`).
        let audit = try await console.run("audit")
        #expect(audit.status == 0, "\(audit.stderr)")
        #expect(!audit.stdout.contains("user:-"), "\(audit.stdout)")
        #expect(audit.stdout.contains("user:"), "\(audit.stdout)")
        // The running server records the caller's address and user agent, and with no
        // trusted proxies (the default) believes no client's X-Forwarded-For.
        var probe = URLRequest(url: try #require(URL(string: setup.url + "/v1/tenants/acme/auth/login")))
        probe.httpMethod = "POST"
        probe.setValue("application/json", forHTTPHeaderField: "Content-Type")
        probe.setValue("203.0.113.9", forHTTPHeaderField: "X-Forwarded-For")
        probe.setValue("xff-probe/1", forHTTPHeaderField: "User-Agent")
        probe.httpBody = Data(#"{"email":"owner@acme.test","password":"not-the-password"}"#.utf8)
        #expect(try await HTTP.send(probe).status == 401)
        let events = try #require(
            try JSONSerialization.jsonObject(with: Data(try await console.run("audit", "--json").stdout.utf8)) as? [[String: Any]])
        let failed = try #require(events.first { $0["user_agent"] as? String == "xff-probe/1" }, "\(events.prefix(3))")
        #expect(failed["action"] as? String == "login.failed")
        #expect(failed["ip"] as? String == "127.0.0.1", "\(failed)")
        #expect(try await console.run("roles", "grant", "--email", "member@acme.test", "--role", "admin").status == 0)
        let users = try await console.run("users", "list").stdout
        #expect(users.contains("admin,member") || users.contains("member,admin"), "\(users)")
        #expect(try await console.run("roles", "revoke", "--email", "member@acme.test", "--role", "admin").status == 0)
        #expect(try await console.run("users", "disable", "--email", "member@acme.test").status == 0)
        #expect(try await console.run("users", "list").stdout.contains("disabled"))
        #expect(try await console.run("users", "enable", "--email", "member@acme.test").status == 0)
        #expect(try await console.run("users", "disable", "--email", "nobody@acme.test").status == 2)

        let sessions = try await console.run("sessions", "list", "--email", "owner@acme.test", "--json")
        #expect(sessions.status == 0, "\(sessions.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(sessions.stdout.utf8)) as? [Any])?.isEmpty == false)
        #expect(try await console.run("billing", "webhook").stdout.contains("no webhook endpoint"))
        let hook = try await console.run("billing", "webhook", "--url", "https://hooks.example.com/atrium")
        #expect(hook.stdout.contains("signing secret (shown once): ") && !hook.stdout.contains("(shown once): -"), "\(hook)")
        #expect(try await console.run("billing", "webhook").stdout.contains("https://hooks.example.com/atrium"))
        #expect(try await console.run("billing", "subscription").stdout.contains("plan:    pro"))

        // An API key made remotely works for scripts (no file, just the environment) until revoked.
        let created = try await console.run("api-keys", "create", "--name", "ci", "--permission", "kernel.users.read", "--json")
        #expect(created.status == 0, "\(created.stderr)")
        let key = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])
        let secret = try #require(key["key"] as? String)
        let keyID = try #require((key["api_key"] as? [String: Any])?["id"] as? String)
        #expect(try await console.run("api-keys", "list").stdout.contains(keyID))
        var script = console
        script.environment["XDG_CONFIG_HOME"] = setup.scratch.appending(path: "script-config").path()
        script.environment["ATRIUM_API_KEY"] = secret
        script.environment["ATRIUM_SERVER"] = setup.url
        script.environment["ATRIUM_TENANT"] = "acme"
        let listed = try await script.run("users", "list", "--json")
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("owner@acme.test"))
        #expect(try await script.run("api-keys", "list").status == 4)
        #expect(try await console.run("api-keys", "revoke", keyID).status == 0)
        #expect(try await script.run("users", "list").status == 3)

        // Modules: one the plan has is enabled; one outside another tenant's plan is refused.
        let enabled = try await console.run("modules", "enable", "sales")
        #expect(enabled.status == 0, "\(enabled.stderr)")
        let modules = try #require(try JSONSerialization.jsonObject(with: Data(await console.run("modules", "list", "--json").stdout.utf8)) as? [[String: Any]])
        #expect(modules.contains { $0["id"] as? String == "sales" && $0["enabled"] as? Bool == true && $0["in_plan"] as? Bool == true })
        // A module's import command uploads the file and follows the job to its summary.
        let csv = setup.scratch.appending(path: "contacts.csv")
        try "email,first_name\nada@example.com,Ada\nbroken,Bad\ngrace@example.com,Grace\n".write(to: csv, atomically: true, encoding: .utf8)
        let imported = try await console.run("sales", "import", "--entity", "contacts", csv.path())
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("progress: "), "\(imported.stdout)")
        #expect(imported.stdout.contains("(rows owned by owner@acme.test)"), "\(imported.stdout)")
        #expect(imported.stdout.contains("read 3, written 2, unchanged 0, rejected 1"), "\(imported.stdout)")
        #expect(imported.stdout.contains("line 3: email 'broken' is not an email address"), "\(imported.stdout)")
        #expect(try await console.run("api", "GET", "sales/contacts").stdout.contains("grace@example.com"))
        #expect(try await console.run("sales", "import", "--entity", "contacts", "--owner", "x@acme.test", csv.path()).status == 2)

        let globex = try await console.run("login", "--server", setup.url, "--tenant", "globex", "--email", "owner@globex.test", "--password-stdin",
                                     "--name", "globex", stdin: "globex-owner-pass\n")
        #expect(globex.status == 0, "\(globex.stderr)")
        let refused = try await console.run("modules", "enable", "sales", "--context", "globex")
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("plan_upgrade_required"))
        #expect(try await console.run("modules", "list", "--context", "globex").stdout.contains("no (upgrade the plan)"))

        // Login providers: the owner adds and removes one; an admin may not (a provider vouches for any email).
        #expect(try await console.run("context", "use", "acme@\(setup.url.dropFirst("http://".count))").status == 0)
        let added = try await console.run("oidc", "add", "--name", "corp", "--issuer", "https://id.example.com", "--client-id", "atrium",
                                    "--client-secret-stdin", stdin: "s3cret\n")
        #expect(added.status == 0, "\(added.stderr)")
        let providers = try await console.run("oidc", "list")
        #expect(providers.stdout.contains("https://id.example.com") && !providers.stdout.contains("s3cret"))
        #expect(try await console.run("oidc", "remove", "corp").status == 0)
        #expect(try await console.run("oidc", "remove", "corp").status == 1)
        #expect(try await console.run("roles", "grant", "--email", "member@acme.test", "--role", "admin").status == 0)
        let admin = try await console.run("login", "--server", setup.url, "--tenant", "acme", "--email", "member@acme.test", "--password-stdin",
                                    "--name", "acme-admin", stdin: "member-pass-123\n")
        #expect(admin.status == 0, "\(admin.stderr)")
        let notOwner = try await console.run("oidc", "list", "--context", "acme-admin")
        #expect(notOwner.status == 4, "\(notOwner)")
        #expect(notOwner.stderr.contains("kernel.sso.manage"))

        // Usage and invoices, as the server reports them.
        // globex's calls above are counted in memory and recorded within a second or so:
        // the report shows them (an empty report would prove nothing).
        var usage = try await console.run("usage", "report", "--json", "--context", "globex")
        let reported = try await eventually(timeout: .seconds(20), every: .milliseconds(500)) {
            usage = try await console.run("usage", "report", "--json", "--context", "globex")
            return usage.status == 0 && usage.stdout.contains("kernel.api_calls")
        }
        #expect(reported, "\(usage.stdout)\(usage.stderr)")
        let invoices = try await console.run("invoices", "list", "--json")
        #expect(invoices.status == 0, "\(invoices.stderr)")
        #expect(try await console.run("invoices", "show", "INV-404").status == 2)
    }

    /// The code an authenticator shows for the base32 `secret` at `date`.
    static func code(_ secret: String, at date: Date) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bits = 0
        var value = 0
        var bytes: [UInt8] = []
        for character in secret.uppercased() where character != "=" {
            guard let index = alphabet.firstIndex(of: character) else { continue }
            value = (value << 5) | index
            bits += 5
            if bits >= 8 {
                bytes.append(UInt8((value >> (bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return String(format: "%06d", TOTP(secret: String(decoding: bytes, as: UTF8.self)).compute(date: date))
    }
}
