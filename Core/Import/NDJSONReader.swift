import Foundation

/// Newline-delimited JSON, one object per line, read as it streams. Values become text
/// the way the CSV path sees them: numbers and booleans as written, arrays of strings
/// (tags) joined with ';', null as absent.
struct NDJSONReader {
    private var pending: [UInt8] = []
    private var line = 0
    private var oversized = false
    static let maximumLineBytes = 1 << 20

    mutating func feed(_ bytes: some Collection<UInt8>, emit: (Int, [String: String]?, String?) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                flush(emit: emit)
            } else if pending.count < Self.maximumLineBytes {
                pending.append(byte)
            } else {
                oversized = true
            }
        }
    }

    mutating func finish(emit: (Int, [String: String]?, String?) -> Void) {
        if !pending.isEmpty || oversized { flush(emit: emit) }
    }

    private mutating func flush(emit: (Int, [String: String]?, String?) -> Void) {
        line += 1
        defer {
            pending.removeAll(keepingCapacity: true)
            oversized = false
        }
        if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
        if oversized { return emit(line, nil, "the line is longer than \(Self.maximumLineBytes) bytes") }
        if pending.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { return }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(pending)), case .object(let object) = value else {
            return emit(line, nil, "not a JSON object")
        }
        var fields: [String: String] = [:]
        for (key, value) in object {
            switch value {
            case .string(let text): fields[key] = text
            case .number(let number): fields[key] = number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            case .bool(let flag): fields[key] = flag ? "true" : "false"
            case .array(let items): fields[key] = items.compactMap { if case .string(let text) = $0 { text } else { nil } }.joined(separator: ";")
            case .null, .object: continue
            }
        }
        emit(line, fields, nil)
    }
}
