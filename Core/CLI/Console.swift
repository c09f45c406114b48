public import Foundation

/// Writes command output: aligned tables for people, JSON for scripts.
public enum Console {
    public static func line(_ text: String = "") {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes without a line break (a progress bar redrawn with `\r`).
    public static func raw(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Whether standard output is a terminal.
    public static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Something the operator should know that is not an error, on stderr (stdout stays
    /// the command's output, for scripts).
    public static func note(_ text: String) {
        FileHandle.standardError.write(Data(("note: " + text + "\n").utf8))
    }

    public static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    public static func json(_ value: some Encodable) throws {
        let encoder = AtriumJSON.encoder
        encoder.outputFormatting.insert(.prettyPrinted)
        line(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    public static func table(_ headers: [String], _ rows: [[String]]) {
        guard !rows.isEmpty else {
            line("(none)")
            return
        }
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        line(render(headers.map { $0.uppercased() }))
        for row in rows { line(render(row)) }
    }

    public static func timestamp(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(.iso8601)
    }
}
