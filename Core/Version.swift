public enum AtriumVersion { public static let kernel = "0.1.0" }
