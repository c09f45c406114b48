public import HTTPTypes

/// Header names the kernel reads or writes that HTTPTypes does not predefine. Each is a
/// valid token, so the initializer cannot fail; the fallback only satisfies the type.
extension HTTPField.Name {
    /// Sent back by a reconnecting Server-Sent Events client (HTML standard, §9.2).
    public static var lastEventID: HTTPField.Name { HTTPField.Name("Last-Event-ID") ?? .accept }
    /// Makes a create safe to retry (see `TenantRequest.idempotent`).
    public static var idempotencyKey: HTTPField.Name { HTTPField.Name("Idempotency-Key") ?? .accept }
    /// Stops nginx from buffering a streamed response.
    static var accelBuffering: HTTPField.Name { HTTPField.Name("X-Accel-Buffering") ?? .accept }
}
