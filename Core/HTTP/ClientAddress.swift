import Foundation

/// Which IP a request really came from.
///
/// `X-Forwarded-For` is believed only when the peer is a configured trusted proxy, and
/// then the right-most address that is not itself a trusted proxy is the client — so a
/// client cannot pick its own IP by sending the header.
public struct TrustedProxies: Sendable {
    let entries: [String]

    /// Exact addresses (IPv4 or IPv6) or IPv4 CIDR blocks such as `10.0.0.0/8`.
    public init(_ entries: [String]) {
        self.entries = entries
    }

    public func contains(_ address: String) -> Bool {
        entries.contains { entry in
            guard let slash = entry.firstIndex(of: "/") else { return entry == address }
            guard let network = Self.ipv4(String(entry[..<slash])), let bits = Int(entry[entry.index(after: slash)...]), (0...32).contains(bits),
                let value = Self.ipv4(address)
            else { return false }
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            return network & mask == value & mask
        }
    }

    public func clientIP(peer: String?, forwardedFor: String?) -> String? {
        guard let peer, contains(peer), let forwardedFor else { return peer }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.reversed().first { !contains($0) } ?? hops.first ?? peer
    }

    static func ipv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".")
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let byte = UInt8(part) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }
}
