import Foundation
import CustosJSON

extension Schema {
    /// A schema in Cedar's human-readable syntax (`.cedarschema`).
    public static func parse(cedarSchema text: String, file: String) throws(SchemaError) -> Schema {
        let namespaces: [RawNamespace]
        do {
            var p = try Parser(text, file: file, schemaSyntax: true)
            namespaces = try p.schemaNamespaces()
        } catch {
            throw SchemaError(file: file, position: "\(error.location.line):\(error.location.column)", error.message, redacted: error.redacted)
        }
        return try SchemaResolver.resolve(namespaces)
    }

    /// A schema in Cedar's JSON schema format.
    public static func parse(json: JSON, file: String) throws(SchemaError) -> Schema {
        try SchemaResolver.resolve(try JSONSchemaParser.namespaces(json, file: file))
    }

    public static func parse(jsonText text: String, file: String) throws(SchemaError) -> Schema {
        let json: JSON
        do { json = try JSON.parse(text) } catch {
            throw SchemaError(file: file, position: error.line > 0 ? "\(error.line):\(error.column)" : "", "invalid JSON: \(error.message)")
        }
        return try parse(json: json, file: file)
    }

    /// Reads a schema file: the JSON format when the name ends in `.json`, else the Cedar syntax.
    public static func load(path: String) throws(SchemaError) -> Schema {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SchemaError(file: path, position: "", "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SchemaError(file: path, position: "", "not valid UTF-8")
        }
        return path.hasSuffix(".json") ? try parse(jsonText: text, file: path) : try parse(cedarSchema: text, file: path)
    }
}
