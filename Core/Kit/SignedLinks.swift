public import Foundation
import HTTPTypes
import Crypto

/// Links that carry their own authority: "cancel this booking", "confirm this lead",
/// "download this export", sent by mail and opened without signing in.
///
/// A token names a purpose, a subject (usually a row id), a tenant and an expiry, under
/// an HMAC-SHA256 with a key derived from the master key for this module alone, so a
/// link of one module, tenant or purpose never verifies as another's. Nothing is stored:
/// a link stays valid until it expires, so a link that must work once also needs a state
/// check on its subject (a cancelled booking stays cancelled).
public struct SignedLinks: Sendable {
    public let moduleID: String
    let key: SymmetricKey
    let publicURL: URL
    let clock: any AtriumClock

    init(moduleID: String, masterKey: MasterKey, publicURL: URL, clock: any AtriumClock) {
        self.moduleID = moduleID
        self.key = masterKey.derivedKey(for: "links:module:\(moduleID)")
        self.publicURL = publicURL
        self.clock = clock
    }

    /// What a verified link carries.
    public struct Link: Sendable, Equatable {
        public var subject: String
        public var expires: Date
    }

    /// A token for `subject`, valid for `purpose` in `tenant` until `expires`
    /// (`<expiry>.<subject>.<signature>`, URL-safe).
    public func token(purpose: String, subject: String, tenant: Tenant, expires: Date) -> String {
        let expiry = Int64(expires.timeIntervalSince1970.rounded(.down))
        let encodedSubject = Base64URL.encode(Data(subject.utf8))
        return "\(expiry).\(encodedSubject).\(Base64URL.encode(signature(purpose: purpose, subject: subject, tenantID: tenant.id, expiry: expiry)))"
    }

    /// An absolute link to one of this module's public routes,
    /// `<ATRIUM_PUBLIC_URL>/v1/public/<tenant>/<module>/<path>?token=…`.
    public func sign(purpose: String, subject: String, tenant: Tenant, expires: Date, path: String) -> URL {
        let route = publicURL.appending(path: "v1/public/\(tenant.slug)/\(moduleID)/\(path)")
        var components = URLComponents(url: route, resolvingAgainstBaseURL: false)
        components?.queryItems = [URLQueryItem(name: "token", value: token(purpose: purpose, subject: subject, tenant: tenant, expires: expires))]
        return components?.url ?? route
    }

    /// The subject of a valid token for `purpose` in `tenant`: 403 `invalid_link` for a
    /// token that was not signed so (or was altered), 410 `link_expired` after its expiry.
    public func verify(_ token: String, purpose: String, tenant: Tenant) throws(AtriumError) -> Link {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let expiry = Int64(parts[0]), let subjectBytes = Base64URL.decode(String(parts[1])),
              let presented = Base64URL.decode(String(parts[2])), let subject = String(bytes: subjectBytes, encoding: .utf8)
        else { throw Self.invalid }
        let expected = signature(purpose: purpose, subject: subject, tenantID: tenant.id, expiry: expiry)
        guard ConstantTime.equal(expected, presented) else { throw Self.invalid }
        let expires = Date(timeIntervalSince1970: TimeInterval(expiry))
        guard clock.now < expires else {
            throw AtriumError(status: .gone, code: "link_expired", title: "Link expired", detail: "This link has expired; ask for a new one.")
        }
        return Link(subject: subject, expires: expires)
    }

    /// `verify` of the request's `?token=`.
    public func verify(_ request: TenantRequest, purpose: String) throws(AtriumError) -> Link {
        guard let token = request.query("token") else { throw Self.invalid }
        return try verify(token, purpose: purpose, tenant: request.tenant)
    }

    static let invalid = AtriumError.forbidden(code: "invalid_link", "This link is not valid.")

    private func signature(purpose: String, subject: String, tenantID: UUID, expiry: Int64) -> Data {
        // Lengths first, so no two different tuples sign the same bytes.
        var message = Data()
        for field in [purpose, subject, tenantID.uuidString.lowercased(), String(expiry)] {
            let bytes = Data(field.utf8)
            message.append(contentsOf: withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { Array($0) })
            message.append(bytes)
        }
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }
}
