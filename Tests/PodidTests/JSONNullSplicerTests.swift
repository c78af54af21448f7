import Foundation
@testable import HTTP
import Testing

/// The splice that adds the contract's `null` members to JSON responses without re-serializing them.
@Suite("JSON null members")
struct JSONNullSplicerTests {
    func spliced(_ text: String, keys: [String] = [], itemKeys: [String] = []) throws -> [String: Any] {
        let bytes = try #require(JSONNullSplicer.splice(Array(text.utf8), keys: keys, itemKeys: itemKeys))
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test("missing top-level keys become null; present ones, nested objects and strings with braces are left alone")
    func topLevel() throws {
        let object = try spliced(#"{"a":1,"lastError":"x","s":"{\"q\": [1,}","n":{"nextCursor":2}}"#, keys: ["nextCursor", "lastError", "b"])
        #expect(object["nextCursor"] is NSNull)
        #expect(object["b"] is NSNull)
        #expect(object["lastError"] as? String == "x")
        #expect(object["s"] as? String == #"{"q": [1,}"#)
        #expect((object["n"] as? [String: Any])?["nextCursor"] as? Int == 2)
        #expect(try spliced("{}", keys: ["a", "b"]).keys.sorted() == ["a", "b"])
    }

    @Test("each object of the top-level items array gets its missing keys; objects deeper down do not")
    func items() throws {
        let object = try spliced(#"{"items":[{"id":1,"details":{"k":[{}]}},{},{"jobId":"j"}],"other":[{}]}"#, keys: ["nextCursor"], itemKeys: ["jobId"])
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.count == 3)
        #expect(items[0]["jobId"] is NSNull && items[1]["jobId"] is NSNull && items[2]["jobId"] as? String == "j")
        #expect(((items[0]["details"] as? [String: Any])?["k"] as? [[String: Any]])?.first?.isEmpty == true)
        #expect((object["other"] as? [[String: Any]])?.first?.isEmpty == true)
        #expect(object["nextCursor"] is NSNull)
    }

    @Test("text that is not a JSON object is left as it is")
    func notAnObject() {
        #expect(JSONNullSplicer.splice(Array("[1]".utf8), keys: ["a"], itemKeys: []) == nil)
        #expect(JSONNullSplicer.splice(Array(#"{"a":"unterminated}"#.utf8), keys: ["b"], itemKeys: []) == nil)
    }
}
