import Foundation

/// Random secrets from the system's CSPRNG.
public enum SecureRandom {
    /// `bytes` random bytes as lowercase hex.
    public static func hex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let byte = UInt8.random(in: .min ... .max, using: &generator)
            return String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }

    /// `bytes` random bytes as unpadded base64url: compact, URL- and header-safe tokens.
    public static func base64URL(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        return Base64URL.encode(data)
    }
}
