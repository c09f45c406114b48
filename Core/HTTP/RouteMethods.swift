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
        var methods: Set<String> = []
        routes.withLock { table in
            for route in table where route.segments.count == requested.count {
                let matches = zip(route.segments, requested).allSatisfy { template, segment in
                    (template.hasPrefix("{") && template.hasSuffix("}")) || template == segment
                }
                if matches { methods.formUnion(route.methods) }
            }
        }
        if methods.contains("GET") { methods.insert("HEAD") }
        return methods.sorted()
    }
}
