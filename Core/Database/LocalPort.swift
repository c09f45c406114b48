import Foundation

/// Finds a free TCP port on the loopback interface by letting the kernel choose one.
public enum LocalPort {
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConfigurationError("cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw ConfigurationError("cannot bind a socket to find a free port") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ConfigurationError("cannot read the port the kernel chose") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension LocalPort {
    /// Fails with a message naming the port and the settings that choose it when
    /// `port` on `host` cannot be bound, so `atrium serve` refuses a busy port before
    /// it migrates or says it is serving. Hosts other than IPv4 literals and
    /// `localhost` are left to the server itself.
    public static func requireAvailable(host: String, port: Int) throws {
        let literal = host == "localhost" ? "127.0.0.1" : host
        var address = sockaddr_in()
        guard inet_pton(AF_INET, literal, &address.sin_addr) == 1, (1...65_535).contains(port) else { return }
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound != 0 else { return }
        let reason = errno == EADDRINUSE ? "is already in use by another process" : "cannot be bound (\(String(cString: strerror(errno))))"
        throw ConfigurationError("port \(port) on \(host) \(reason); choose another with --port or ATRIUM_PORT (and --host or ATRIUM_HOST)")
    }
}
