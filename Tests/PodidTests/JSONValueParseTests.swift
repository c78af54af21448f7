import Core
import Foundation
import Testing

/// The direct JSON parser audit reads use, against Foundation's decoder.
@Suite("JSON parsing")
struct JSONValueParseTests {
    @Test("parses what JSONDecoder parses, to the same value", arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-2.5e3,"g":""}"#,
        #"  [ 1 , "x" , { } , [ ] ]  "#,
        #""quote \" backslash \\ slash \/ controls \b\f\n\r\t unicode \u00e9 \u4e2d surrogate \ud83d\ude00""#,
        #"{"nested":{"deeper":{"list":[{"k":"v"},0.125,12345678901]}}}"#,
        #""plain é 中 😀 text""#,
        "null", "true", "0", "-0.5",
    ])
    func matchesDecoder(_ text: String) throws {
        let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(JSONValue.parse(text) == expected)
    }

    @Test("refuses text that is not JSON", arguments: [
        "", "{", #"{"a"}"#, #"{"a":1,}"#, "[1 2]", #""unterminated"#, #""bad \x escape""#, #""\ud83d alone""#, "tru", "1 2",
    ])
    func refuses(_ text: String) {
        #expect(JSONValue.parse(text) == nil)
    }
}

