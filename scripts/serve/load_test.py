#!/usr/bin/env python3
"""Bounded load test of `kernelpytorch serve` over loopback (standard library only).

It first asks for a greedy answer to each prompt one at a time (the expected text), then sends
REQUESTS streaming requests, CONCURRENCY at a time, and checks that every one finished ("data:
[DONE]") with exactly the expected text: concurrent batching must not lose or change anything.
Reports throughput, time to first token (TTFT) and inter-token latency (ITL) percentiles, and
with --server-pid the server's resident memory after each round (it must stay flat).

  python3 scripts/serve/load_test.py --url http://127.0.0.1:8000 --requests 64 --concurrency 8 \\
      --max-tokens 64 --json result.json [--server-pid PID] [--rounds 2]

Exit status: 0 when nothing was lost or corrupted (and memory stayed flat), 1 otherwise.
"""
import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.parse

PROMPTS = [
    "The capital of France is",
    "Write a haiku about the sea.",
    "List three prime numbers:",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The main difference between TCP and UDP is",
    "Translate to French: good morning",
    "Q: What is 12 times 12?\nA:",
]


async def http_request(host, port, method, path, body=None, headers=None, on_chunk=None):
    """One HTTP/1.1 request; returns (status, body bytes). Streams chunked bodies to on_chunk."""
    reader, writer = await asyncio.open_connection(host, port)
    data = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
            f"Content-Length: {len(data)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    for k, v in (headers or {}).items():
        head.append(f"{k}: {v}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    resp_headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode().partition(":")
        resp_headers[k.strip().lower()] = v.strip()
    out = bytearray()
    if resp_headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readline()
            size = int(size_line.strip().split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            chunk = await reader.readexactly(size)
            await reader.readexactly(2)
            out += chunk
            if on_chunk:
                on_chunk(chunk)
    elif "content-length" in resp_headers:
        out += await reader.readexactly(int(resp_headers["content-length"]))
    else:
        out += await reader.read()
    writer.close()
    return status, bytes(out)


class Stream:
    """Parses server-sent events as they arrive and timestamps the content deltas."""

    def __init__(self, t0):
        self.t0, self.buf, self.text, self.times, self.done, self.usage, self.error = t0, b"", "", [], False, None, None

    def feed(self, chunk):
        self.buf += chunk
        while b"\n\n" in self.buf:
            event, self.buf = self.buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:]
                if payload == b"[DONE]":
                    self.done = True
                    continue
                obj = json.loads(payload)
                if "error" in obj:
                    self.error = obj["error"]
                    continue
                if obj.get("usage"):
                    self.usage = obj["usage"]
                for ch in obj.get("choices", []):
                    piece = ch.get("text") or ch.get("delta", {}).get("content") or ""
                    if piece:
                        self.text += piece
                        self.times.append(time.perf_counter())


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", help="model name (default: the first from GET /v1/models)")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the load; memory must not grow between rounds")
    ap.add_argument("--server-pid", type=int, help="the server's pid, to read its resident memory")
    ap.add_argument("--api-key")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port or 80
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}

    status, body = await http_request(host, port, "GET", "/v1/models", headers=headers)
    if status != 200:
        sys.exit(f"load_test: GET /v1/models answered {status}: {body[:200]!r}")
    model = args.model or json.loads(body)["data"][0]["id"]

    def request(prompt, stream):
        r = {"model": model, "prompt": prompt, "max_tokens": args.max_tokens, "temperature": 0}
        if stream:
            r.update(stream=True, stream_options={"include_usage": True})
        return r

    # Expected greedy text of each prompt, one request at a time.
    expected = {}
    for p in PROMPTS:
        status, body = await http_request(host, port, "POST", "/v1/completions", request(p, False), headers)
        if status != 200:
            sys.exit(f"load_test: reference request answered {status}: {body[:300]!r}")
        expected[p] = json.loads(body)["choices"][0]["text"]

    rounds = []
    for rnd in range(args.rounds):
        sem = asyncio.Semaphore(args.concurrency)
        results = []

        async def one(i):
            prompt = PROMPTS[i % len(PROMPTS)]
            async with sem:
                t0 = time.perf_counter()
                s = Stream(t0)
                try:
                    status, _ = await http_request(host, port, "POST", "/v1/completions", request(prompt, True),
                                                   headers, on_chunk=s.feed)
                except Exception as e:  # a lost request
                    results.append({"ok": False, "why": f"{type(e).__name__}: {e}"})
                    return
                t1 = time.perf_counter()
                r = {"ok": status == 200 and s.done and s.error is None, "status": status, "seconds": t1 - t0,
                     "ttft": (s.times[0] - t0) if s.times else None,
                     "itl": [b - a for a, b in zip(s.times, s.times[1:])],
                     "tokens": (s.usage or {}).get("completion_tokens", 0),
                     "corrupted": s.done and s.text != expected[prompt]}
                if not r["ok"]:
                    r["why"] = f"status {status}, done {s.done}, error {s.error}"
                results.append(r)

        t_start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(args.requests)))
        wall = time.perf_counter() - t_start
        ok = [r for r in results if r["ok"]]
        itl = [x for r in ok for x in r["itl"]]
        ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
        tokens = sum(r["tokens"] for r in ok)
        rounds.append({
            "round": rnd + 1, "requests": args.requests, "completed": len(ok),
            "lost": args.requests - len(ok), "corrupted": sum(1 for r in ok if r["corrupted"]),
            "wall_s": wall, "requests_per_s": len(ok) / wall, "generated_tokens": tokens,
            "tokens_per_s": tokens / wall,
            "ttft_ms": {f"p{p}": 1e3 * pct(ttft, p) for p in (50, 90, 99)},
            "itl_ms": {f"p{p}": 1e3 * pct(itl, p) for p in (50, 90, 99)},
            "rss_mb_after": rss_mb(args.server_pid) if args.server_pid else None,
            "failures": [r.get("why") for r in results if not r["ok"]][:5],
        })

    status, metrics = await http_request(host, port, "GET", "/metrics")
    flat = True
    rss = [r["rss_mb_after"] for r in rounds if r["rss_mb_after"] is not None]
    if len(rss) >= 2:
        flat = rss[-1] <= rss[0] * 1.10 + 16  # later rounds may not keep growing
    summary = {"url": args.url, "model": model, "concurrency": args.concurrency, "max_tokens": args.max_tokens,
               "rounds": rounds, "memory_flat": flat, "metrics_scraped": status == 200 and b"kpt_" in metrics}
    print(f"{'round':>5} {'ok':>4} {'lost':>4} {'bad':>4} {'tok/s':>8} {'req/s':>6} "
          f"{'TTFT p50/p90/p99 ms':>22} {'ITL p50/p90/p99 ms':>22} {'RSS MB':>7}")
    for r in rounds:
        t, i = r["ttft_ms"], r["itl_ms"]
        print(f"{r['round']:>5} {r['completed']:>4} {r['lost']:>4} {r['corrupted']:>4} {r['tokens_per_s']:>8.1f} "
              f"{r['requests_per_s']:>6.2f} {t['p50']:>7.1f}/{t['p90']:>6.1f}/{t['p99']:>6.1f} "
              f"{i['p50']:>7.1f}/{i['p90']:>6.1f}/{i['p99']:>6.1f} "
              f"{r['rss_mb_after'] if r['rss_mb_after'] is not None else float('nan'):>7.1f}")
        for why in r["failures"]:
            print(f"      failure: {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    bad = any(r["lost"] or r["corrupted"] for r in rounds) or not flat
    if not flat:
        print(f"memory grew between rounds: {rss}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
