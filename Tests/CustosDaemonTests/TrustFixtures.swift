import CustosDaemon
import CustosJSON
import CustosServer
import Foundation
import Testing

/// Requests and folder edits the tests of issue 10 §1 share (facts a caller asserts).
enum Trust {
    /// Adds entities to the fixture folder's entities.json.
    static func addEntities(_ entities: String) -> (String) throws -> Void {
        { dir in
            let path = dir + "/entities.json"
            var text = try String(contentsOfFile: path, encoding: .utf8)
            let end = try #require(text.lastIndex(of: "]"))
            text.replaceSubrange(end..., with: "," + entities + "]\n")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    static func request(_ principal: String, _ action: String, _ resource: String, context: String = "{}",
                        entities: String? = nil) -> String {
        #"{"principal":\#(principal),"action":{"type":"Action","id":"\#(action)"},"resource":\#(resource),"context":\#(context)\#(entities.map { #","entities":\#($0)"# } ?? "")}"#
    }

    static let eu = #"{"purpose":"primary_research","region":"eu-central-1"}"#
    static let oncClinical = #"{"type":"Dataset","id":"onc301-de-clinical"}"#

    static func decideAlice(_ context: String) -> String {
        request(#"{"type":"User","id":"alice"}"#, "read", oncClinical, context: context)
    }
}
