import Foundation

/// Which addresses outbound calls may reach. By default only the public internet: a URL a
/// tenant (or a compromised provider's discovery document) supplies must not make the
/// server call its own loopback services, the private network behind it, or the cloud's
/// metadata endpoint (169.254.169.254) with the server's own network position.
///
/// The host is resolved once, the address is checked, and the connection is made to that
/// address (pinned), so a name that resolves to a public address when checked and to a
/// private one when connecting (DNS rebinding) cannot slip through.
///
/// Settings: `ATRIUM_OUTBOUND_ALLOW` for the kernel's own calls (OIDC providers, billing
/// webhooks), `ATRIUM_<MODULE>_OUTBOUND_ALLOW` for a module's `context.http`; each a
/// comma-separated list of `loopback`, `private` (RFC 1918, carrier-grade NAT, IPv6
/// unique-local) and `link-local` (which includes the metadata address).
public struct OutboundAddressPolicy: Sendable, Equatable {
    public enum Range: String, Sendable, CaseIterable {
        case loopback
        case `private`
        case linkLocal = "link-local"
    }

    /// The non-public ranges this policy lets calls reach.
    public var allowed: Set<Range>
    /// Whether every address is allowed, unspecified and multicast included: only for
    /// calls to a URL the operator typed (the admin console).
    public var allowsEveryAddress: Bool

    public init(allowing allowed: Set<Range>) {
        self.allowed = allowed
        allowsEveryAddress = false
    }

    /// Public addresses only: the default of every setting.
    public static let publicInternet = OutboundAddressPolicy(allowing: [])

    /// No check at all, for the operator's own command-line calls to a server they name.
    public static let anyAddress: OutboundAddressPolicy = {
        var policy = OutboundAddressPolicy(allowing: Set(Range.allCases))
        policy.allowsEveryAddress = true
        return policy
    }()

    /// Reads a setting's comma-separated ranges; an unknown word is refused by name.
    public init(setting name: String, value: String?) throws {
        var allowed: Set<Range> = []
        for word in (value ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !word.isEmpty {
            guard let range = Range(rawValue: word) else {
                throw ValidationFailure("\(name) must list loopback, private or link-local (comma-separated), not '\(word)'")
            }
            allowed.insert(range)
        }
        self.init(allowing: allowed)
    }

    /// Why a call to `host` would be refused ("a loopback address"), or nil when it would
    /// go out: for checking a URL when it is saved (a webhook endpoint), not only when it
    /// is called. Resolves the name (blocking: call it off the event loops).
    public func refusal(forHost host: String, port: Int) throws -> String? {
        let addresses = try OutboundResolver.resolve(host, port: port)
        return addresses.contains { refusal(of: $0) == nil } ? nil : addresses.compactMap { refusal(of: $0) }.first
    }

    /// Why `address` may not be called, or nil when it may.
    func refusal(of address: OutboundAddress) -> String? {
        if allowsEveryAddress { return nil }
        switch address.kind {
        case .public: return nil
        case .loopback: return allowed.contains(.loopback) ? nil : "a loopback address"
        case .private: return allowed.contains(.private) ? nil : "a private address"
        case .linkLocal: return allowed.contains(.linkLocal) ? nil : "a link-local address"
        case .unroutable: return "an unspecified, multicast or reserved address"
        }
    }
}

/// One resolved address of an outbound call's host, classified.
struct OutboundAddress: Equatable, CustomStringConvertible {
    enum Kind: Equatable {
        case `public`, loopback, `private`, linkLocal, unroutable
    }

    /// The numeric address as text (IPv6 without brackets).
    var text: String
    var isIPv6: Bool
    var kind: Kind

    var description: String { text }

    /// How libcurl's `CURLOPT_RESOLVE` names it (IPv6 in brackets).
    var resolveForm: String { isIPv6 ? "[\(text)]" : text }

    init(ipv4 bytes: [UInt8]) {
        text = bytes.map(String.init).joined(separator: ".")
        isIPv6 = false
        kind = Self.classify(ipv4: bytes)
    }

    init(ipv6 bytes: [UInt8], text: String) {
        self.text = text
        isIPv6 = true
        // An IPv4-mapped address (::ffff:a.b.c.d) reaches the IPv4 address it maps.
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            kind = Self.classify(ipv4: Array(bytes[12..<16]))
        } else {
            kind = Self.classify(ipv6: bytes)
        }
    }

    static func classify(ipv4 b: [UInt8]) -> Kind {
        switch (b[0], b[1]) {
        case (127, _): return .loopback
        case (10, _), (172, 16...31), (192, 168): return .private
        case (100, 64...127): return .private  // carrier-grade NAT (RFC 6598)
        case (169, 254): return .linkLocal  // the cloud metadata endpoint lives here
        case (0, _), (224...255, _): return .unroutable  // "this network", multicast, reserved, broadcast
        case (192, 0) where b[2] == 0 || b[2] == 2: return .unroutable  // IETF protocol assignments, TEST-NET-1
        case (198, 18...19): return .unroutable  // benchmarking
        default: return .public
        }
    }

    static func classify(ipv6 b: [UInt8]) -> Kind {
        if b[0..<15].allSatisfy({ $0 == 0 }) { return b[15] == 1 ? .loopback : .unroutable }  // ::1, ::
        if b[0] == 0xfe && (b[1] & 0xc0) == 0x80 { return .linkLocal }  // fe80::/10
        if (b[0] & 0xfe) == 0xfc { return .private }  // fc00::/7 unique local
        if b[0] == 0xff { return .unroutable }  // multicast
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b { return .unroutable }  // NAT64: would reach IPv4 unchecked
        return .public
    }
}
