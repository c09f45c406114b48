import Foundation

/// The pieces of JSON text `ResponseJSON` writes itself, each as Foundation writes it.
enum JSONText {
    /// A JSON string: `"` and `\` escaped, control characters as `\b \f \n \r \t` or
    /// `\u00xx`, everything else (slashes, non-ASCII) as its UTF-8 bytes.
    static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                output.append(contentsOf: bytes[start..<index])
                start = index + 1
                output.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): output.append(byte)
                case 0x08: output.append(UInt8(ascii: "b"))
                case 0x0C: output.append(UInt8(ascii: "f"))
                case 0x0A: output.append(UInt8(ascii: "n"))
                case 0x0D: output.append(UInt8(ascii: "r"))
                case 0x09: output.append(UInt8(ascii: "t"))
                default:
                    output.append(contentsOf: "u00".utf8)
                    output.append(hexDigits[Int(byte >> 4)])
                    output.append(hexDigits[Int(byte & 0x0F)])
                }
            }
            output.append(contentsOf: bytes[start...])
        }
        output.append(UInt8(ascii: "\""))
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    /// `2024-05-01T12:30:00Z`: whole seconds of UTC, as `.iso8601` writes a date. Dates
    /// before 1583 are left to Foundation, which writes them in the Julian calendar (the
    /// Gregorian one begins in October 1582), and so are years after 9999.
    static func timestamp(_ date: Date) throws -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        // 1583-01-01 and 9999-12-31T23:59:59 in seconds since 1970.
        guard seconds >= -12_212_553_600, seconds <= 253_402_300_799 else { return try foundationString(date) }
        let total = Int(seconds)
        let days = total >= 0 ? total / 86_400 : (total - 86_399) / 86_400
        let secondOfDay = total - days * 86_400
        let (year, month, day) = CivilDate.of(daysSince1970: days)
        let fields = [(year, 4), (month, 2), (day, 2), (secondOfDay / 3_600, 2), (secondOfDay / 60 % 60, 2), (secondOfDay % 60, 2)]
        // yyyy-MM-ddTHH:mm:ssZ, written digit by digit: the years here all have four.
        return String(unsafeUninitializedCapacity: 20) { buffer in
            var offset = 0
            for (index, (value, width)) in fields.enumerated() {
                var rest = value
                for position in stride(from: offset + width - 1, through: offset, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                offset += width
                buffer[offset] = UInt8(ascii: index < 2 ? "-" : index == 2 ? "T" : index < 5 ? ":" : "Z")
                offset += 1
            }
            return offset
        }
    }

    /// Values whose text is Foundation's business (floating point, `Decimal`, `Data`, and
    /// dates out of range): Foundation's own encoder writes them.
    static func foundationNode<Value: Encodable>(_ value: Value) throws -> JSONNode {
        .literal(String(decoding: try AtriumJSON.encoder.encode(value), as: UTF8.self))
    }

    private static func foundationString(_ date: Date) throws -> String {
        let text = String(decoding: try AtriumJSON.encoder.encode(date), as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }
}
