import Hummingbird
import Prometheus

/// Request counts and latency histograms by route template (never by raw path, so
/// ids do not explode the label set).
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let registry: PrometheusCollectorRegistry

    static var requests: MetricNameDescriptor { MetricNameDescriptor(namespace: "atrium", subsystem: "http", metricName: "requests", unitName: "total", helpText: "HTTP requests by route, method and status") }
    static var duration: MetricNameDescriptor { MetricNameDescriptor(namespace: "atrium", subsystem: "http", metricName: "request_duration", unitName: "seconds", helpText: "HTTP request latency by route and method") }
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(response.status.code))]).increment()
        registry.makeDurationHistogram(descriptor: Self.duration, labels: [("route", route), ("method", method)], buckets: Self.buckets)
            .record(ContinuousClock.now - start)
        return response
    }
}
