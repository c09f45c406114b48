import AtriumSales
import AtriumTesting
import Testing

@Suite struct SalesConformanceTests {
    @Test func salesKeepsTheModuleRules() async throws {
        #expect(try await ModuleConformance.problems(of: SalesModule()) == [])
    }
}
