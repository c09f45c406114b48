/// Every permission of the platform and what each role grants.
///
/// The kernel declares its own `kernel.*` permissions; modules add theirs and their role
/// grants through the registry. Built-in roles: `owner` holds every permission,
/// `admin` every kernel permission but the owner-only ones plus what modules grant to
/// `admin`, `member` what
/// modules grant to `member`. Roles a module names in its grants (for example
/// `sales_rep`) exist in every tenant.
public struct PermissionCatalog: Sendable {
    public static let kernelPermissions: [PermissionDefinition] = [
        .init("kernel.users.read", description: "List users and their roles"),
        .init("kernel.users.manage", description: "Invite, disable and enable users; assign roles"),
        .init("kernel.roles.manage", description: "Create and change custom roles"),
        .init("kernel.api_keys.manage", description: "Create and revoke API keys"),
        .init("kernel.sessions.manage", description: "End any user's sessions"),
        .init("kernel.audit.read", description: "Read the audit log"),
        .init("kernel.modules.manage", description: "Enable and disable the modules the plan includes"),
        .init("kernel.billing.read", description: "Read the subscription, usage and invoices"),
        .init("kernel.billing.manage", description: "Set where billing webhooks go"),
        .init("kernel.usage.write", description: "Record usage events from outside services (batch ingestion)"),
        .init("kernel.owners.manage", description: "Make users owners or take that role away (owners only)"),
        .init("kernel.sso.manage", description: "Configure OpenID Connect login providers (owners only: a provider vouches for any email)"),
    ]

    /// Kernel permissions only owners hold; everything an owner can do beyond an admin hangs on these.
    public static let ownerOnlyPermissions: Set<String> = ["kernel.owners.manage", "kernel.sso.manage"]

    public static let builtInRoles = ["owner", "admin", "member"]

    public let permissions: [PermissionDefinition]
    public let grants: [String: Set<String>]

    public init(registry: ModuleRegistry) {
        let all = Self.kernelPermissions + registry.modules.flatMap(\.permissions)
        var grants: [String: Set<String>] = [
            "owner": Set(all.map(\.name)),
            "admin": Set(Self.kernelPermissions.map(\.name)).subtracting(Self.ownerOnlyPermissions),
            "member": [],
        ]
        for module in registry.modules {
            for (role, permissions) in module.roleGrants where role != "owner" {
                grants[role, default: []].formUnion(permissions)
            }
        }
        self.permissions = all
        self.grants = grants
    }

    /// The permissions held through `roles`; unknown role names grant nothing.
    public func permissions(for roles: some Sequence<String>) -> Set<String> {
        roles.reduce(into: Set<String>()) { result, role in result.formUnion(grants[role] ?? []) }
    }

    public func isRole(_ name: String) -> Bool { grants[name] != nil }

    public var roleNames: [String] { grants.keys.sorted() }
}
