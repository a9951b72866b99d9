#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/corpus.json: strings chosen to break tokenizers.

Each entry exercises a known trouble spot: scripts without spaces, combining marks whose
normalization reorders or composes, emoji ZWJ sequences, control and separator characters,
runs of whitespace, literal special-token text, very long words.
"""
import json
import pathlib

CORPUS = [
    "Hello world",
    "Hello, world! How's it going? I'm fine; you'll see—it's great.",
    "The quick brown fox jumps over the lazy dog.",
    "",
    " ",
    "   ",
    "\t\t",
    "\n",
    "\r\n",
    "line one\nline two\r\nline three\rline four",
    "a\u2028b\u2029c",
    "  leading and trailing  ",
    "multiple   spaces\t\ttabs\n\n\nnewlines    \n  end",
    "\u3000\u00a0 \u2009thin\u202fspaces\u205f",
    "\u0085next line",
    "日本語のテキストと漢字、中文字符和标点。",
    "한국어 텍스트 처리와 조합형 \u1100\u1161\u11a8 자모",
    "مرحبا بالعالم! هذا نص عربي مع أرقام ١٢٣.",
    "שלום עולם, זה טקסט בעברית עם ניקוד: בְּרֵאשִׁית",
    "नमस्ते दुनिया, यह हिंदी पाठ है। क्षत्रिय",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "Γειά σου Κόσμε, ΣΊΣΥΦΟΣ και ὀδυσσεύς",
    "கொ க\u0bc6\u0bbe ক\u09c7\u09be বাংলা",
    "👨\u200d👩\u200d👧\u200d👦 family, 🏳\ufe0f\u200d🌈 flag, 🇯🇵🇺🇸 flags, 👍🏽 thumbs",
    "new emoji 🥰 🤯 🫠 🪿 and symbols ☃ ♞ ✓ ∑ ∞ ≠ →",
    "e\u0301 vs é, n\u0303, a\u0308\u0304, o\u0323\u0302",
    "Zalgo Z\u0351\u0361a\u0300\u0301\u0302l\u0303g\u0304o\u0305 text",
    "\u0301starts with a combining mark",
    "İstanbul ıi Straße ß ǅ ǈ ΐ ﬀ",
    "ＡＢＣ１２３！？　全角とﾊﾝｶｸ ｶﾞｷﾞ ﾊﾟ",
    "ﬁnance ﬂow ﬃ ﬄ ½ ² ℌ ① ㎏ ™ Ⓐ",
    "ctrl\x00\x01\x07\x1b[0m\x7f end",
    "zero\u200bwidth\u200cjoin\u200dx\ufeffbom\u00adsoft",
    "replacement \ufffd char and private \ue000 use",
    "1234567890 3.14159 1,000,000 -42 1e10 0x1F 00007",
    "٣٤٥ ૧૨ ४२ Ⅻ ¼ 𝟙𝟚",
    "def f(x):\n    return x**2 + 1  # comment\n\n\tpass",
    'int main() { printf("%d\\n", a[i]); return 0; }',
    "<html><body class='x'>&amp; &lt;tag&gt;</body></html>",
    "https://example.com/path/to?query=1&b=2#frag user@mail.com",
    "C:\\Users\\name\\file.txt ~/dir/$HOME @mention #hashtag",
    "a" * 300,
    "supercalifragilisticexpialidocious" * 8,
    "日本" * 120,
    "🙂" * 40,
    "<|endoftext|>",
    "Hello<|endoftext|>world <|endoftext|> x",
    "[CLS] [SEP] [MASK] [UNK] [PAD] [cls]",
    "<s> </s> <unk> <pad> text</s>",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "I'VE don't WE'LL it’s they're 's 'S 'll",
    "!!!!!!!???... ---- ==== ____ ****",
    "       x",
    "x       ",
    "MiXeD CaSe ALLCAPS lowercase camelCaseWord snake_case_word",
    "don't stop, won't stop: can't stop; shouldn't've",
    "tab\tseparated\tvalues\t1\t2",
    "emoji👍inside😀words",
    "mixed日本語English混合text",
    "quotes «guillemets» „German“ “curly” ‘single’",
    "math: ∀x∈ℝ, x² ≥ 0 ⇒ √(x²) = |x|",
    "Ａ ａ ｚ Ｚ ０ ９",
    "ẞ ǰ ŉ ﬆ",
]

PAIRS = [
    [0, 1], [2, 15], [3, 0], [0, 3], [4, 5], [16, 21], [24, 25], [36, 37], [42, 43], [46, 49],
    [1, 44], [18, 19], [33, 34],
]


def main():
    out = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/tokenizer/corpus.json"
    out.write_text(json.dumps({"texts": CORPUS, "pairs": PAIRS}, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {out} ({len(CORPUS)} texts, {len(PAIRS)} pairs)")


if __name__ == "__main__":
    main()
