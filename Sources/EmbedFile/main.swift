import Foundation

// Writes a Swift file declaring `let <name> = "<contents of input>"`, for the EmbedOpenAPIDocument plugin.
let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: EmbedFile INPUT OUTPUT NAME\n".utf8))
    exit(2)
}
let text = try String(contentsOfFile: arguments[1], encoding: .utf8)
// A raw string whose delimiter cannot occur in the text.
var hashes = "#"
while text.contains("\"" + hashes) || text.contains("\\" + hashes) { hashes += "#" }
let source = """
    // Generated from openapi.yaml by the EmbedOpenAPIDocument plugin; do not edit.
    let \(arguments[3]) = \(hashes)\"\"\"
    \(text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n"))
    \"\"\"\(hashes)

    """
try source.write(toFile: arguments[2], atomically: true, encoding: .utf8)
