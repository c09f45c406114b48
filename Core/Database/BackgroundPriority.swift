import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// Where bulk work (an import) runs so that it does not take the CPU from requests.
///
/// On a small box an import of a few hundred thousand rows keeps a core busy: parsing
/// and `COPY` in this process, the landing statement in its PostgreSQL backend. At the
/// same priority that core is taken from the request path, and another tenant's reads
/// waited 2.5× longer at p99. Bulk work is not latency-sensitive, so it runs behind
/// requests: its Swift code and its connection's I/O on one thread of its own with a
/// raised nice value (`eventLoop`), and its statements on a backend whose nice value is
/// raised too (`BackendPriority`). Idle CPU still goes to it, so an import on a quiet
/// box runs as fast as before.
enum BackgroundLane {
    /// The nice value of background work: CFS gives a nice-10 thread about a tenth of the
    /// CPU a nice-0 thread gets while both want it. Not 19: a backend holding a lock that
    /// a request waits for (a relation extension of a shared table) still gets to run.
    static let niceness: Int32 = 10

    /// The one thread background work runs on, niced before it runs anything else.
    static let eventLoop: any EventLoop = {
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        loop.execute { ThreadPriority.lowerCallingThread(to: niceness) }
        return loop
    }()
}

/// The nice value of threads and processes (Linux: a thread's own, per thread).
enum ThreadPriority {
    /// Raises the calling thread's nice value to `niceness` (never lowers it): on Linux,
    /// `setpriority(PRIO_PROCESS, 0, …)` sets the calling thread's, not the process's.
    @discardableResult
    static func lowerCallingThread(to niceness: Int32) -> Bool {
        lower(0, to: niceness)
    }

    /// The calling thread's nice value.
    static var callingThread: Int32 {
        errno = 0
        return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    }

    /// Raises the nice value of process (or thread) `pid` to `niceness` unless it is
    /// already at least that; false when the OS refuses.
    static func lower(_ pid: Int32, to niceness: Int32) -> Bool {
        errno = 0
        let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid))
        if errno != 0 { return false }
        if current >= niceness { return true }
        return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid), niceness) == 0
    }
}

/// Lowers the priority of the PostgreSQL backend that serves a connection, when that
/// backend is a process of the embedded cluster on this machine.
///
/// `pg_backend_pid()` names a process on the database's host, so the backend is niced
/// only if the embedded cluster's postmaster (from its `postmaster.pid`) is its parent
/// here: with an external database the number could name an unrelated local process.
/// Raising a nice value needs no privilege when the cluster runs as this process's user
/// (or this process is root); otherwise it is logged and the work runs unniced.
struct BackendPriority: Sendable {
    /// The embedded cluster's `postmaster.pid`.
    let postmasterPIDFile: URL
    let niceness: Int32

    init(cluster: EmbeddedPostgres, niceness: Int32 = BackgroundLane.niceness) {
        self.init(postmasterPIDFile: cluster.clusterDirectory.appending(path: "postmaster.pid"), niceness: niceness)
    }

    init(postmasterPIDFile: URL, niceness: Int32) {
        self.postmasterPIDFile = postmasterPIDFile
        self.niceness = niceness
    }

    /// Lowers the priority of `connection`'s backend; returns its pid when it did.
    @discardableResult
    func lower(_ connection: PostgresConnection, logger: Logger) async -> Int32? {
        do {
            guard let pid = try await connection.query("SELECT pg_backend_pid()", logger: logger).collect().first?.decode(Int32.self) else { return nil }
            guard let postmaster = Self.firstLine(of: postmasterPIDFile).flatMap(Int32.init), Self.parent(of: pid) == postmaster else {
                logger.debug("the backend is not the embedded cluster's on this machine; left at its priority", metadata: ["db.backend_pid": "\(pid)"])
                return nil
            }
            guard ThreadPriority.lower(pid, to: niceness) else {
                logger.debug("could not raise the backend's nice value", metadata: ["db.backend_pid": "\(pid)", "errno": "\(errno)"])
                return nil
            }
            return pid
        } catch {
            logger.debug("could not ask for the backend's pid", metadata: ["error": "\(String(reflecting: error))"])
            return nil
        }
    }

    static func firstLine(of file: URL) -> String? {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        return text.split(separator: "\n", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The parent of `pid` from `/proc/<pid>/stat`: the field after the state, which follows
    /// the command name in parentheses (a name that may itself hold spaces or parentheses).
    static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }
}
