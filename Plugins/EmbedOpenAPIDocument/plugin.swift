import Foundation
import PackagePlugin

/// Embeds the top-level openapi.yaml into the target as a Swift string, so that the binary serves
/// exactly the contract it was built from. (A resource would not do: SwiftPM copies a symlinked
/// file as a dangling link, and the contract must stay at the top level.)
@main
struct EmbedOpenAPIDocument: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let input = context.package.directoryURL.appending(path: "openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument.swift")
        return [
            .buildCommand(
                displayName: "Embedding openapi.yaml",
                executable: try context.tool(named: "EmbedFile").url,
                arguments: [input.path(), output.path(), "openAPIDocumentText"],
                inputFiles: [input],
                outputFiles: [output])
        ]
    }
}
