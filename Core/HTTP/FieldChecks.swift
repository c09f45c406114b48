/// Collects the problems of a request body's fields, so that one 422 names all of them
/// and a client fixes a form in one round instead of one field per request.
public struct FieldChecks: Sendable {
    public private(set) var errors: [AtriumError.FieldError] = []

    public init() {}

    /// Records `message` for `field` when `failed`.
    public mutating func fail(_ field: String, _ message: String, when failed: Bool) {
        if failed { errors.append(.init(field: field, message: message)) }
    }

    /// Records `problem` for `field` when there is one (checks such as
    /// `InputDomain.textProblem` answer what is wrong, or nil).
    public mutating func record(_ field: String, _ problem: String?) {
        if let problem { errors.append(.init(field: field, message: problem)) }
    }

    /// 422 `validation_failed` naming every field recorded; nothing when none was.
    public func finish() throws(AtriumError) {
        if !errors.isEmpty { throw .validation(errors) }
    }
}
