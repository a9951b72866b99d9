// Unit tests of the Jinja engine: every expected string below is what jinja2 3.1 (configured like
// transformers: trim_blocks, lstrip_blocks, loopcontrols) prints for the same template.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "serve/template/jinja.h"

namespace {

using kpt::jinja::Options;
using kpt::jinja::Template;
using nlohmann::ordered_json;

const ordered_json& ctx() {
  static const ordered_json c = ordered_json::parse(R"({
    "d": {"x": 1, "items": 5, "s": "héllo"}, "l": [3, 1, 2], "s": "Hello World", "n": null,
    "e": [], "u": "日本語テキスト", "f": 1.5,
    "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})");
  return c;
}

std::string render(const std::string& src, const ordered_json& c = ctx(), const Options& o = {}) {
  return Template::parse(src, o).render(c);
}

TEST(JinjaLiterals, NumbersPrintLikePython) {
  EXPECT_EQ(render("{{ 1.0 }} {{ 1e-05 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ 1e-4 }} {{ -0.0 }}"),
            "1.0 1e-05 1e+16 0.30000000000000004 0.0001 -0.0");
  EXPECT_EQ(
      render("{{ 100000000000000000.0 }} {{ 123456.789 }} {{ 1/3 }} {{ 2.5e-10 }} {{ 1_000 }}"),
      "1e+17 123456.789 0.3333333333333333 2.5e-10 1000");
  EXPECT_EQ(render("{{ f }} {{ 3 }} {{ true }} {{ False }} {{ none }} {{ None }}"),
            "1.5 3 True False None None");
}

TEST(JinjaLiterals, StringsListsDictsTuples) {
  EXPECT_EQ(
      render(R"({{ "tab\there" }}|{{ 'uni\u00e9' }}|{{ "\x41" }}|{{ 'q\'s' }}|{{ 'a' "b" }})"),
      "tab\there|unié|A|q's|ab");
  EXPECT_EQ(render("{{ [1, 'a', none, true, 1.5, {'k': (1, 2)}] }}"),
            "[1, 'a', None, True, 1.5, {'k': (1, 2)}]");
  EXPECT_EQ(render(R"({{ "it's" }}|{{ ['it\'s', 'a"b', 'x\ny'] }})"),
            R"(it's|["it's", 'a"b', 'x\ny'])");
  EXPECT_EQ(render("{{ (1,) }}{{ () }}{{ (1, 2) }}{{ {'a': {'b': 1}} }}"),
            "(1,)()(1, 2){'a': {'b': 1}}");
}

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render("{{ 3/1 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 2**-1 }} {{ 7.5 "
                   "// 2 }} {{ -7.5 % 2 }}"),
            "3.0 3 -4 2 1024 0.5 3.0 0.5");
  EXPECT_EQ(render("{{ 'ab' * 3 }}{{ [1] * 2 }}{{ l + [4] }}{{ 'a' + 'b' }}{{ 1 + 2.5 }}{{ true + "
                   "1 }}{{ -f }}"),
            "ababab[1, 1][3, 1, 2, 4]ab3.52-1.5");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ undefined_name }}"), "a1None");
}

TEST(JinjaExpressions, LogicComparisonsMembership) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }}{{ 3 > 2 > 5 }}{{ 1 == 1.0 }}{{ 'a' < 'b' }}{{ [1,2] == [1,2] "
                   "}}{{ 1 != 2 }}"),
            "TrueFalseTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ true and 'x' }}{{ false or 'y' }}{{ none or 0 }}{{ not none }}{{ not 1 }}"),
            "xy0TrueFalse");
  EXPECT_EQ(
      render("{{ 'x' in 'xyz' }}{{ 1 in l }}{{ 'x' in d }}{{ 9 not in l }}{{ 'q' not in d }}"),
      "TrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 1 if true else 2 }}{{ 1 if false }}|{{ 'a' if n else 'b' }}"), "1|b");
}

TEST(JinjaExpressions, AttributesSubscriptsSlices) {
  EXPECT_EQ(
      render(
          "{{ d.x }}|{{ d.x.y }}|{{ d['x'] }}|{{ l[5] }}|{{ 'abc'[5] }}|{{ l[-1] }}|{{ s[-1] }}"),
      "1||1|||2|d");
  EXPECT_EQ(render("{{ s[::-1] }}|{{ l[::-1] }}|{{ s[1:3] }}|{{ s[:-2] }}|{{ u[1:3] }}|{{ u[::-1] "
                   "}}|{{ s[::2] }}"),
            "dlroW olleH|[2, 1, 3]|el|Hello Wor|本語|トスキテ語本日|HloWrd");
  EXPECT_EQ(render("{{ msgs[0].content }}{{ msgs[-1]['content'] }}{{ 'abc'.1 }}{{ l.0 }}"),
            "hiyob3");
  // getattr before getitem, like jinja2: d.items is the dict method, d['items'] the key.
  EXPECT_EQ(render("{{ d['items'] }} {{ d.items is defined }}"), "5 True");
}

TEST(JinjaStatements, IfElifElse) {
  EXPECT_EQ(render("{% if n %}a{% elif f > 1 %}b{% else %}c{% endif %}"), "b");
  EXPECT_EQ(render("{% if false %}a{% elif false %}b{% else %}c{% endif %}"), "c");
}

TEST(JinjaStatements, ForLoopVariablesFilterElse) {
  EXPECT_EQ(render("{% for x in l if x > 1 %}{{ loop.index }}/{{ loop.length }}:{{ x }}"
                   "{% if not loop.last %},{% endif %}{% else %}none{% endfor %}"),
            "1/2:3,2/2:2");
  EXPECT_EQ(render("{% for x in e %}{{ x }}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(
      render(
          "{% for x in l %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}"
          "{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a','b') }}|{% endfor %}"),
      "032True1a|121False32b|210False1a|");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}"),
            "x=1;items=5;s=héllo;");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_EQ(render("{% for c in 'ab' %}{{ c }}.{% endfor %}{% for k in d %}{{ k }}{% endfor %}"),
            "a.b.xitemss");
}

TEST(JinjaStatements, BreakContinue) {
  EXPECT_EQ(render("{% for x in l %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}|"
                   "{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
            "3|32");
}

TEST(JinjaStatements, SetScopingAndNamespace) {
  // A loop iteration has its own scope; namespace() carries state out.
  EXPECT_EQ(
      render("{% set x = 0 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"),
      "1110");
  EXPECT_EQ(
      render(
          "{% for i in range(3) %}{% if i == 0 %}{% set y = 5 %}{% endif %}{{ y }},{% endfor %}"),
      "5,,,");
  EXPECT_EQ(render("{% set ns = namespace(found=false, n=0) %}{% for x in l %}{% if x > 1 %}"
                   "{% set ns.found = true %}{% set ns.n = ns.n + x %}{% endif %}{% endfor %}{{ "
                   "ns.found }}{{ ns.n }}"),
            "True5");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}"), "12(1, 2)");
  EXPECT_EQ(
      render(
          "{% set b %}inner {{ s }}{% endset %}[{{ b }}]{% set c | upper %}abc{% endset %}{{ c }}"),
      "[inner Hello World]ABC");
}

TEST(JinjaStatements, MacrosCallFilterBlocks) {
  EXPECT_EQ(render("{% macro m(a, b=2) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{% set c = 9 %}"
                   "{{ m(1) }}{{ m(1, b=3) }}{{ m(b=4, a=0) }}"),
            "129139049");
  EXPECT_EQ(
      render(
          "{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}"),
      "321");
  EXPECT_EQ(
      render("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}inside{% endcall %}"),
      "[inside]");
  EXPECT_EQ(render("{% macro w2(x) %}[{{ caller(x * 2) }}]{% endmacro %}{% call(v) w2(4) %}got {{ "
                   "v }}{% endcall %}"),
            "[got 8]");
  EXPECT_EQ(render("{% filter upper %}hello {{ s }}{% endfilter %}"), "HELLO HELLO WORLD");
  EXPECT_EQ(render("{% generation %}kept{% endgeneration %}"), "kept");
  EXPECT_EQ(render("{% raw %}{{ not a var }}{% endraw %}"), "{{ not a var }}");
}

TEST(JinjaStatements, JinjaQuirks) {
  // The loop's else runs unless some iteration reached the end of the body.
  EXPECT_EQ(render("{% for x in l %}{% continue %}{% else %}E{% endfor %}|"
                   "{% for x in l %}{% break %}{% else %}E{% endfor %}|"
                   "{% for x in l %}{% if x == 1 %}{% break %}{% endif %}{% else %}E{% endfor %}"),
            "E|E|");
  // Undefined defines __call__: it is callable (and raises when called).
  EXPECT_EQ(render("{{ foo is callable }}"), "True");
  // A macro defined in a loop sees the loop's variables; continue inside a block set skips it.
  EXPECT_EQ(render("{% for m in l %}{% macro f() %}{{ m }}{% endmacro %}{{ f() }}{% endfor %}"),
            "312");
  EXPECT_EQ(
      render("{% for m in l %}{% set b %}<{{ m }}{% continue %}>{% endset %}{{ b }}{% endfor %}."),
      ".");
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n"), "  x\n");
  EXPECT_EQ(render("a  {% if true %}b{% endif %}"), "a  b");
  EXPECT_EQ(render("{{ 'x' }}\n{# c #}\n  {{ 'y' }}"), "x\n  y");
  EXPECT_EQ(render("line1\n    {% if true %}\n    in\n    {% endif %}\nline2"),
            "line1\n    in\nline2");
  EXPECT_EQ(render("{%+ if true %}x{% endif +%}\ny"), "x\ny");
  EXPECT_EQ(render("{% if true %}\n{% endif %}{{ 1 }}"), "1");
  // The template's last newline is dropped; \r\n becomes \n.
  EXPECT_EQ(render("a\r\nb\n"), "a\nb");
}

TEST(JinjaWhitespace, DashStripsBothSides) {
  EXPECT_EQ(render("{%- if true -%}\n   trimmed\n{%- endif -%}\n  end"), "trimmedend");
  EXPECT_EQ(render("text {{- ' x ' -}} more"), "text x more");
  EXPECT_EQ(render("a {#- comment -#} b"), "ab");
}

TEST(JinjaWhitespace, PlainJinjaOptions) {
  Options plain;
  plain.trim_blocks = false;
  plain.lstrip_blocks = false;
  plain.keep_trailing_newline = true;
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n", ctx(), plain), "  \n  x\n  \n");
}

TEST(JinjaTests, AllTests) {
  EXPECT_EQ(
      render(
          "{{ 'a' is defined }}{{ foo is defined }}{{ n is none }}{{ n is not none }}{{ 3 is odd }}"
          "{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ foo is undefined }}"),
      "TrueFalseTrueFalseTrueTrueTrueFalseTrue");
  EXPECT_EQ(render("{{ s is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is integer }}{{ 1.0 "
                   "is float }}"
                   "{{ d is mapping }}{{ l is iterable }}{{ l is sequence }}{{ true is boolean "
                   "}}{{ true is true }}"
                   "{{ false is false }}{{ s is sequence }}{{ 1 is eq 1 }}{{ true is number }}{{ "
                   "true is integer }}"),
            "TrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalse");
  EXPECT_EQ(
      render("{{ 2 is lt 3 }}{{ 2 is ge 3 }}{{ 1 is in l }}{{ 'HI' is upper }}{{ 'hi' is lower }}"),
      "TrueFalseTrueTrueTrue");
}

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("{{ 'Hello World-foo bar(baz'|title }}|{{ 'hello WORLD'.title() }}|{{ "
                   "'hELLO'|capitalize }}"),
            "Hello World-Foo Bar(Baz|Hello World|Hello");
  EXPECT_EQ(render("{{ s|upper }}{{ s|lower }}{{ s|length }}{{ u|length }}{{ u|count }}"),
            "HELLO WORLDhello world1177");
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'a-b-c'|replace('-', '+') }}|{{ "
                   "'aaa'.replace('a', 'b', 2) }}"),
            "x|hi|a+b+c|bba");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}"),
            "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(render("{{ 'Hello big world'|wordcount }}{{ '<a href=\"x\">&\\''|e }}{{ 'x'|safe }}{{ "
                   "5|string }}"),
            "3&lt;a href=&#34;x&#34;&gt;&amp;&#39;x5");
  EXPECT_EQ(render("{{ 'abc'|reverse }}{{ 'ab'|list }}{{ 'abc'|center(7) }}|"),
            "cba['a', 'b']  abc  |");
}

TEST(JinjaFilters, UnicodeCaseMapping) {
  EXPECT_EQ(render("{{ 'Grüße ÉCOLE Привет Ωμέγα'|upper }}|{{ 'ÀÉÎ ЁЖ ΆΈ İ'|lower }}"),
            "GRÜSSE ÉCOLE ПРИВЕТ ΩΜΈΓΑ|àéî ёж άέ i\u0307");
  EXPECT_EQ(render("{{ 'ßtart hello-wörld (ça)'|title }}|{{ 'ßtart hello-wörld'.title() }}|{{ "
                   "'éCOLE'|capitalize }}"),
            "SStart Hello-Wörld (Ça)|Sstart Hello-Wörld|École");
}

TEST(JinjaFilters, Sequences) {
  EXPECT_EQ(render("{{ l|first }}{{ l|last }}{{ l|join(', ') }}{{ l|sum }}{{ l|max }}{{ l|min }}{{ "
                   "l|sort }}{{ l|reverse|list }}"),
            "323, 1, 2631[1, 2, 3][2, 1, 3]");
  EXPECT_EQ(render("{{ msgs|map(attribute='role')|join(',') }}|{{ msgs|selectattr('role', "
                   "'equalto', 'user')|list|length }}"
                   "|{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|first }}"),
            "user,assistant|1|yo");
  EXPECT_EQ(render("{{ l|select('odd')|list }}{{ l|reject('odd')|list }}{{ [1, 0, none, "
                   "'a']|select|list }}"),
            "[3, 1][2][1, 'a']");
  EXPECT_EQ(render("{{ ['b','A','a']|sort }}{{ ['b','A','a']|sort(case_sensitive=true) }}{{ "
                   "['a','A','b']|unique|list }}"
                   "{{ msgs|sort(attribute='role', reverse=true)|map(attribute='role')|list }}"),
            "['A', 'a', 'b']['A', 'a', 'b']['a', 'b']['user', 'assistant']");
  EXPECT_EQ(render("{{ l|batch(2)|list }}{{ [1,2,3]|batch(2, 0)|list }}{{ "
                   "l|map('string')|join('-') }}{{ ['1','2']|map('int')|sum }}"),
            "[[3, 1], [2]][[1, 2], [3, 0]]3-1-23");
  EXPECT_EQ(
      render(
          "{{ d|dictsort }}{{ {'b':1,'a':2}|dictsort(by='value') }}{{ {'b':1,'A':2}|items|list }}"),
      "[('items', 5), ('s', 'héllo'), ('x', 1)][('b', 1), ('a', 2)][('b', 1), ('A', 2)]");
}

TEST(JinjaFilters, NumbersAndDefaults) {
  EXPECT_EQ(render("{{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.1|round(0, 'ceil') "
                   "}} {{ -3|abs }}"),
            "2.57 2.0 4.0 3.0 3");
  EXPECT_EQ(render("{{ '42'|int }} {{ '4.5'|float }} {{ 'x'|int }} {{ 3|float }} {{ 3.9|int }} {{ "
                   "'x'|int(7) }}"),
            "42 4.5 0 3.0 3 7");
  EXPECT_EQ(render("{{ n|default('dflt') }}|{{ foo|default('dflt') }}|{{ ''|default('x', true) "
                   "}}|{{ foo|d('y') }}"),
            "None|dflt|x|y");
}

TEST(JinjaFilters, ToJsonMatchesJsonDumps) {
  EXPECT_EQ(render("{{ d|tojson }}"), R"({"x": 1, "items": 5, "s": "héllo"})");
  EXPECT_EQ(render("{{ l|tojson(indent=2) }}"), "[\n  3,\n  1,\n  2\n]");
  EXPECT_EQ(render("{{ {'a': none, 'b': true, 'c': 1.0, 'd': \"q\\\"\\\\\\n\"}|tojson }}"),
            R"({"a": null, "b": true, "c": 1.0, "d": "q\"\\\n"})");
  EXPECT_EQ(render("{{ u|tojson(ensure_ascii=true) }}"),
            R"("\u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8")");
  EXPECT_EQ(render("{{ {}|tojson }}{{ []|tojson }}{{ [[]]|tojson(indent=2) }}{{ {'b': 1, 'a': "
                   "2}|tojson(sort_keys=true) }}"),
            "{}[][\n  []\n]{\"a\": 2, \"b\": 1}");
  EXPECT_EQ(render("{{ '\\u0001'|tojson }}"), R"("\u0001")");
}

TEST(JinjaMethods, StringDictListMethods) {
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ "
                   "'a b'.split(none, 1) }}"),
            "['a', 'b', '', 'c']['a', 'b']['a', 'b c']['a', 'b']");
  EXPECT_EQ(
      render(
          "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'hello'.find('l') }}"
          "{{ 'hello'.count('l') }}{{ '-'.join(['a','b']) }}{{ 'Hi {}!'.format('you') }}{{ "
          "'{a}{0}'.format(1, a=2) }}"),
      "TrueTrue22a-bHi you!21");
  EXPECT_EQ(render("{{ 'hello'.upper() }}{{ 'HeLLo'.lower() }}{{ 'hello world'.capitalize() }}{{ ' "
                   " a '.strip() }}"
                   "{{ 'abc'.lstrip('a') }}{{ 'abc'.rstrip('c') }}"),
            "HELLOhelloHello worldabcab");
  EXPECT_EQ(render("{{ d.items() }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.get('x') }}{{ "
                   "d.get('zz') }}{{ d.get('zz', 7) }}"),
            "dict_items([('x', 1), ('items', 5), ('s', 'héllo')])['x', 'items', 's'][1, 5, "
            "'héllo']1None7");
  EXPECT_EQ(render("{{ l.index(2) }}{{ l.count(3) }}"), "21");
}

TEST(JinjaMethods, PercentFormattingAndFormatFilter) {
  EXPECT_EQ(render("{{ '%5.2f|%-6d|%06.1f|%+d|% d' % (3.14159, 42, 2.5, 5, 7) }}"),
            " 3.14|42    |0002.5|+5| 7");
  EXPECT_EQ(render("{{ '%(x)s and %(s)r' % d }}|{{ '%x %X %o %#x' % (255, 255, 8, 255) }}|{{ "
                   "'100%%' % () }}"),
            "1 and 'héllo'|ff FF 10 0xff|100%");
  EXPECT_EQ(render("{{ '%s-%s'|format(1, 'a') }}{{ '%(a)s'|format(a=2) }}{{ 'abc' % l }}{{ "
                   "'%.1s|%5s|' % (s, 'ab') }}"),
            "1-a2abcH|   ab|");
  EXPECT_EQ(render("{{ 'Hello World'|truncate(9) }}|{{ 'Hello World'|truncate(9, true) }}|{{ "
                   "'Hello World'|truncate(7, false, '..', 0) }}"),
            "Hello World|Hello World|Hello..");
}

TEST(JinjaGlobals, RangeDictNamespace) {
  EXPECT_EQ(render("{{ dict(a=1, b='x') }}{{ namespace(a=1).a }}{{ range(2, 10, 3)|list }}{{ "
                   "range(5, 0, -2)|list }}{{ range(3)|list }}"),
            "{'a': 1, 'b': 'x'}1[2, 5, 8][5, 3, 1][0, 1, 2]");
  EXPECT_EQ(render("{{ strftime_now('%Y')|length }}"), "4");
}

TEST(JinjaUndefined, DefaultUndefinedSemantics) {
  EXPECT_EQ(render("[{{ foo }}]{{ foo|length }}{{ foo|list }}{% for x in foo %}x{% endfor %}{{ foo "
                   "== foo }}"),
            "[]0[]True");
  EXPECT_EQ(render("{{ d.nope }}|{{ d['nope'] }}|{{ d.nope is defined }}|{{ n.x is defined }}|{{ "
                   "l.append }}"),
            "||False|False|");
}

}  // namespace
