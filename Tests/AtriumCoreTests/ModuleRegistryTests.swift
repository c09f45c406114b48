import ArgumentParser
import AtriumCore
import Testing

struct CRMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crm")
}

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users")
}

struct MisnamedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tools")
}

/// A module whose every declaration a test can set.
struct FakeModule: AtriumModule {
    var id: String
    var version = "1.0.0"
    var requiredKernelVersion = "0.1"
    var dependencies: [String] = []
    var permissions: [PermissionDefinition] = []
    var roleGrants: [String: [String]] = [:]
    var meters: [MeterDefinition] = []
    var channels: [String] = []
    var jobs: [JobDefinition] = []
    var schedules: [ScheduleDefinition] = []
    var commands: [any ParsableCommand.Type] = []
    func routes(_ routes: ModuleRoutes) {}
}

@Suite("Module registry validation")
struct ModuleRegistryTests {
    func problem(_ modules: [any AtriumModule]) -> String? {
        do {
            _ = try ModuleRegistry(modules)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func acceptsAValidSetAndOrdersByDependency() throws {
        let registry = try ModuleRegistry([
            FakeModule(id: "crm", dependencies: ["contacts"], permissions: [.init("crm.deals.read", description: "")]),
            FakeModule(id: "contacts", meters: [.init("contacts.imported", aggregation: .sum, unit: "row")]),
        ])
        #expect(registry.modules.map(\.id) == ["contacts", "crm"])
    }

    /// A module's commands are mounted as `atrium <id>`, beside the kernel's.
    @Test func aModuleCommandIsNamedAfterItsModuleAndNeverAKernelCommand() {
        #expect(problem([FakeModule(id: "crm", commands: [CRMCommand.self])]) == nil)
        #expect(problem([FakeModule(id: "crm", commands: [MisnamedCommand.self])])?.contains("command 'tools' of module 'crm' must be named 'crm'") == true)
        #expect(problem([FakeModule(id: "users")]) == nil)
        #expect(problem([FakeModule(id: "users", commands: [UsersCommand.self])])?.contains("cannot add the command 'atrium users'") == true)
    }

    @Test func refusesDuplicateIDs() {
        #expect(problem([FakeModule(id: "sales"), FakeModule(id: "sales")])?.contains("module id 'sales' is registered twice") == true)
    }

    @Test func refusesMissingDependency() {
        #expect(problem([FakeModule(id: "crypto", dependencies: ["portfolio"])])?
            .contains("module 'crypto' depends on 'portfolio', which is not installed") == true)
    }

    @Test func refusesDependencyCycles() {
        let message = problem([FakeModule(id: "a", dependencies: ["b"]), FakeModule(id: "b", dependencies: ["a"])])
        #expect(message?.contains("cycle") == true)
    }

    @Test func refusesUnprefixedPermissionsMetersJobsAndSchedules() {
        let module = FakeModule(
            id: "beauty",
            permissions: [.init("appointments.write", description: "")],
            meters: [.init("bookings", aggregation: .count, unit: "booking")],
            channels: ["bookings", "sales.deals", "beauty.Bookings", "beauty.bookings"],
            jobs: [JobDefinition(kind: "remind") { _ in }],
            schedules: [ScheduleDefinition(name: "beauty.reminders", kind: "beauty.nothing", every: .seconds(60), perTenant: true)])
        let message = problem([module]) ?? ""
        #expect(message.contains("permission 'appointments.write' of module 'beauty' must start with 'beauty.'"))
        #expect(message.contains("meter 'bookings' of module 'beauty' must start with 'beauty.'"))
        #expect(message.contains("job kind 'remind' of module 'beauty' must start with 'beauty.'"))
        for channel in ["bookings", "sales.deals", "beauty.Bookings"] {
            #expect(message.contains("realtime channel '\(channel)' of module 'beauty' must be 'beauty.<name>'"), "\(channel)")
        }
        #expect(!message.contains("realtime channel 'beauty.bookings'"))
        #expect(message.contains("schedule 'beauty.reminders' of module 'beauty' runs unknown job kind 'beauty.nothing'"))
    }

    @Test func refusesGrantsOfUndeclaredPermissions() {
        let module = FakeModule(id: "sales", permissions: [.init("sales.read", description: "")], roleGrants: ["member": ["sales.write"]])
        #expect(problem([module])?.contains("grants undeclared permission 'sales.write' to role 'member'") == true)
    }

    @Test func refusesReservedAndMalformedIDsAndWrongKernel() {
        #expect(problem([FakeModule(id: "auth")])?.contains("reserved") == true)
        #expect(problem([FakeModule(id: "Sales-Flow")])?.contains("must be lowercase") == true)
        #expect(problem([FakeModule(id: "future", requiredKernelVersion: "2.0")])?.contains("needs kernel 2.0") == true)
    }
}
