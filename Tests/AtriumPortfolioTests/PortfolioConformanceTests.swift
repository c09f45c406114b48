import AtriumPortfolio
import AtriumTesting
import Testing

@Suite struct PortfolioConformanceTests {
    @Test func portfolioKeepsTheModuleRules() async throws {
        let problems = try await ModuleConformance.problems(of: PortfolioModule())
        #expect(problems == [], "\(problems.joined(separator: "\n"))")
    }
}
