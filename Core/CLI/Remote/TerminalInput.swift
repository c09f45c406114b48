import Foundation

/// Questions the console asks a person at the terminal.
public enum TerminalInput {
    /// Asks on the terminal (`/dev/tty`), so that it works while standard input is a pipe;
    /// nil when there is no terminal (a script must pass the value another way).
    public static func ask(_ prompt: String, hidden: Bool = false) -> String? {
        let descriptor = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        _ = prompt.withCString { write(descriptor, $0, strlen($0)) }
        var saved = termios()
        let hiding = hidden && tcgetattr(descriptor, &saved) == 0
        if hiding {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(descriptor, TCSAFLUSH, &quiet)
        }
        defer {
            if hiding {
                tcsetattr(descriptor, TCSAFLUSH, &saved)
                _ = write(descriptor, "\n", 1)
            }
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(descriptor, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The first line of standard input (`--password-stdin`), nil when it is empty.
    public static func standardInputLine() -> String? {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { return nil }
        return line
    }
}
