using Pagoda.StructuredOutput;
using static Pagoda.Tests.StructuredOutput.GrammarKit;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>Each JSON Schema feature: texts accepted and rejected, fed byte by byte through the automaton.</summary>
public class JsonSchemaTests
{
    private static CompiledGrammar Schema(string json) => Compiler().JsonSchema(json);

    private static void Check(string schema, string[] accepted, string[] rejected)
    {
        var g = Schema(schema);
        foreach (var a in accepted) Assert.True(Matches(g, a), $"should accept {a} for {schema}");
        foreach (var r in rejected) Assert.False(Matches(g, r), $"should reject {r} for {schema}");
    }

    [Fact]
    public void ObjectWithRequiredAndOptionalPropertiesInSchemaOrder() => Check(
        """{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"]}""",
        ["""{"b":"x"}""", """{"a":1,"b":"x"}""", """{"a": 1, "b": "x", "c": true}""", """{"b":"x","c":false}""", "{ \"b\" : \"\" }"],
        ["{}", """{"a":1}""", """{"b":"x","a":1}""", """{"b":"x",}""", """{"b":"x","d":1}""", """{"b":1}"""]);

    [Fact]
    public void AllOptionalPropertiesAllowTheEmptyObject() => Check(
        """{"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"}}}""",
        ["{}", "{ }", """{"a":null}""", """{"b":null}""", """{"a":null,"b":null}"""],
        ["""{,"b":null}""", """{"a":null,}""", """{"b":null,"a":null}"""]);

    [Fact]
    public void ManyOptionalPropertiesChainThroughRules()
    {
        var props = string.Join(",", Enumerable.Range(0, 12).Select(i => $"\"p{i}\":{{\"type\":\"integer\"}}"));
        Check("{\"type\":\"object\",\"properties\":{" + props + "}}",
            ["{}", """{"p3":1}""", """{"p0":1,"p11":2}""", """{"p2":1,"p5":2,"p9":3}"""],
            ["""{"p5":1,"p2":2}""", """{"p12":1}"""]);
    }

    [Fact]
    public void AdditionalPropertiesTrueOrSchema()
    {
        Check("""{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true}""",
            ["{}", """{"a":1}""", """{"a":1,"z":[1,{"q":null}]}""", """{"z":"s"}"""], ["""{"a":"s"}"""]);
        Check("""{"type":"object","additionalProperties":{"type":"integer"}}""",
            ["{}", """{"x":1,"y":2}"""], ["""{"x":"1"}"""]);
        Check("""{"type":"object"}""", ["{}", """{"k":{"n":[true]}}"""], ["[]"]);
    }

    [Fact]
    public void StrictModeSchema() => Check(
        """{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false}""",
        ["""{"city":"Paris","unit":"c"}""", "{\n  \"city\": \"Paris\",\n  \"unit\": \"f\"\n}"],
        ["""{"city":"Paris"}""", """{"city":"Paris","unit":"k"}""", """{"unit":"c","city":"Paris"}"""]);

    [Fact]
    public void ArraysWithItemsAndBounds()
    {
        Check("""{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}""",
            ["[1]", "[1,2]", "[ 1 , 2 , 3 ]"], ["[]", "[1,2,3,4]", "[1,]", "[\"a\"]"]);
        Check("""{"type":"array","items":{"type":"boolean"}}""", ["[]", "[true,false,true]"], ["[null]"]);
        Check("""{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}""",
            ["[]", "[\"a\"]", "[\"a\",1]"], ["[1]", "[\"a\",1,2]"]);
        Check("""{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"null"},"minItems":2}""",
            ["[\"a\",null]", "[\"a\",null,null]"], ["[\"a\"]", "[null,null]"]);
    }

    [Fact]
    public void EnumAndConst()
    {
        Check("""{"enum":["red","green",1,null,{"a":[1,2]}]}""",
            ["\"red\"", "\"green\"", "1", "null", """{"a":[1,2]}"""], ["\"blue\"", "2", "\"re\""]);
        Check("""{"const":"fixed"}""", ["\"fixed\""], ["\"fixe\"", "\"fixed2\""]);
    }

    [Fact]
    public void AnyOfAndOneOf()
    {
        Check("""{"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]}""", ["12", "\"ab\""], ["\"abc\"", "true"]);
        Check("""{"oneOf":[{"type":"boolean"},{"type":"null"}]}""", ["true", "null"], ["1"]);
    }

    [Fact]
    public void RecursiveRefs() => Check(
        """{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/$defs/node"}""",
        ["""{"v":1,"next":null}""", """{"v":1,"next":{"v":2,"next":{"v":3,"next":null}}}"""],
        ["""{"v":1}""", """{"v":1,"next":{"v":2}}"""]);

    [Fact]
    public void DefinitionsAndRootRef() => Check(
        """{"type":"object","properties":{"child":{"$ref":"#"},"n":{"$ref":"#/definitions/n"}},"definitions":{"n":{"type":"integer","minimum":0,"maximum":9}}}""",
        ["{}", """{"child":{"child":{}},"n":5}"""], ["""{"n":10}""", """{"child":{"n":-1}}"""]);

    [Fact]
    public void StringsWithPatternFormatAndLength()
    {
        Check("""{"type":"string","pattern":"^[a-z]+-\\d{2}$"}""", ["\"ab-12\""], ["\"ab-1\"", "\"AB-12\"", "\"ab-123\""]);
        Check("""{"type":"string","minLength":2,"maxLength":3}""", ["\"ab\"", "\"a\\nb\"", "\"日本語\""], ["\"a\"", "\"abcd\""]);
        Check("""{"type":"string","format":"date"}""", ["\"2024-02-29\""], ["\"2024-13-01\"", "\"24-01-01\""]);
        Check("""{"type":"string","format":"date-time"}""", ["\"2024-02-29T12:30:00Z\"", "\"2024-02-29T12:30:00.5+02:00\""], ["\"2024-02-29 12:30:00Z\""]);
        Check("""{"type":"string","format":"time"}""", ["\"23:59:59Z\""], ["\"24:00:00Z\""]);
        Check("""{"type":"string","format":"email"}""", ["\"a.b@example.com\""], ["\"a@b\"", "\"@example.com\""]);
        Check("""{"type":"string","format":"uuid"}""", ["\"123e4567-e89b-12d3-a456-426614174000\""], ["\"123e4567e89b12d3a456426614174000\""]);
        Check("""{"type":"string","format":"uri"}""", ["\"https://example.com/a?b=c#d\""], ["\"no scheme\""]);
        Check("""{"type":"string"}""", ["\"\"", "\"a\\\"b\\u00e9\\\\\"", "\"emoji 😀\""], ["\"a\nb\"", "\"\\x\"", "\"unterminated"]);
    }

    [Fact]
    public void IntegersInRangesAreExact()
    {
        var g = Schema("""{"type":"integer","minimum":-15,"maximum":120}""");
        for (int i = -30; i <= 200; i++) Assert.Equal(i is >= -15 and <= 120, Matches(g, i.ToString()));
        Assert.False(Matches(g, "007"));
        var ex = Schema("""{"type":"integer","exclusiveMinimum":3,"exclusiveMaximum":1000}""");
        for (int i = 0; i <= 1100; i += 1) Assert.Equal(i is > 3 and < 1000, Matches(ex, i.ToString()));
        var big = Schema("""{"type":"integer","minimum":1234567890123}""");
        Assert.True(Matches(big, "1234567890123"));
        Assert.False(Matches(big, "1234567890122"));
        Assert.True(Matches(big, "99999999999999"));
    }

    [Fact]
    public void NumbersWithBoundsStayInside()
    {
        var g = Schema("""{"type":"number","minimum":-2.5,"maximum":10}""");
        string[] inside = ["0", "10", "10.0", "9.99", "-2", "-1.75", "3"];
        string[] outside = ["10.5", "11", "-3", "1e3", "-2.75"];
        foreach (var s in inside) Assert.True(Matches(g, s), s);
        foreach (var s in outside) Assert.False(Matches(g, s), s);
        var any = Schema("""{"type":"number"}""");
        foreach (var s in (string[])["0", "-1.5", "2e10", "3.25E-2", "12"]) Assert.True(Matches(any, s), s);
        foreach (var s in (string[])["01", "1.", ".5", "+1", "1e"]) Assert.False(Matches(any, s), s);
        var pos = Schema("""{"type":"number","exclusiveMinimum":0}""");
        Assert.False(Matches(pos, "0"));
        Assert.False(Matches(pos, "-1"));
        Assert.True(Matches(pos, "1.5"));
    }

    [Fact]
    public void BooleanNullNullableAndEmptySchema()
    {
        Check("""{"type":"boolean"}""", ["true", "false"], ["null", "1"]);
        Check("""{"type":["string","null"]}""", ["null", "\"x\""], ["1"]);
        Check("""{"type":"integer","nullable":true}""", ["null", "3"], ["\"3\""]);
        Check("{}", ["1", "\"s\"", "[1,[2,{}]]", """{"a":{"b":null}}""", "true"], ["", "tru", "{"]);
    }

    [Fact]
    public void AnnotationsAreIgnoredAndUnsupportedKeywordsThrow()
    {
        Check("""{"title":"T","description":"d","default":1,"examples":[1],"type":"integer","x-extra":1}""", ["1"], ["\"1\""]);
        foreach (var kw in (string[])["\"multipleOf\":2", "\"not\":{}", "\"patternProperties\":{}", "\"if\":{}", "\"uniqueItems\":true", "\"minProperties\":1"])
            Assert.Throws<GrammarException>(() => Schema("{\"type\":\"object\"," + kw + "}"));
        Assert.Throws<GrammarException>(() => Schema("""{"$ref":"http://example.com/s.json"}"""));
        Assert.Throws<GrammarException>(() => Schema("""{"$ref":"#/$defs/missing"}"""));
        Assert.Throws<GrammarException>(() => Schema("""{"type":"strang"}"""));
        Assert.Throws<GrammarException>(() => Schema("not json"));
        Assert.Throws<GrammarException>(() => Schema("""{"type":"object","required":[1]}"""));
        Assert.Throws<GrammarException>(() => Schema("""{"type":"string","maxLength":"3"}"""));
        Assert.Throws<GrammarException>(() => Schema("""{"type":"array","items":[{}]}"""));
    }

    [Fact]
    public void WhitespaceIsBounded()
    {
        var g = Schema("""{"type":"array","items":{"type":"integer"}}""");
        Assert.True(Matches(g, "[" + new string(' ', 20) + "1]"));
        Assert.False(IsPrefix(g, "[" + new string(' ', 21)));
        Assert.True(Matches(g, "[\n\t1,\r\n 2\n]"));
    }

    [Fact]
    public void JsonObjectModeAcceptsAnyObjectToADepth()
    {
        var g = Compiler().JsonObject();
        Assert.True(Matches(g, """{"a":[1,2.5,{"b":null}],"c":"x","d":true}"""));
        Assert.True(Matches(g, "{}"));
        Assert.False(Matches(g, "[]"));
        Assert.False(Matches(g, "\"s\""));
        string deep = string.Concat(Enumerable.Repeat("{\"a\":", 20));
        Assert.False(IsPrefix(g, deep));
    }
}
