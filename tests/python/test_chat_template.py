"""Chat-template parity: the C++ Jinja engine against Python's jinja2 configured like transformers.

The oracle is transformers' own render_jinja_template when it imports (the function
apply_chat_template uses); otherwise an environment replicating it (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, raise_exception, strftime_now, tojson without ASCII
escaping). Every template x conversation x add_generation_prompt must render byte-identically, or
fail on both sides. The C++ side runs through tests/cpp/serve/kpt_render_template (path from
env KPT_RENDER_TEMPLATE, default build/tests/cpp/serve/kpt_render_template).
"""
import json
import os
import random
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "chat_templates"
BIN = Path(os.environ.get("KPT_RENDER_TEMPLATE", ROOT / "build" / "tests" / "cpp" / "serve" / "kpt_render_template"))

try:
    from transformers.utils.chat_template_utils import render_jinja_template as _hf_render
except Exception:  # transformers absent or incompatible: replicate its environment
    _hf_render = None


def _replica_env():
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def python_render(source, messages, add_generation_prompt, special, extra):
    """(text, None) or (None, error) from Python, the way apply_chat_template renders."""
    try:
        if _hf_render is not None and "generation" not in source:
            kwargs = dict(special)
            kwargs.update({k: v for k, v in extra.items() if k not in ("tools", "documents")})
            out, _ = _hf_render(conversations=[messages], tools=extra.get("tools"), documents=extra.get("documents"),
                                chat_template=source, add_generation_prompt=add_generation_prompt, **kwargs)
            return out[0], None
        ctx = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": add_generation_prompt}
        ctx.update(special)
        ctx.update(extra)
        # {% generation %} is transformers' extension: the replica treats it as a no-op block.
        src = source.replace("{% generation %}", "").replace("{% endgeneration %}", "")
        return _replica_env().from_string(src).render(**ctx), None
    except Exception as e:  # noqa: BLE001 - any failure must be matched by an error on our side
        return None, f"{type(e).__name__}: {e}"


def _case(messages, add_generation_prompt, special, extra):
    return {"messages": messages, "add_generation_prompt": add_generation_prompt, "extra": extra, **special}


def cpp_render(template_path, messages, add_generation_prompt, special, extra):
    """(text, None) or (None, "error: ...") from one kpt_render_template --chat run."""
    r = subprocess.run([str(BIN), "--chat", str(template_path)],
                       input=json.dumps(_case(messages, add_generation_prompt, special, extra)).encode(),
                       capture_output=True, timeout=30)
    if r.returncode == 0:
        return r.stdout.decode("utf-8"), None
    assert r.returncode == 1, f"kpt_render_template crashed (rc={r.returncode}): {r.stderr.decode()[-2000:]}"
    return None, r.stdout.decode("utf-8", "replace").strip()


def cpp_render_batch(template_path, cases):
    """[(text, None) or (None, error)] for many chat cases in one process."""
    r = subprocess.run([str(BIN), "--chat-batch", str(template_path)], input=json.dumps(cases).encode(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, f"kpt_render_template crashed (rc={r.returncode}): {r.stderr.decode()[-2000:]}"
    return [(x.get("text"), x.get("error")) for x in json.loads(r.stdout)]


@pytest.fixture(scope="module")
def binary():
    if not BIN.exists():
        pytest.skip(f"{BIN} not built (cmake --build build --target kpt_render_template, or set KPT_RENDER_TEMPLATE)")
    return BIN


# ---- corpus ----------------------------------------------------------------------------------

FIXTURE_TOKENS = {
    "chatml": ("", ""),
    "zephyr": ("<s>", "</s>"),
    "tinyllama": ("<s>", "</s>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama31_tools": ("<|begin_of_text|>", "<|eot_id|>"),
    "gemma": ("<bos>", "<eos>"),
    "phi3": ("<s>", "<|endoftext|>"),
    "mistral_v03_tools": ("<s>", "</s>"),
    "qwen25_tools": ("", "<|im_end|>"),
    "deepseek_llm": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek_r1": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "macros_generation": ("<s>", "</s>"),
}


def _token(v):
    return v.get("content") if isinstance(v, dict) else v


def _real_templates(tmp_dir):
    """(name, path, special tokens) for the real templates present on this machine."""
    out = []
    smol = ROOT / "models" / "smollm2-135m"
    if (smol / "chat_template.jinja").exists():
        cfg = json.loads((smol / "tokenizer_config.json").read_text()) if (smol / "tokenizer_config.json").exists() else {}
        out.append(("smollm2-135m", smol / "chat_template.jinja", cfg))
    for tok in ("qwen3", "sp-bpe-32k"):
        p = Path("/work/shared/data/tokenizers") / tok / "tokenizer_config.json"
        if not p.exists():
            continue
        cfg = json.loads(p.read_text())
        if isinstance(cfg.get("chat_template"), str):
            path = tmp_dir / f"{tok}.jinja"
            path.write_text(cfg["chat_template"])
            out.append((tok, path, cfg))
    result = []
    for name, path, cfg in out:
        special = {k: _token(cfg[k]) for k in ("bos_token", "eos_token") if isinstance(_token(cfg.get(k)), str)}
        result.append((name, path, special))
    return result


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "days": {"type": "array", "items": {"type": "integer"}},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "assistant_last": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a color."},
        {"role": "assistant", "content": "  Blue.  "},
    ],
    "unicode": [
        {"role": "user", "content": "Grüße aus Köln — 日本語のテキスト 🎉 \"quotes\" 'single' back\\slash\ttab\nnewline"},
        {"role": "assistant", "content": "Ça va? Привет! 😀"},
        {"role": "user", "content": "<think>not really</think>done"},
    ],
    "empty_content": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}, {"role": "user", "content": " "}],
    "whitespace": [{"role": "user", "content": "\n\n  padded  \n"}],
    "bad_alternation": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    "system_only": [{"role": "system", "content": "Only a system prompt."}],
    "content_parts": [{"role": "user", "content": [{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Part two."}]}],
    "unknown_role": [{"role": "critic", "content": "Hmm."}, {"role": "user", "content": "ok"}],
    "think": [
        {"role": "user", "content": "Solve it."},
        {"role": "assistant", "content": "<think>\nreasoning here\n</think>\n\nThe answer is 4."},
        {"role": "user", "content": "Thanks"},
    ],
}

TOOL_CONVERSATION = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}}]},
    {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
    {"role": "assistant", "content": "It is 21.5 °C and clear in Paris."},
    {"role": "user", "content": "Thanks!"},
]
TOOL_CONVERSATION_STR_ARGS = json.loads(json.dumps(TOOL_CONVERSATION))
TOOL_CONVERSATION_STR_ARGS[2]["tool_calls"][0]["function"]["arguments"] = "{\"city\": \"Paris\"}"

CASES = [(name, msgs, {}) for name, msgs in CONVERSATIONS.items()]
CASES += [
    ("tools", TOOL_CONVERSATION, {"tools": [WEATHER_TOOL]}),
    ("tools_string_args", TOOL_CONVERSATION_STR_ARGS, {"tools": [WEATHER_TOOL]}),
    ("tool_calls_no_tools", TOOL_CONVERSATION, {}),
    ("tools_plain_chat", CONVERSATIONS["system_user"], {"tools": [WEATHER_TOOL]}),
    ("date_string", CONVERSATIONS["system_user"], {"date_string": "01 Jan 2025", "enable_thinking": False}),
]


def _corpus(tmp_dir):
    items = [(p.stem, p, dict(zip(("bos_token", "eos_token"), FIXTURE_TOKENS[p.stem])))
             for p in sorted(FIXTURES.glob("*.jinja"))]
    items = [(n, p, {k: v for k, v in s.items() if v}) for n, p, s in items]
    return items + _real_templates(tmp_dir)


def test_fixture_list_is_complete():
    assert sorted(p.stem for p in FIXTURES.glob("*.jinja")) == sorted(FIXTURE_TOKENS)


def test_parity_with_jinja2(binary, tmp_path):
    corpus = _corpus(tmp_path)
    assert len(corpus) >= len(FIXTURE_TOKENS)
    mismatches, n_ok, n_err = [], 0, 0
    for name, path, special in corpus:
        source = path.read_text()
        runs = [(case, messages, extra, agp) for case, messages, extra in CASES for agp in (False, True)]
        got_all = cpp_render_batch(path, [_case(m, agp, special, extra) for _, m, extra, agp in runs])
        for (case, messages, extra, agp), (got, got_err) in zip(runs, got_all):
            want, want_err = python_render(source, messages, agp, special, extra)
            if want_err is not None or got_err is not None:
                n_err += 1
                if (want_err is None) != (got_err is None):
                    mismatches.append(f"{name}/{case}/agp={agp}: python {want_err or 'ok'} vs c++ {got_err or 'ok'}")
                elif want_err.startswith("TemplateError: ") and got_err != want_err[len("TemplateError: "):]:
                    mismatches.append(f"{name}/{case}/agp={agp}: raise_exception message differs: {want_err!r} vs {got_err!r}")
            elif want != got:
                mismatches.append(f"{name}/{case}/agp={agp}:\n  python: {want!r}\n  c++:    {got!r}")
            else:
                n_ok += 1
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])
    # The corpus must mostly render: a corpus of errors would prove little.
    assert n_ok > 3 * n_err, (n_ok, n_err)


def test_real_templates_render(binary, tmp_path):
    real = _real_templates(tmp_path)
    if not real:
        pytest.skip("no real chat template present (models/ not prepared, shared tokenizers absent)")
    for name, path, special in real:
        got, err = cpp_render(path, CONVERSATIONS["multi_turn"], True, special, {})
        assert err is None, f"{name}: {err}"
        assert "Tell me a joke." in got


def test_raise_exception_message(binary):
    path = FIXTURES / "gemma.jinja"
    got, err = cpp_render(path, CONVERSATIONS["system_user"], True, {}, {})
    assert got is None and err == "error: System role not supported"


def test_mutated_templates_never_crash(binary, tmp_path):
    """Truncations and byte mutations of real templates give a rendering or 'error: ...', never a crash."""
    rng = random.Random(1234)
    sources = [p.read_text() for p in sorted(FIXTURES.glob("*.jinja"))]
    alphabet = "{}%#-+()[]|.,:'\"~ \n\tabcdefghijklmnopqrstuvwxyz0123456789=<>!*/"
    path = tmp_path / "mutated.jinja"
    case = _case(TOOL_CONVERSATION, True, {"bos_token": "<s>", "eos_token": "</s>"}, {"tools": [WEATHER_TOOL]})
    for i in range(60):
        src = rng.choice(sources)
        if i % 3 == 0:
            src = src[: rng.randrange(len(src))]
        else:
            chars = list(src)
            for _ in range(rng.randint(1, 8)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            src = "".join(chars)
        path.write_text(src)
        (text, err), = cpp_render_batch(path, [case])
        assert (text is None) != (err is None)


# ---- random expressions ----------------------------------------------------------------------

EXPR_CONTEXT = {
    "d": {"x": 1, "items": 5, "s": "héllo", "n": None, "l": [1, 2]}, "l": [3, 1, 2], "s": "Hello World", "n": None,
    "f": 1.5, "e": [], "u": "日本語テキスト", "t": True, "z": 0, "neg": -7, "big": 123456789, "fl": [0.5, -2.25, 1e-7],
    "strs": ["b", "A", "a", "c"], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
}
_ATOMS = ["1", "0", "-3", "2.5", "0.1", "1e3", "'ab'", "'Hé llo'", "''", "' x '", "none", "true", "false", "[1, 2, 3]",
          "[]", "{'a': 1, 'b': [2]}", "(1, 'x')", "d", "l", "s", "n", "f", "e", "u", "t", "z", "neg", "big", "fl", "strs",
          "msgs", "undefined_var", "d.x", "d.s", "d.l", "msgs[0]", "msgs[1].role", "d['items']", "l[-1]", "s[1:4]",
          "s[::-1]", "u[2]", "l[5]", "u[-3:]", "strs[::2]", "fl[1]"]
_OPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]
# Filters that return lists (jinja2 returns lazy generators from map/select/unique/..., whose
# printing and error timing differ; see docs/chat_templates.md) are only used under |list/|join.
_FILTERS = ["length", "upper", "lower", "first", "last", "join", "join(', ')", "sort", "list", "tojson",
            "tojson(indent=2)", "string", "int", "float", "abs", "round", "round(1)", "trim", "default('D')",
            "default('D', true)", "sum", "max", "min", "capitalize", "title", "dictsort", "count", "e", "wordcount",
            "select('odd')|list", "reject('none')|join('-')", "map('string')|join", "map(attribute='role')|list",
            "selectattr('role', 'eq', 'user')|list", "unique|list", "batch(2)|list", "items|list", "reverse|join",
            "indent(2)", "replace('l', 'L')", "center(9)", "sort(reverse=true)", "tojson(sort_keys=true)"]
_TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
          "boolean", "true", "false", "odd", "even", "divisibleby 2", "eq 1", "in [1, 2]", "lower", "upper"]
_METHODS = ["strip()", "split()", "split('l')", "upper()", "lower()", "title()", "startswith('H')", "endswith('d')",
            "replace('o', '0')", "find('o')", "count('l')", "items()", "keys()", "values()", "get('x')", "get('zz', 3)",
            "index(1)", "capitalize()", "lstrip('H')", "format(1)", "split(none, 1)", "rstrip()"]


def _random_expr(rng, depth=0):
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(_ATOMS)
    a, b = _random_expr(rng, depth + 1), _random_expr(rng, depth + 1)
    k = rng.random()
    if k < 0.35:
        return f"({a} {rng.choice(_OPS)} {b})"
    if k < 0.62:
        return f"({a}|{rng.choice(_FILTERS)})"
    if k < 0.75:
        return f"({a} is {rng.choice(['', 'not '])}{rng.choice(_TESTS)})"
    if k < 0.83:
        return f"({a} if {b} else {_random_expr(rng, depth + 1)})"
    if k < 0.9:
        return f"(not {a})"
    return f"{a}.{rng.choice(_METHODS)}"


def test_random_expressions_match_jinja2(binary, tmp_path):
    """400 seeded random expressions over operators, filters, tests and methods: same text or both fail."""
    env = _replica_env()
    rng = random.Random(2024)
    sources = ["{{ " + _random_expr(rng) + " }}" for _ in range(400)]
    r = subprocess.run([str(binary), "--batch"], input=json.dumps({"context": EXPR_CONTEXT, "templates": sources}).encode(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, f"kpt_render_template crashed: {r.stderr.decode()[-1000:]}"
    results = json.loads(r.stdout)
    mismatches = []
    for src, res in zip(sources, results):
        try:
            want, want_err = env.from_string(src).render(**EXPR_CONTEXT), None
        except Exception as e:  # noqa: BLE001
            want, want_err = None, e
        got = res.get("text")
        if (want_err is None) != (got is not None) or (got is not None and got != want):
            mismatches.append(f"{src}\n  python: {want!r} {want_err!r}\n  c++:    {res!r}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:10])


def _random_whitespace_template(rng):
    """Text with spaces/newlines/tabs around tags with random -/+ markers: trim/lstrip corners."""
    texts = ["", " ", "  ", "\n", "\n\n", " \n ", "\t", "a", "b ", " c\n", "\n  ", "x\n\t "]
    mark = lambda: rng.choice(["", "-", "+", ""])  # noqa: E731
    parts, stack = [], []
    for _ in range(rng.randint(2, 12)):
        parts.append(rng.choice(texts))
        k = rng.random()
        if k < 0.25:
            parts.append("{{" + rng.choice(["", "-"]) + " 'v' " + rng.choice(["", "-"]) + "}}")
        elif k < 0.35:
            parts.append("{#" + mark() + " c " + mark() + "#}")
        elif k < 0.55:
            kind = rng.choice(["if true", "if false", "for i in [1, 2]"])
            stack.append("endfor" if kind.startswith("for") else "endif")
            parts.append("{%" + mark() + " " + kind + " " + mark() + "%}")
        elif k < 0.75 and stack:
            parts.append("{%" + mark() + " " + stack.pop() + " " + mark() + "%}")
        elif k < 0.85:
            parts.append("{%" + mark() + " set x = 1 " + mark() + "%}")
    while stack:
        parts.append(rng.choice(texts) + "{%" + mark() + " " + stack.pop() + " " + mark() + "%}" + rng.choice(texts))
    return "".join(parts)


def test_random_whitespace_control_matches_jinja2(binary):
    """300 seeded templates mixing text and tags with -/+ markers render identically."""
    env = _replica_env()
    rng = random.Random(99)
    sources = [_random_whitespace_template(rng) for _ in range(300)]
    r = subprocess.run([str(binary), "--batch"], input=json.dumps({"context": {}, "templates": sources}).encode(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-1000:]
    mismatches = []
    for src, res in zip(sources, json.loads(r.stdout)):
        want = env.from_string(src).render()
        if res.get("text") != want:
            mismatches.append(f"{src!r}\n  python: {want!r}\n  c++:    {res!r}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:10])


_STATEMENTS = [
    "{{ x }}", "{{ ns.n }}", "{% set x = x ~ 'a' %}", "{% set ns.n = ns.n + 1 %}", "{{ loop.index if loop is defined else '-' }}",
    "{{ m.role if m is defined else 'nom' }}", "{{ m(1) if m is callable else '' }}", "{% set y = 5 %}", "{{ y }}", "{{ i }}",
    "{% if loop is defined and loop.first %}F{% endif %}", "{% if x|length > 2 %}{% break %}{% endif %}", "{% continue %}",
    "{{ caller() if caller is defined else '' }}", "{{ k }}{{ v }}", "{{ messages|length }}", "{% set messages = messages[1:] %}",
    "{{ loop.previtem.role if loop is defined and loop.previtem is defined else '' }}",
]


def _random_statements(rng, depth=0, in_loop=False):
    """Nested for/if/macro/set-block/namespace statements: jinja2's scoping rules."""
    out = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if depth < 3 and r < 0.2:
            out.append("{% for m in messages %}" + _random_statements(rng, depth + 1, True) + "{% else %}E{% endfor %}")
        elif depth < 3 and r < 0.3:
            out.append("{% for k, v in {'a': 1, 'b': 2}.items() if v > 1 %}" + _random_statements(rng, depth + 1, True) + "{% endfor %}")
        elif depth < 3 and r < 0.45:
            out.append("{% if x|length % 2 == 0 %}" + _random_statements(rng, depth + 1, in_loop) + "{% elif y is defined %}Y{% else %}"
                       + _random_statements(rng, depth + 1, in_loop) + "{% endif %}")
        elif depth < 2 and r < 0.52:
            out.append("{% macro mac(a, b='B') %}[{{ a }}{{ b }}{{ x }}" + _random_statements(rng, depth + 1, False)
                       + "]{% endmacro %}{{ mac(x) }}{{ mac(1, b=2) }}")
        elif depth < 2 and r < 0.57:
            out.append("{% set blk %}<" + _random_statements(rng, depth + 1, in_loop) + ">{% endset %}{{ blk|upper }}")
        else:
            s = rng.choice(_STATEMENTS)
            out.append("{{ 'nl' }}" if ("break" in s or "continue" in s) and not in_loop else s)
    return "".join(out)


def test_random_statements_match_jinja2(binary):
    """300 seeded templates nesting loops, conditions, macros, block sets and namespaces."""
    env = _replica_env()
    rng = random.Random(5)
    context = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    sources = ["{% set x = '' %}{% set ns = namespace(n=0) %}" + _random_statements(rng) for _ in range(300)]
    r = subprocess.run([str(binary), "--batch"], input=json.dumps({"context": context, "templates": sources}).encode(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-1000:]
    mismatches, n_ok = [], 0
    for src, res in zip(sources, json.loads(r.stdout)):
        try:
            want, want_err = env.from_string(src).render(**context), None
        except Exception as e:  # noqa: BLE001
            want, want_err = None, e
        got = res.get("text")
        if (want_err is None) != (got is not None) or (got is not None and got != want):
            mismatches.append(f"{src}\n  python: {want!r} {want_err!r}\n  c++:    {res!r}")
        elif got is not None:
            n_ok += 1
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:5])
    assert n_ok > 200
