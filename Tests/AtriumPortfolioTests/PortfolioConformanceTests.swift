import AtriumPortfolio
import AtriumTesting
import Testing

@Suite struct PortfolioConformanceTests {
    @Test func portfolioKeepsTheModuleRules() async throws {
        #expect(try await ModuleConformance.problems(of: PortfolioModule()) == [])
    }
}
