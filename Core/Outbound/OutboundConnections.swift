import CCurl
import Foundation
import Synchronization

/// Idle libcurl handles per scheme, host and port. A handle keeps its connections open
/// after a call (libcurl's connection cache, closed after two idle minutes), so the next
/// call to the same host takes one and skips the TCP and TLS handshakes.
final class OutboundConnections: Sendable {
    /// Handles kept per host, and in all: enough for the calls in flight to reuse theirs.
    let perHost: Int
    let total: Int
    /// Handles as addresses (raw pointers are not `Sendable`); a handle is used by one
    /// call at a time, taken out of here first.
    private let idle = Mutex<(byHost: [String: [UInt]], count: Int)>(([:], 0))

    static let shared = OutboundConnections(perHost: OutboundHTTP.concurrency, total: OutboundHTTP.concurrency * 4)

    init(perHost: Int, total: Int) {
        self.perHost = perHost
        self.total = total
    }

    /// An idle handle for `key`, or a new one.
    func take(for key: String) -> UnsafeMutableRawPointer? {
        let handle = idle.withLock { idle -> UInt? in
            guard let handle = idle.byHost[key]?.popLast() else { return nil }
            idle.count -= 1
            return handle
        }
        return handle.flatMap { UnsafeMutableRawPointer(bitPattern: $0) } ?? curl_easy_init()
    }

    /// Keeps a handle that finished a call for the next call to `key`; its options are
    /// reset (its connections and DNS entries are not). Beyond the bounds it is closed.
    func give(_ handle: UnsafeMutableRawPointer, for key: String) {
        curl_easy_reset(handle)
        let kept = idle.withLock { idle -> Bool in
            guard idle.count < total, idle.byHost[key, default: []].count < perHost else { return false }
            idle.byHost[key, default: []].append(UInt(bitPattern: handle))
            idle.count += 1
            return true
        }
        if !kept { curl_easy_cleanup(handle) }
    }
}

/// Set when the calling task is cancelled; libcurl's progress callback reads it.
final class OutboundCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
    func cancel() { flag.store(true, ordering: .relaxed) }
}

/// Resolves an outbound call's host and picks the address to connect to under a policy.
enum OutboundResolver {
    /// The first address of `host` the policy allows; throws naming what the host resolves
    /// to when none is allowed (never the URL, which may carry secrets).
    static func address(of host: String, port: Int, policy: OutboundAddressPolicy) throws -> OutboundAddress {
        let addresses = try resolve(host, port: port)
        if let allowed = addresses.first(where: { policy.refusal(of: $0) == nil }) { return allowed }
        let reason = addresses.first.flatMap { policy.refusal(of: $0) } ?? "no address"
        throw OutboundError("request to \(host) refused: it resolves to \(reason); allow it with ATRIUM_OUTBOUND_ALLOW (the kernel's calls) or ATRIUM_<MODULE>_OUTBOUND_ALLOW")
    }

    /// Every IPv4 and IPv6 address of `host` (a name or an address literal).
    static func resolve(_ host: String, port: Int) throws -> [OutboundAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw OutboundError("request to \(host) failed: the name does not resolve (\(String(cString: gai_strerror(status))))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [OutboundAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let socketAddress = current.pointee.ai_addr {
                switch current.pointee.ai_family {
                case AF_INET:
                    let bytes = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    }
                    addresses.append(OutboundAddress(ipv4: bytes))
                case AF_INET6:
                    var sin6 = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
                    let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
                    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                    inet_ntop(AF_INET6, &sin6.sin6_addr, &text, socklen_t(INET6_ADDRSTRLEN))
                    let printed = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    addresses.append(OutboundAddress(ipv6: bytes, text: printed))
                default: break
                }
            }
            entry = current.pointee.ai_next
        }
        if addresses.isEmpty { throw OutboundError("request to \(host) failed: the name has no address") }
        return addresses
    }
}
