import HTTPTypes
import Synchronization

/// Which methods each route path answers, for the 405 of a path served under other
/// methods (RFC 9110 §15.5.6: with `Allow`), where the router alone would say 404.
///
/// Filled once from the OpenAPI operations when the router is built, read by every
/// request that matched no route.
final class RouteMethods: Sendable {
    private let routes = Mutex<[(segments: [Substring], methods: Set<String>)]>([])

    /// Records the documented operations (paths written `/v1/tenants/{tenant}/…`).
    func load(_ operations: [OperationRecord]) {
        var byPath: [String: Set<String>] = [:]
        for operation in operations { byPath[operation.path, default: []].insert(operation.method.rawValue) }
        let table = byPath.map { (segments: $0.key.split(separator: "/"), methods: $0.value) }
        routes.withLock { $0 = table }
    }

    /// The methods `path` is served under, sorted; empty when no route has that path.
    func allowed(for path: String) -> [String] {
        let requested = path.split(separator: "/")
        // As the router does, a literal segment wins over a parameter: `contacts/export`
        // is the export route, not `contacts/{id}`.
        var best: (literals: Int, methods: Set<String>) = (-1, [])
        routes.withLock { table in
            for route in table where route.segments.count == requested.count {
                var literals = 0
                let matches = zip(route.segments, requested).allSatisfy { template, segment in
                    if template.hasPrefix("{") && template.hasSuffix("}") { return true }
                    literals += 1
                    return template == segment
                }
                guard matches else { continue }
                if literals > best.literals {
                    best = (literals, route.methods)
                } else if literals == best.literals {
                    best.methods.formUnion(route.methods)
                }
            }
        }
        var methods = best.methods
        if methods.contains("GET") { methods.insert("HEAD") }
        return methods.sorted()
    }
}
