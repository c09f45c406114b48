import CArgon2
import Crypto
import Foundation
import HummingbirdBcrypt
import NIOCore
import NIOPosix

/// Argon2id password hashing with the reference implementation, off the event loop.
///
/// Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
/// parameters travel with each hash: changing them in configuration makes
/// ``verify(_:against:)`` report `needsRehash` at the user's next login instead of
/// invalidating anyone. Hashing runs on a dedicated thread pool one thread smaller than
/// the machine, at a raised nice value (`niceness`), so a storm of logins queues up
/// there and takes the CPU the event loops leave, instead of starving every other
/// request of it; after a hash that waited for the cores the thread rests
/// (`HashingPace`).
public struct PasswordHasher: Sendable {
    /// Argon2id cost parameters. The defaults are OWASP's recommendation.
    public struct Parameters: Sendable, Equatable {
        public var memoryKiB: UInt32
        public var iterations: UInt32
        public var parallelism: UInt32
        public init(memoryKiB: UInt32 = 19456, iterations: UInt32 = 2, parallelism: UInt32 = 1) {
            self.memoryKiB = memoryKiB
            self.iterations = iterations
            self.parallelism = parallelism
        }
    }

    public enum Verification: Sendable, Equatable {
        case invalid
        /// The password matches; `needsRehash` when the hash was made with other parameters.
        case valid(needsRehash: Bool)
    }

    public let parameters: Parameters

    /// Hashing threads shared by every hasher of the process.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount - 1))
        pool.start()
        return pool
    }()

    /// The nice value of hashing threads, as of bulk imports: during a login storm the
    /// event loops (everyone's reads) get the cores first, and logins take what is left.
    static let niceness: Int32 = 10

    /// Runs `body` on a hashing thread, at the hashing threads' priority, and answers;
    /// then the thread rests when the hash had to wait for the cores (`HashingPace`),
    /// before it takes the next. A caller cancelled while its hash waits is answered
    /// `CancellationError` and its hash is not computed.
    static func onHashingThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        let cancelled = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                pool.submit { state in
                    guard state == .active, !cancelled.isSet else {
                        continuation.resume(throwing: CancellationError())
                        return
                    }
                    ThreadPriority.lowerCallingThread(to: niceness)
                    let pace = HashingPace.start()
                    continuation.resume(with: Result(catching: body))
                    pace.restIfContended()
                }
            }
        } onCancel: {
            cancelled.set()
        }
    }

    static let saltLength = 16
    static let hashLength = 32

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
    }

    public func hash(_ password: String) async throws -> String {
        let parameters = self.parameters
        var salt = [UInt8](repeating: 0, count: Self.saltLength)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let saltBytes = salt
        return try await Self.onHashingThread {
            try Self.encode(password, salt: saltBytes, parameters: parameters)
        }
    }

    public func verify(_ password: String, against encoded: String) async throws -> Verification {
        if let legacy = LegacyHash(encoded) {
            // Imported from an older system: accepted once, then replaced by Argon2id at this login.
            let matches = try await Self.onHashingThread { legacy.matches(password) }
            return matches ? .valid(needsRehash: true) : .invalid
        }
        guard encoded.hasPrefix("$argon2id$") else { return .invalid }
        let matches = try await Self.onHashingThread {
            let bytes = Array(password.utf8)
            return encoded.withCString { argon2id_verify($0, bytes, bytes.count) } == ARGON2_OK.rawValue
        }
        guard matches else { return .invalid }
        return .valid(needsRehash: Self.parameters(of: encoded) != parameters)
    }

    /// The parameters a PHC string was made with, or nil when it is not Argon2id.
    static func parameters(of encoded: String) -> Parameters? {
        let fields = encoded.split(separator: "$")
        guard fields.count == 5, fields[0] == "argon2id", fields[1] == "v=19" else { return nil }
        var values: [Substring: UInt32] = [:]
        for pair in fields[2].split(separator: ",") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let value = UInt32(parts[1]) else { return nil }
            values[parts[0]] = value
        }
        guard let m = values["m"], let t = values["t"], let p = values["p"] else { return nil }
        return Parameters(memoryKiB: m, iterations: t, parallelism: p)
    }

    private static func encode(_ password: String, salt: [UInt8], parameters: Parameters) throws -> String {
        let bytes = Array(password.utf8)
        let length = argon2_encodedlen(
            parameters.iterations, parameters.memoryKiB, parameters.parallelism, UInt32(salt.count), UInt32(hashLength), Argon2_id)
        var output = [CChar](repeating: 0, count: length)
        let status = argon2id_hash_encoded(
            parameters.iterations, parameters.memoryKiB, parameters.parallelism, bytes, bytes.count, salt, salt.count, hashLength,
            &output, length)
        guard status == ARGON2_OK.rawValue else {
            throw ConfigurationError("argon2id failed: \(String(cString: argon2_error_message(status)))")
        }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension PasswordHasher {
    /// Whether a hash from a system Atrium replaces can be stored as it is: login checks
    /// it and replaces it with Argon2id on the first success. False for any other scheme
    /// (an unsalted digest, a format of its own), whose users reset their password.
    public static func verifiesLegacyHash(_ encoded: String) -> Bool {
        LegacyHash(encoded) != nil
    }
}

/// Password hashes imported from systems Atrium replaces.
///
/// - bcrypt (`$2a$`, `$2b$`, `$2y$`), as the Python backends used;
/// - salted SHA-256 of legacy JSON stores, imported as `sha256$<salt>$<hex of SHA-256(salt + password)>`.
enum LegacyHash {
    case bcrypt(String)
    case saltedSHA256(salt: String, digest: Data)

    init?(_ encoded: String) {
        if encoded.hasPrefix("$2a$") || encoded.hasPrefix("$2b$") || encoded.hasPrefix("$2y$") {
            self = .bcrypt(encoded)
            return
        }
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "sha256", parts[2].count == 64, let digest = Data(hex: String(parts[2])) {
            self = .saltedSHA256(salt: String(parts[1]), digest: digest)
            return
        }
        return nil
    }

    func matches(_ password: String) -> Bool {
        switch self {
        case .bcrypt(let hash):
            return Bcrypt.verify(password, hash: hash)
        case .saltedSHA256(let salt, let digest):
            return ConstantTime.equal(Data(SHA256.hash(data: Data((salt + password).utf8))), digest)
        }
    }
}

extension Data {
    /// Decodes lowercase or uppercase hex.
    init?(hex: String) {
        guard hex.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
