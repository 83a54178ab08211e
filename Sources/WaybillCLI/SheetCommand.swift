import ArgumentParser
import Foundation
import WaybillCore
import WaybillSheets

struct SheetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sheet",
        abstract: "Write the routing sheets of one or more directives into one PDF, a page each.")

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "Directive ids.") var ids: [String]
    @Option(name: .shortAndLong, help: "The PDF to write.") var output: String
    @Option(help: "Template name (Templates/NAME-PAPER.svg). Env: WAYBILL_TEMPLATE. Default: standard.")
    var template: String?
    @Option(help: "letter or a4. Env: WAYBILL_PAPER. Default: letter.") var paper: String?

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("name at least one directive id") }
        if let paper, Paper(rawValue: paper.lowercased()) == nil { throw ValidationError("--paper must be letter or a4") }
    }

    func run() async throws {
        var extra: [SettingKey: String] = [:]
        extra[.template] = template
        extra[.paper] = paper
        let context = try CommandContext(settings, extraFlags: extra)
        let sheetTemplate = try context.locateTemplate()
        let keys = try context.keys()
        let now = Date()
        var sheets: [SheetContent] = []
        for text in ids {
            let directive = try await context.directive(text)
            let status = directive.status(at: now)
            guard status.isActive else {
                throw WaybillError(.directiveInactive, "no sheet: \(status.explanation(for: directive.id))")
            }
            sheets.append(
                SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: context.scanAddress))
        }
        try SheetRenderer().renderPDF(sheets, template: sheetTemplate, to: output)
        print("Wrote \(sheets.count) routing sheet\(sheets.count == 1 ? "" : "s") to \(output)")
    }
}

extension CommandContext {
    var scanAddress: String { settings[.scanAddress] ?? "scan@localhost" }

    func locateTemplate() throws -> SheetTemplate {
        let paperName = (settings[.paper] ?? "letter").lowercased()
        guard let paper = Paper(rawValue: paperName) else {
            throw WaybillError(.configError, "paper '\(paperName)' is not letter or a4")
        }
        let locator = TemplateLocator(
            explicitDirectory: settings[.templates], environment: [:], executablePath: CommandLine.arguments.first)
        return try locator.locate(name: settings[.template] ?? "standard", paper: paper)
    }
}
