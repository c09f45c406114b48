public import AtriumCore
public import Foundation

/// What an advisor is shown: a portfolio's positions valued on a date in one currency,
/// its cash, and the investor's risk band. Nothing else reaches the advisor, so the same
/// input always has the same `inputsHash`, and a rules advisor gives the same advice.
public struct AnalysisInput: Codable, Sendable, Equatable {
    public struct Position: Codable, Sendable, Equatable {
        public var symbol: String
        public var name: String
        public var sector: String
        public var assetType: String
        public var currency: String
        public var quantity: DecimalString
        /// In the analysis currency; nil for holdings sent without a cost.
        public var cost: DecimalString?
        public var value: DecimalString
        public var priceDate: String
        public var stale: Bool
    }

    public var asOf: String
    public var currency: String
    /// `conservative`, `moderate` or `aggressive`.
    public var riskBand: String
    public var positions: [Position]
    public var cash: DecimalString

    /// Positions and cash, exact.
    public var total: Decimal { positions.reduce(cash.value) { $0 + $1.value.value } }
}

/// One finding of an analysis: a stable `code` a client can act on, how much it matters,
/// a sentence from a template, and the figures the sentence was made from.
public struct AdviceItem: Codable, Sendable, Equatable {
    public enum Severity: String, Codable, Sendable, CaseIterable, JSONSchemaDescribable {
        case info, warning, critical
    }

    public var code: String
    public var severity: Severity
    public var text: String
    public var figures: [String: String]

    public init(code: String, severity: Severity, text: String, figures: [String: String]) {
        (self.code, self.severity, self.text, self.figures) = (code, severity, text, figures)
    }
}

/// Something that turns an analysis input into advice. The shipped one is `RulesAdvisor`
/// (`rules/1`), deterministic and documented; another (an outside model behind an HTTP
/// endpoint, a firm's own rules) plugs in through `PortfolioModule(advisor:)`. It runs
/// outside any database transaction, so a slow advisor holds no connection or lock, and
/// an advisor that throws bills nothing.
public protocol PortfolioAdvisor: Sendable {
    /// The advisor and its rules version, `name/N`, stored on every analysis.
    var name: String { get }
    func advise(_ input: AnalysisInput) async throws -> [AdviceItem]
}
