/// A streaming RFC 4180 reader: quoted fields with doubled quotes, separators and line
/// breaks inside quotes, CRLF or LF line ends, an optional UTF-8 byte order mark. It is
/// fed bytes in chunks of any size and emits records as they complete, so memory holds
/// one record at a time whatever the file's size.
struct CSVReader {
    /// One record and the physical line (1-based) it starts on.
    struct Record {
        var line: Int
        var fields: [String]
        /// Set when a field is not valid UTF-8 or a quote is malformed; the record is reported, not loaded.
        var problem: String?
    }

    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted
    }

    private var state = State.fieldStart
    private var field: [UInt8] = []
    private var fields: [String] = []
    private var problem: String?
    private var line = 1
    private var recordLine = 1
    private var atStart = true
    private var pendingCR = false
    private var bomChecked = false
    private var bomBuffer: [UInt8] = []
    private let separator: UInt8
    /// Longer fields are cut and their record rejected, so one bad row cannot exhaust memory.
    static let maximumFieldBytes = 1 << 20

    init(separator: UInt8 = UInt8(ascii: ",")) {
        self.separator = separator
    }

    mutating func feed(_ bytes: some Sequence<UInt8>, emit: (Record) throws -> Void) rethrows {
        for byte in bytes {
            if !bomChecked {
                bomBuffer.append(byte)
                if bomBuffer == [0xEF, 0xBB, 0xBF] {
                    bomChecked = true
                    bomBuffer = []
                } else if [0xEF, 0xBB, 0xBF].starts(with: bomBuffer) {
                    continue
                } else {
                    bomChecked = true
                    let buffered = bomBuffer
                    bomBuffer = []
                    for held in buffered { try consume(held, emit: emit) }
                }
                continue
            }
            try consume(byte, emit: emit)
        }
    }

    /// Emits the last record when the input does not end with a line break.
    mutating func finish(emit: (Record) throws -> Void) rethrows {
        if !bomChecked {
            bomChecked = true
            let buffered = bomBuffer
            bomBuffer = []
            for held in buffered { try consume(held, emit: emit) }
        }
        if state == .quoted { problem = problem ?? "a quoted field is not closed before the end of the file" }
        if !atStart || !field.isEmpty || !fields.isEmpty || state != .fieldStart {
            try endRecord(emit: emit)
        }
    }

    private mutating func consume(_ byte: UInt8, emit: (Record) throws -> Void) rethrows {
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        if pendingCR {
            pendingCR = false
            if byte == lf { return }  // CRLF: the CR already ended the record
        }
        switch state {
        case .quoted:
            if byte == quote {
                state = .quoteInQuoted
            } else {
                if byte == lf { line += 1 }
                append(byte)
            }
            return
        case .quoteInQuoted:
            if byte == quote {
                field.append(quote)
                state = .quoted
                return
            }
            state = .unquoted  // the closing quote; what follows is handled below
            if byte != separator && byte != cr && byte != lf {
                problem = problem ?? "characters after a closing quote"
                append(byte)
                return
            }
        case .fieldStart:
            if atStart { recordLine = line }
            atStart = false
            if byte == quote {
                state = .quoted
                return
            }
            state = .unquoted
        case .unquoted:
            break
        }
        if byte == separator {
            endField()
        } else if byte == cr || byte == lf {
            if byte == cr { pendingCR = true }
            try endRecord(emit: emit)
            line += 1
        } else {
            if byte == quote { problem = problem ?? "a quote inside an unquoted field" }
            append(byte)
        }
    }

    private mutating func append(_ byte: UInt8) {
        guard field.count < Self.maximumFieldBytes else {
            problem = problem ?? "a field is longer than \(Self.maximumFieldBytes) bytes"
            return
        }
        field.append(byte)
    }

    private mutating func endField() {
        if let text = String(validating: field, as: UTF8.self) {
            fields.append(text)
        } else {
            problem = problem ?? "not valid UTF-8"
            fields.append("")
        }
        field.removeAll(keepingCapacity: true)
        state = .fieldStart
    }

    private mutating func endRecord(emit: (Record) throws -> Void) rethrows {
        endField()
        let record = Record(line: recordLine, fields: fields, problem: problem)
        fields.removeAll(keepingCapacity: true)
        problem = nil
        atStart = true
        state = .fieldStart
        // A blank line is not a record.
        if record.fields.count == 1 && record.fields[0].isEmpty && record.problem == nil { return }
        try emit(record)
    }
}
