import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Tenant admin API: API keys, roles, users, audit")
struct AdminAPITests {
    @Test func apiKeyScopesAreEnforcedAndRevocationIsImmediate() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        _ = try await db.createTenant("globex", modules: ["notes"])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        _ = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let owner = try await client.login("acme", "owner@acme.test", "owner-password").access
            let created = try await client.post("/v1/tenants/acme/admin/api-keys", json: #"{"name":"reporting","permissions":["notes.read"]}"#, token: owner)
            #expect(created.status == .created)
            let key = try #require(json(created)["key"]?.string)
            let keyID = try #require(json(created)["api_key"]?["id"]?.string)
            #expect(key.hasPrefix("atr_"))
            let read = try await client.get("/v1/tenants/acme/notes/notes", token: key)
            #expect(read.status == .ok)
            let viaHeader = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: [HTTPField.Name("X-Api-Key")!: key])
            #expect(viaHeader.status == .ok)
            let write = try await client.post("/v1/tenants/acme/notes/notes", json: #"{"title":"x"}"#, token: key)
            #expect(write.status == .forbidden)
            #expect(json(write)["code"]?.string == "permission_denied")
            let elsewhere = try await client.get("/v1/tenants/globex/notes/notes", token: key)
            #expect(elsewhere.status == .unauthorized)
            let tampered = String(key.dropLast()) + (key.hasSuffix("A") ? "B" : "A")
            #expect(try await client.get("/v1/tenants/acme/notes/notes", token: tampered).status == .unauthorized)
            let listed = try await client.get("/v1/tenants/acme/admin/api-keys", token: owner)
            #expect(!String(buffer: listed.body).contains(String(key.suffix(20))))
            #expect(json(listed)["data"]?.array?.first?["last_used_at"]?.string != nil)
            let revoked = try await client.execute(uri: "/v1/tenants/acme/admin/api-keys/\(keyID)", method: .delete, headers: [.authorization: "Bearer \(owner)"])
            #expect(revoked.status == .noContent)
            #expect(try await client.get("/v1/tenants/acme/notes/notes", token: key).status == .unauthorized)
            let unknownPermission = try await client.post("/v1/tenants/acme/admin/api-keys", json: #"{"name":"x","permissions":["notes.fly"]}"#, token: owner)
            #expect(unknownPermission.status == .unprocessableContent)
        }
    }

    @Test func customRolesGrantPermissionsWithoutEscalation() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        _ = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        let member = try await db.createUser("member@acme.test", password: "member-password", roles: ["member"], in: acme)
        let admin = try await db.createUser("admin@acme.test", password: "admin-password", roles: ["admin"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let owner = try await client.login("acme", "owner@acme.test", "owner-password").access
            let memberToken = try await client.login("acme", "member@acme.test", "member-password").access
            #expect(try await client.post("/v1/tenants/acme/notes/notes", json: #"{"title":"x"}"#, token: memberToken).status == .forbidden)
            let role = try await client.post("/v1/tenants/acme/admin/roles", json: #"{"name":"note_taker","permissions":["notes.read","notes.write"]}"#, token: owner)
            #expect(role.status == .created)
            let granted = try await client.post("/v1/tenants/acme/admin/users/\(member.id)/roles", json: #"{"role":"note_taker"}"#, token: owner)
            #expect(granted.status == .ok)
            #expect(json(granted)["roles"] == ["member", "note_taker"])
            // The member's existing token picks the new permission up at once.
            #expect(try await client.post("/v1/tenants/acme/notes/notes", json: #"{"title":"x"}"#, token: memberToken).status == .created)
            let roles = json(try await client.get("/v1/tenants/acme/admin/roles", token: owner))["data"]?.array ?? []
            #expect(roles.contains { $0["name"]?.string == "note_taker" && $0["kind"]?.string == "custom" })
            #expect(roles.contains { $0["name"]?.string == "owner" && $0["kind"]?.string == "built_in" })

            // An admin cannot hand out owner, which carries more than an admin holds.
            let adminToken = try await client.login("acme", "admin@acme.test", "admin-password").access
            let escalation = try await client.post("/v1/tenants/acme/admin/users/\(admin.id)/roles", json: #"{"role":"owner"}"#, token: adminToken)
            #expect(escalation.status == .forbidden)
            let bad = try await client.post("/v1/tenants/acme/admin/roles", json: #"{"name":"Bad Name","permissions":[]}"#, token: owner)
            #expect(bad.status == .unprocessableContent)
            let unknownRole = try await client.post("/v1/tenants/acme/admin/users/\(member.id)/roles", json: #"{"role":"wizard"}"#, token: owner)
            #expect(unknownRole.status == .unprocessableContent)
            // An admin can end any user's sessions at once.
            let sessions = json(try await client.get("/v1/tenants/acme/admin/users/\(member.id)/sessions", token: owner))
            #expect(sessions["data"]?.array?.count == 1)
            let ended = try await client.execute(uri: "/v1/tenants/acme/admin/users/\(member.id)/sessions", method: .delete, headers: [.authorization: "Bearer \(owner)"])
            #expect(ended.status == .noContent)
            #expect(try await client.get("/v1/tenants/acme/auth/me", token: memberToken).status == .unauthorized)
            let memberAgain = try await client.login("acme", "member@acme.test", "member-password").access
            // Members reach none of the admin API.
            #expect(try await client.get("/v1/tenants/acme/admin/users", token: memberAgain).status == .forbidden)
            #expect(try await client.get("/v1/tenants/acme/admin/audit", token: memberAgain).status == .forbidden)
        }
    }

    @Test func theLastOwnerCanBeNeitherDemotedNorDisabled() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let first = try await db.createUser("first@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        let second = try await db.createUser("second@acme.test", password: "second-password", roles: ["member"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let owner = try await client.login("acme", "first@acme.test", "owner-password").access
            let auth: HTTPFields = [.authorization: "Bearer \(owner)"]
            let demote = try await client.execute(uri: "/v1/tenants/acme/admin/users/\(first.id)/roles/owner", method: .delete, headers: auth)
            #expect(demote.status == .conflict)
            #expect(json(demote)["code"]?.string == "last_owner")
            let disable = try await client.post("/v1/tenants/acme/admin/users/\(first.id)/disable", json: "{}", token: owner)
            #expect(json(disable)["code"]?.string == "last_owner")
            #expect(try await client.post("/v1/tenants/acme/admin/users/\(second.id)/roles", json: #"{"role":"owner"}"#, token: owner).status == .ok)
            let nowAllowed = try await client.execute(uri: "/v1/tenants/acme/admin/users/\(first.id)/roles/owner", method: .delete, headers: auth)
            #expect(nowAllowed.status == .ok)
            #expect(json(nowAllowed)["roles"] == [])
        }
    }

    @Test func anotherTenantsUserIsNotFoundAndAdminActionsAreAudited() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let globex = try await db.createTenant("globex")
        _ = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        let stranger = try await db.createUser("user@globex.test", password: "user-password", roles: ["member"], in: globex)
        try await withIdentityApp(db) { client, _ in
            let owner = try await client.login("acme", "owner@acme.test", "owner-password").access
            let foreign = try await client.post("/v1/tenants/acme/admin/users/\(stranger.id)/roles", json: #"{"role":"admin"}"#, token: owner)
            #expect(foreign.status == .notFound)
            let missing = try await client.post("/v1/tenants/acme/admin/users/\(UUID())/roles", json: #"{"role":"admin"}"#, token: owner)
            #expect(json(foreign)["code"] == json(missing)["code"])
            #expect(json(foreign)["detail"] == json(missing)["detail"])
            _ = try await client.post("/v1/tenants/acme/admin/roles", json: #"{"name":"auditor","permissions":["kernel.audit.read"]}"#, token: owner)
            let audit = json(try await client.get("/v1/tenants/acme/admin/audit?limit=10", token: owner))
            let actions = audit["data"]?.array?.compactMap { $0["action"]?.string } ?? []
            #expect(actions.first == "role.created")
            #expect(actions.contains("login.succeeded"))
            let badLimit = try await client.get("/v1/tenants/acme/admin/audit?limit=1000", token: owner)
            #expect(badLimit.status == .unprocessableContent)
            let users = json(try await client.get("/v1/tenants/acme/admin/users", token: owner))["data"]?.array ?? []
            #expect(users.compactMap { $0["email"]?.string } == ["owner@acme.test"])
        }
    }

    /// Disabling an owner or ending an owner's sessions takes `kernel.owners.manage`,
    /// which admins lack: an admin cannot lock the owners out.
    @Test func anAdminCannotDisableAnOwnerOrEndTheirSessions() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        let first = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        _ = try await db.createUser("second@acme.test", password: "second-password", roles: ["owner"], in: acme)
        let member = try await db.createUser("member@acme.test", password: "member-password", roles: ["member"], in: acme)
        _ = try await db.createUser("admin@acme.test", password: "admin-password", roles: ["admin"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let ownerSession = try await client.login("acme", "owner@acme.test", "owner-password").access
            let admin = try await client.login("acme", "admin@acme.test", "admin-password").access
            let headers: HTTPFields = [.authorization: "Bearer \(admin)"]
            let disable = try await client.execute(uri: "/v1/tenants/acme/admin/users/\(first.id)/disable", method: .post, headers: headers)
            #expect(disable.status == .forbidden)
            #expect(json(disable)["code"]?.string == "permission_denied")
            let end = try await client.execute(uri: "/v1/tenants/acme/admin/users/\(first.id)/sessions", method: .delete, headers: headers)
            #expect(end.status == .forbidden)
            #expect(try await client.get("/v1/tenants/acme/auth/me", token: ownerSession).status == .ok, "the owner is still signed in")
            // The same admin may still disable a member, and an owner may act on an owner.
            #expect(try await client.execute(uri: "/v1/tenants/acme/admin/users/\(member.id)/disable", method: .post, headers: headers).status == .ok)
            let second = try await client.login("acme", "second@acme.test", "second-password").access
            let byOwner = try await client.execute(
                uri: "/v1/tenants/acme/admin/users/\(first.id)/sessions", method: .delete, headers: [.authorization: "Bearer \(second)"])
            #expect(byOwner.status == .noContent)
            #expect(try await client.get("/v1/tenants/acme/auth/me", token: ownerSession).status == .unauthorized)
        }
    }
}
