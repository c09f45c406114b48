public import AtriumCore
import Foundation
public import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
public import Testing

/// Decodes a JSON response body into a loose JSON value for assertions: null for an
/// empty body, and a recorded issue (not a silent null) for a body that is not JSON.
public func json(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) -> JSONValue {
    guard response.body.readableBytes > 0 else { return .null }
    do {
        return try JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body))
    } catch {
        Issue.record("the response body is not JSON: \(String(buffer: response.body).prefix(200))", sourceLocation: sourceLocation)
        return .null
    }
}

extension JSONValue {
    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }
    public var array: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }
    public var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
    /// A JSON number that is a whole number, as an `Int`.
    public var int: Int? {
        if case .number(let value) = self, value == value.rounded(), abs(value) < 1e15 { return Int(value) }
        return nil
    }
}
