public import Foundation

/// Where directives live. SQLite implements it for one machine; a PostgreSQL implementation can
/// follow for several nodes. Implementations enforce the model's constraints in their schema too.
public protocol DirectiveRepository: Sendable {
    /// Stores a new directive. Throws `.invalidDirective` if the id is taken.
    func insert(_ directive: Directive) async throws
    func directive(_ id: DirectiveID) async throws -> Directive?
    /// All directives, newest first.
    func allDirectives() async throws -> [Directive]
    /// Marks a directive revoked and returns it; unknown ids throw `.unknownDirective`.
    func revoke(_ id: DirectiveID, at date: Date) async throws -> Directive
}
