// Error paths of the Jinja engine: syntax errors name line:column and what was expected, runtime
// errors are kpt::Error(kInvalidArgument), and malformed or hostile templates never crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kpt/status.h"
#include "serve/template/jinja.h"

namespace {

using kpt::jinja::Template;
using nlohmann::ordered_json;

// The error message of parsing+rendering `src`, or "" when it succeeds.
std::string error_of(const std::string& src, const ordered_json& c = ordered_json::object()) {
  try {
    Template::parse(src).render(c);
  } catch (const kpt::Error& e) {
    EXPECT_EQ(e.code(), kpt::ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "";
}

TEST(JinjaSyntaxErrors, NameLineColumnAndExpectation) {
  EXPECT_EQ(error_of("ab\n{% if %}"),
            "template syntax error at 2:7: expected an expression, got '%}'");
  EXPECT_EQ(error_of("{% if true %}x"),
            "template syntax error at 1:15: unexpected end of template, expected 'elif' or 'else' "
            "or 'endif', got end of template");
  EXPECT_EQ(error_of("{% for x in l %}{% endif %}"),
            "template syntax error at 1:20: unknown tag 'endif'; expected 'endfor' or 'else'");
  EXPECT_EQ(error_of("{% foo %}"), "template syntax error at 1:4: unknown tag 'foo'");
  EXPECT_EQ(error_of("{{ 'unterminated }}"),
            "template syntax error at 1:4: unterminated string literal");
  EXPECT_EQ(error_of("x\n{# unclosed"),
            "template syntax error at 2:1: missing end of comment tag '#}'");
  EXPECT_EQ(error_of("{{ [1, 2 }}"), "template syntax error at 1:10: unexpected '}', expected ']'");
  EXPECT_EQ(error_of("{{ 1 + }}"),
            "template syntax error at 1:8: expected an expression, got '}}'");
  EXPECT_EQ(
      error_of("{{ x"),
      "template syntax error at 1:1: unexpected end of template: the tag opened here has no '}}'");
  EXPECT_EQ(error_of("{% break %}"),
            "template syntax error at 1:4: 'break' outside of a loop, got 'break'");
  EXPECT_EQ(error_of("{{ a $ b }}"), "template syntax error at 1:6: unexpected character '$'");
}

TEST(JinjaSyntaxErrors, UnknownFiltersAndTestsAtParseTime) {
  // jinja2 rejects these when compiling, even in branches that never run.
  EXPECT_EQ(error_of("{% if false %}{{ 'x'|foo }}{% endif %}"),
            "template syntax error at 1:22: no filter named 'foo'");
  EXPECT_EQ(error_of("{{ x is foo }}"), "template syntax error at 1:9: no test named 'foo'");
}

TEST(JinjaRuntimeErrors, TypesAndUndefined) {
  EXPECT_EQ(error_of("{{ 1 + 'a' }}"),
            "template error at line 1: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(error_of("\n{{ foo + 'a' }}"), "template error at line 2: 'foo' is undefined");
  EXPECT_EQ(error_of("{{ foo.bar }}"), "template error at line 1: 'foo' is undefined");
  EXPECT_EQ(error_of("{{ d.nope.x }}", ordered_json::parse(R"({"d": {}})")),
            "template error at line 1: 'dict object' has no attribute 'nope'");
  EXPECT_EQ(error_of("{{ 10 / 0 }}"), "template error at line 1: division by zero");
  EXPECT_EQ(error_of("{{ 'abc' < 1 }}"),
            "template error at line 1: '<' not supported between instances of 'str' and 'int'");
  EXPECT_EQ(error_of("{{ none + 1 }}"),
            "template error at line 1: unsupported operand type(s) for +: 'NoneType' and 'int'");
  EXPECT_EQ(error_of("{{ none|length }}"),
            "template error at line 1: object of type 'NoneType' has no len()");
  EXPECT_EQ(error_of("{{ [1]|tojson(indent='x', separators=1) }}"),
            "template error at line 1: tojson: separators= is not supported");
  EXPECT_EQ(error_of("{{ foo()|tojson }}"), "template error at line 1: 'foo' is undefined");
  EXPECT_EQ(error_of("{{ range(100001)|length }}"),
            "template error at line 1: Range too big. The sandbox blocks ranges larger than "
            "MAX_RANGE (100000).");
  EXPECT_EQ(error_of("{% for a, b in [[1, 2, 3]] %}{% endfor %}"),
            "template error at line 1: cannot unpack 3 values into 2 names");
  EXPECT_EQ(error_of("{{ 'x'|center('a') }}"), "template error at line 1: expected int, got str");
  EXPECT_EQ(error_of("{{ 2 ** 64 }}"), "template error at line 1: integer overflow");
  EXPECT_EQ(error_of("{{ 'a'|upper(1) }}"),
            "template error at line 1: upper() takes at most 0 argument(s) (1 given)");
}

TEST(JinjaRuntimeErrors, SandboxRefusesMutation) {
  EXPECT_EQ(error_of("{% set l = [1] %}{{ l.append(2) }}"),
            "template error at line 1: access to attribute 'append' of 'list' object is unsafe");
  EXPECT_EQ(error_of("{% set d = {} %}{{ d.update({'a': 1}) }}"),
            "template error at line 1: access to attribute 'update' of 'dict' object is unsafe");
}

TEST(JinjaRuntimeErrors, RaiseExceptionCarriesTheMessageVerbatim) {
  EXPECT_EQ(error_of("{{ raise_exception('Conversation roles must alternate') }}"),
            "Conversation roles must alternate");
}

TEST(JinjaLimits, DeepNestingAndRecursionAreErrors) {
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}")
                .find("nested deeper"),
            std::string::npos);
  std::string ifs;
  for (int i = 0; i < 500; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of(ifs).find("nested deeper"), std::string::npos);
  EXPECT_NE(error_of("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}")
                .find("nested deeper than 64 calls"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 1000000000 }}").find("too large"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '-') + "1 }}").find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '[') + " }}").find("syntax error"),
            std::string::npos);
}

// Random truncations and byte mutations of the fixture templates: each gives a rendering or a
// kpt::Error, never a crash or another exception type (run under ASan+UBSan too, see the docs).
TEST(JinjaFuzz, MutatedTemplatesGiveErrorsNotCrashes) {
  const auto dir = std::filesystem::path(KPT_SOURCE_DIR) / "tests" / "fixtures" / "chat_templates";
  std::vector<std::string> sources;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    sources.push_back(ss.str());
  }
  ASSERT_GE(sources.size(), 10u);
  const ordered_json c = ordered_json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "tools": [
      {"type": "function", "function": {"name": "f", "description": "d",
       "parameters": {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}}}}],
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                 {"role": "assistant", "content": null, "tool_calls": [{"id": "abcdefghi", "type": "function",
                  "function": {"name": "f", "arguments": {"a": ["x"]}}}]},
                 {"role": "tool", "tool_call_id": "abcdefghi", "content": "r"}, {"role": "user", "content": "u2"}]})");
  const std::string alphabet = "{}%#-+()[]|.,:'\"~ \n\tabcdefghijklmnopqrstuvwxyz0123456789=<>!*/";
  std::mt19937 rng(42);
  int n_ok = 0, n_err = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string src = sources[rng() % sources.size()];
    if (i % 3 == 0) {
      src.resize(rng() % (src.size() + 1));
    } else {
      int n = 1 + static_cast<int>(rng() % 8);
      for (int k = 0; k < n && !src.empty(); ++k)
        src[rng() % src.size()] = alphabet[rng() % alphabet.size()];
    }
    try {
      Template::parse(src).render(c);
      ++n_ok;
    } catch (const kpt::Error& e) {
      ASSERT_NE(e.code(), kpt::ErrorCode::kInternal) << e.what() << "\n--- template:\n" << src;
      ++n_err;
    }
  }
  EXPECT_GT(n_ok, 100);
  EXPECT_GT(n_err, 100);
}

}  // namespace
