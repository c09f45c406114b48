@testable import AtriumCore
import AtriumTesting
import NIOCore
import Testing

@Suite("CSV reader (RFC 4180)")
struct CSVReaderTests {
    func read(_ text: [UInt8], chunk: Int = .max) -> [CSVReader.Record] {
        var reader = CSVReader()
        var records: [CSVReader.Record] = []
        var index = 0
        while index < text.count {
            let end = min(text.count, index + chunk)
            reader.feed(text[index..<end]) { records.append($0) }
            index = end
        }
        reader.finish { records.append($0) }
        return records
    }

    func read(_ text: String, chunk: Int = .max) -> [CSVReader.Record] { read(Array(text.utf8), chunk: chunk) }

    @Test func quotedFieldsEmbeddedNewlinesAndLineNumbers() {
        let text = "email,name,note\r\na@x.io,\"Doe, Jane\",\"said \"\"hi\"\"\"\r\nb@x.io,\"two\r\nlines\",x\r\n\r\nc@x.io,Plain,\n"
        for chunk in [1, 2, 3, 7, 1000] {
            let records = read(text, chunk: chunk)
            #expect(records.map(\.fields) == [
                ["email", "name", "note"], ["a@x.io", "Doe, Jane", "said \"hi\""], ["b@x.io", "two\r\nlines", "x"], ["c@x.io", "Plain", ""],
            ], "chunk \(chunk)")
            // The record after a two-line field starts on line 5; the blank line 5 is skipped, so c@ is on line 6.
            #expect(records.map(\.line) == [1, 2, 3, 6], "chunk \(chunk)")
            #expect(records.allSatisfy { $0.problem == nil })
        }
    }

    @Test func byteOrderMarkLFOnlyAndNoFinalNewline() {
        let records = read([0xEF, 0xBB, 0xBF] + Array("email\nx@y.io\nz@y.io".utf8), chunk: 2)
        #expect(records.map(\.fields) == [["email"], ["x@y.io"], ["z@y.io"]])
        #expect(records.map(\.line) == [1, 2, 3])
    }

    @Test func malformedRowsAreReportedNotGuessed() {
        let bad = read(Array("a,b\n".utf8) + [0x66, 0xFF, 0x2C, 0x78, 0x0A] + Array("\"open,quote\n".utf8))
        #expect(bad.count == 3)
        #expect(bad[1].problem == "not valid UTF-8")
        #expect(bad[1].line == 2)
        #expect(bad[2].problem == "a quoted field is not closed before the end of the file")
        let stray = read("a,b\nx\"y,z\n\"q\"w,z\n")
        #expect(stray[1].problem == "a quote inside an unquoted field")
        #expect(stray[2].problem == "characters after a closing quote")
    }

    @Test func exportedFieldsCannotRunAsSpreadsheetFormulas() {
        var buffer = ByteBuffer()
        CSVWriter.appendRow(["=HYPERLINK(\"x\")", "@SUM(A1)", "+1 555 0100", "-12.5", "+cmd", "plain, with comma"], to: &buffer)
        #expect(String(buffer: buffer) == "\"'=HYPERLINK(\"\"x\"\")\",'@SUM(A1),+1 555 0100,-12.5,'+cmd,\"plain, with comma\"\r\n")
    }

    /// "\r\n" is a single Swift Character, equal to neither "\r" nor "\n": a field holding
    /// one must still be quoted, or it would split the row in two.
    @Test func exportedFieldsWithALineBreakAreQuoted() {
        var buffer = ByteBuffer()
        CSVWriter.appendRow(["two\r\nlines", "one\nline"], to: &buffer)
        #expect(String(buffer: buffer) == "\"two\r\nlines\",\"one\nline\"\r\n")
    }

    @Test func copyTextEscapesWhatCOPYWouldMisread() {
        var buffer = ByteBuffer()
        CopyText.appendRow(line: 7, values: ["a\tb", nil, "back\\slash\nnew\rline"], to: &buffer)
        #expect(String(buffer: buffer) == "7\ta\\tb\t\\N\tback\\\\slash\\nnew\\rline\n")
    }
}
