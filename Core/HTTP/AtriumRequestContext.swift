import Foundation
public import Hummingbird
import Logging

/// The request context of every Atrium route.
///
/// Middleware fills it as the request moves along the request path of DESIGN.md:
/// the request id first, then the tenant of the path, then the authenticated principal.
public struct AtriumRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The `X-Request-Id` of this request, accepted from the client or generated.
    public var requestID: String
    /// The tenant named in the path, once resolved.
    public var tenant: Tenant?
    /// The authenticated caller, once authenticated.
    public var principal: Principal?
    /// Upper bound on request bodies collected into memory.
    public var maxUploadSize: Int
    /// The peer's IP address (the proxy's, behind one).
    public var peerIP: String?
    /// The connection and transaction of an authenticated tenant request, once opened.
    var requestTransaction: RequestTransaction?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.tenant = nil
        self.principal = nil
        self.maxUploadSize = 1 << 20
        self.peerIP = source.channel.remoteAddress?.ipAddress
        self.requestTransaction = nil
    }

    /// The request id (`X-Request-Id`); shadows Hummingbird's, whose log metadata the
    /// request-id middleware removes so that log lines carry one id.
    public var id: String { requestID }

    public var requestDecoder: AtriumRequestDecoder { AtriumRequestDecoder() }
    public var responseEncoder: AtriumResponseEncoder { AtriumResponseEncoder() }
}

/// Decodes JSON bodies with the API's conventions and turns every failure into a
/// `validation_failed` or `malformed_json` problem that names the offending field.
public struct AtriumRequestDecoder: RequestDecoder {
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        try await decode(type, from: request, maxSize: context.maxUploadSize)
    }

    func decode<T: Decodable>(_ type: T.Type, from request: Request, maxSize: Int) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxSize)
        } catch {
            throw AtriumError(
                status: .contentTooLarge, code: "payload_too_large", title: "Payload too large",
                detail: "The request body exceeds \(maxSize) bytes.")
        }
        return try Self.decode(type, from: Data(buffer.readableBytesView))
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let field = fieldHoldingNUL(data) {
            throw AtriumError.validation(field: field, "must not contain NUL characters (\\u0000)")
        }
        do {
            return try AtriumJSON.decoder.decode(type, from: data)
        } catch let error as DecodingError {
            throw Self.problem(for: error)
        }
    }

    static func problem(for error: DecodingError) -> AtriumError {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { key in key.intValue.map { "[\($0)]" } ?? snakeCase(key.stringValue) }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .badRequest(code: "malformed_json", "The request body is not valid JSON.")
        case .dataCorrupted(let context) where context.debugDescription.hasPrefix("must "):
            return .validation(field: path(context.codingPath), context.debugDescription)
        case .dataCorrupted(let context):
            return .validation(field: path(context.codingPath), "has an invalid value")
        case .keyNotFound(let key, let context):
            return .validation(field: path(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return .validation(field: path(context.codingPath).isEmpty ? "body" : path(context.codingPath), "must be \(jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            return .validation(field: path(context.codingPath), "must be \(jsonTypeName(type)), not null")
        @unknown default:
            return .badRequest(code: "malformed_json", "The request body could not be decoded.")
        }
    }

    /// The path of the first string (or key) holding an escaped NUL, which no text column
    /// can store. The byte scan finds nothing in almost every body; only a body with a
    /// `\u0000` escape is decoded a second time to name the field.
    static func fieldHoldingNUL(_ data: Data) -> String? {
        let escape = Array("\\u0000".utf8)
        guard data.count >= escape.count, data.withUnsafeBytes({ bytes in
            var index = bytes.startIndex
            while index + escape.count <= bytes.endIndex {
                if bytes[index] == escape[0], bytes[index + 1] == escape[1], bytes[index + 2...index + 5].allSatisfy({ $0 == UInt8(ascii: "0") }) {
                    return true
                }
                index += 1
            }
            return false
        }) else { return nil }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        func search(_ value: JSONValue, _ path: String) -> String? {
            switch value {
            case .string(let text):
                return InputDomain.containsNUL(text) ? path : nil
            case .array(let items):
                for (index, item) in items.enumerated() {
                    if let found = search(item, "\(path)[\(index)]") { return found }
                }
                return nil
            case .object(let members):
                for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                    let child = path.isEmpty ? snakeCase(key) : "\(path).\(snakeCase(key))"
                    if InputDomain.containsNUL(key) { return path.isEmpty ? "body" : path }
                    if let found = search(member, child) { return found }
                }
                return nil
            default:
                return nil
            }
        }
        return search(value, "") ?? "body"
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is UUID.Type, is Date.Type: return "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }

    private static func snakeCase(_ key: String) -> String { SnakeCase.convert(key) }
}

/// Encodes responses with the API's JSON conventions (`ResponseJSON`: the bytes
/// `AtriumJSON.encoder` would write, written directly).
public struct AtriumResponseEncoder: ResponseEncoder {
    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let data = try ResponseJSON.encode(value)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
