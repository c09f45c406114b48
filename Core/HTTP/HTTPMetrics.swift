import Hummingbird
import Prometheus

/// Request counts and latency histograms by route template (never by raw path, so
/// ids do not explode the label set).
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let registry: PrometheusCollectorRegistry
    /// The series of `registry` this middleware has used, per thread.
    private let known = ThreadLocalMemo<SeriesKey, Series>(limit: 4_096)

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    static var requests: MetricNameDescriptor { MetricNameDescriptor(namespace: "atrium", subsystem: "http", metricName: "requests", unitName: "total", helpText: "HTTP requests by route, method and status") }
    static var duration: MetricNameDescriptor { MetricNameDescriptor(namespace: "atrium", subsystem: "http", metricName: "request_duration", unitName: "seconds", helpText: "HTTP request latency by route and method") }
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let series = self.series(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code)
        series.requests.increment()
        series.duration.record(ContinuousClock.now - start)
        return response
    }

    struct SeriesKey: Hashable, Sendable {
        var route: String
        var method: String
        var status: Int
    }

    struct Series: Sendable {
        var requests: Counter
        var duration: DurationHistogram
    }

    /// One route's counter and histogram. The registry finds a series under its lock by
    /// hashing the name and labels; asked on every request by both event loops, that lock
    /// was where the loops queued. The handles are remembered per thread instead.
    private func series(route: String, method: String, status: Int) -> Series {
        known.value(for: SeriesKey(route: route, method: method, status: status)) {
            Series(
                requests: registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))]),
                duration: registry.makeDurationHistogram(descriptor: Self.duration, labels: [("route", route), ("method", method)], buckets: Self.buckets))
        }
    }

}
