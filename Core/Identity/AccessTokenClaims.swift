public import Foundation
public import JWTKit

/// The claims of an access token: who (`sub`), in which tenant (`tid`), by which
/// session (`sid`), and when.
public struct AccessTokenClaims: JWTPayload, Equatable {
    public var sub: SubjectClaim
    public var tid: String
    public var sid: String
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim

    public init(userID: UUID, tenantID: UUID, sessionID: UUID, issuedAt: Date, lifetime: TimeInterval) {
        self.sub = SubjectClaim(value: userID.uuidString.lowercased())
        self.tid = tenantID.uuidString.lowercased()
        self.sid = sessionID.uuidString.lowercased()
        // JWT times are whole seconds.
        let issued = Date(timeIntervalSince1970: issuedAt.timeIntervalSince1970.rounded(.down))
        self.iat = IssuedAtClaim(value: issued)
        self.exp = ExpirationClaim(value: issued.addingTimeInterval(lifetime))
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }

    public var userID: UUID? { UUID.parsing(sub.value) }
    public var tenantID: UUID? { UUID.parsing(tid) }
    public var sessionID: UUID? { UUID.parsing(sid) }
}
