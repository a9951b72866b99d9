#!/usr/bin/env python3
"""The CI performance gate: instruction counts of the hot CPU kernels, and same-run speed ratios.

1. Instruction counts (deterministic): tests/perf/kpt_perf_driver runs each kernel region N times
   under callgrind, counting only inside the region; the count per call is compared with
   benchmarks/baselines/callgrind.json, keyed by the ISA the driver saw (oneDNN and our own
   kernels dispatch by ISA). More than +3% fails; more than -10% passes and asks for a baseline
   update. No baseline for this ISA: skipped with a message.
2. Same-run ratios (timed, robust to load): `kernelpytorch benchmark MODEL --level
   reference,conservative --min-ratio N` runs both levels interleaved in one process; it fails only
   when the ratio is below N and the Mann-Whitney test says so (p < 0.01). Checks are listed in
   benchmarks/baselines/ratios.json.

  python3 scripts/perf/gate.py [--build build] [--callgrind-only | --ratios-only]
                               [--regions a,b] [--inject-extra-work PCT] [--update]

Exit status: 0 passed (or skipped, with the reason printed), 3 a regression, 1 an error.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINES = ROOT / "benchmarks" / "baselines" / "callgrind.json"
RATIOS = ROOT / "benchmarks" / "baselines" / "ratios.json"
SCHEMA = "kernelpytorch.callgrind-baselines/1"
EXIT_REGRESSION = 3


class GateError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Instruction counts


def parse_callgrind_dumps(out_dir):
    """{region name: instructions} from the callgrind.out.N files that CALLGRIND_DUMP_STATS_AT wrote."""
    counts = {}
    for f in sorted(Path(out_dir).glob("cg.out*")):
        name, total = None, None
        with open(f, errors="replace") as fh:
            for line in fh:
                if line.startswith("desc: Trigger: Client Request: "):
                    name = line.split(": ", 3)[-1].strip()
                elif line.startswith(("totals:", "summary:")):
                    total = int(line.split()[1])
        if name is not None and total is not None:
            counts[name] = total
    return counts


def run_driver(driver, regions, inject_pct, model=None):
    """Runs the driver under callgrind; returns (header, {region: instructions per call})."""
    if shutil.which("valgrind") is None:
        raise FileNotFoundError("valgrind is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="kpt-cg-") as tmp:
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--callgrind-out-file={tmp}/cg.out", str(driver)]
        if regions:
            cmd += ["--only", regions]
        if inject_pct:
            cmd += ["--inject-extra-work", str(inject_pct)]
        if model:
            cmd += ["--model", str(model)]
        # One thread, idle waits passive: OpenMP scheduling must not change the count.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        for k in ("ONEDNN_VERBOSE", "DNNL_VERBOSE", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
            env.pop(k, None)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise GateError(f"driver failed under valgrind (exit {r.returncode}):\n{r.stderr[-3000:]}")
        header = json.loads(r.stdout.splitlines()[0])
        totals = parse_callgrind_dumps(tmp)
    per_call = {}
    for reg in header["regions"]:
        if reg["name"] not in totals:
            raise GateError(f"no callgrind dump for region {reg['name']}")
        per_call[reg["name"]] = totals[reg["name"]] / reg["reps"]
    return header, per_call


def load_baselines(path):
    if not Path(path).exists():
        return {"schema": SCHEMA, "threshold_regression": 0.03, "threshold_faster": 0.10, "baselines": {}}
    j = json.loads(Path(path).read_text())
    if j.get("schema") != SCHEMA:
        raise GateError(f"{path}: schema must be {SCHEMA}, found {j.get('schema')!r}")
    return j


def compare_counts(per_call, base_regions, up, down):
    """Rows (region, now, base, relative, verdict); verdicts: ok, REGRESSED, faster, new."""
    rows = []
    for name, now in per_call.items():
        base = base_regions.get(name, {}).get("instructions_per_call")
        if base is None:
            rows.append((name, now, None, None, "new: no baseline"))
            continue
        rel = (now - base) / base
        if rel > up:
            verdict = "REGRESSED"
        elif rel < -down:
            verdict = "faster: update the baseline"
        else:
            verdict = "ok"
        rows.append((name, now, base, rel, verdict))
    return rows


def toolchain():
    out = {}
    try:
        out["valgrind"] = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        out["compiler"] = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    return out


def callgrind_gate(args):
    """Returns (status, lines): status 'pass', 'fail' or 'skip'."""
    driver = Path(args.build) / "tests" / "perf" / "kpt_perf_driver"
    if not driver.exists():
        return "skip", [f"callgrind: SKIPPED: {driver} not built (valgrind headers absent at configure time?)"]
    if shutil.which("valgrind") is None:
        return "skip", ["callgrind: SKIPPED: valgrind is not installed (scripts/setup.sh installs it)"]
    t0 = time.time()
    header, per_call = run_driver(driver, args.regions, args.inject_extra_work)
    key = header["isa_key"]
    j = load_baselines(args.baselines)
    up, down = j.get("threshold_regression", 0.03), j.get("threshold_faster", 0.10)
    lines = [f"instruction counts (callgrind, 1 thread, {time.time() - t0:.0f} s; isa {key})"]
    if args.inject_extra_work:
        lines.append(f"  (--inject-extra-work {args.inject_extra_work}%: each region ran that much more work)")
    if args.update:
        entry = j["baselines"].setdefault(key, {"regions": {}})
        entry.update({"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **toolchain(),
                      "git_commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=10", "HEAD"],
                                                   capture_output=True, text=True).stdout.strip()})
        for reg in header["regions"]:
            entry["regions"][reg["name"]] = {"instructions_per_call": round(per_call[reg["name"]]),
                                             "reps": reg["reps"], "what": reg["what"]}
        Path(args.baselines).write_text(json.dumps(j, indent=1, sort_keys=True) + "\n")
        lines.append(f"  wrote {len(header['regions'])} baselines for {key} to {args.baselines}")
        for name, now in per_call.items():
            lines.append(f"  {name:<26} {now:>14,.0f}")
        return "pass", lines
    entry = j["baselines"].get(key)
    if entry is None:
        known = ", ".join(sorted(j["baselines"])) or "none"
        lines.append(f"  SKIPPED: no baseline for this ISA (baselines exist for: {known}); "
                     "record one with scripts/perf/update_baselines.sh")
        return "skip", lines
    tc = toolchain()
    for k in ("valgrind", "compiler"):
        if entry.get(k) and tc.get(k) and entry[k] != tc[k]:
            lines.append(f"  note: baseline made with {entry[k]!r}, here {tc[k]!r}: counts may differ for that reason")
    rows = compare_counts(per_call, entry.get("regions", {}), up, down)
    lines.append(f"  {'region':<26} {'instr/call':>14} {'baseline':>14} {'change':>8}  verdict "
                 f"(fails above +{up:.0%})")
    for name, now, base, rel, verdict in rows:
        b = f"{base:>14,.0f}" if base is not None else f"{'-':>14}"
        r = f"{rel:>+8.3%}" if rel is not None else f"{'-':>8}"
        lines.append(f"  {name:<26} {now:>14,.0f} {b} {r}  {verdict}")
    failed = any(v == "REGRESSED" for *_, v in rows)
    if failed:
        lines.append("  a region executes more instructions than its baseline: a regression, or an intended "
                     "change (then run scripts/perf/update_baselines.sh and commit the new baselines)")
    return ("fail" if failed else "pass"), lines


# ---------------------------------------------------------------------------------------------
# Same-run ratios


def ratio_gate(args):
    cli = Path(os.environ.get("KPT_CLI", Path(args.build) / "src" / "cli" / "kernelpytorch"))
    if not cli.exists():
        raise GateError(f"{cli} not found (build first, or set KPT_CLI)")
    spec = json.loads(RATIOS.read_text())
    floors = spec["min_ratio"]
    suite = RATIOS.parent / spec["suite"]
    lines = ["same-run ratios (reference vs conservative interleaved in one process, 1 thread; "
             "fails when below the floor AND Mann-Whitney p < 0.01)"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="kpt-ratio-") as tmp:
        out = Path(tmp) / "r.json"
        cmd = [str(cli), "benchmark", "--suite", str(suite), "--models-dir", str(ROOT / "models"),
               "--level", spec["levels"], "--threads", "1", "--no-history", "--no-progress",
               "--min-ratio", ",".join(f"{k}={v}" for k, v in floors.items()), "-o", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode not in (0, EXIT_REGRESSION):
            raise GateError(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
        res = json.loads(out.read_text())
    verdicts = {}
    for l in r.stdout.splitlines():
        l = l.strip()
        if l.startswith("min-ratio "):
            wid = l.split()[1]
            verdicts[wid] = l.split(": ", 1)[1] if ": " in l else l
    by_id = {w["id"]: w for w in res["workloads"]}
    lines.append(f"  {'workload':<34} {'ref ms':>8} {'opt ms':>8} {'ratio':>7} {'floor':>6}  verdict")
    for wid, w in by_id.items():
        if w["level"] == "reference":
            continue
        base = by_id.get(wid.replace(f"/{w['level']}/", "/reference/"))
        if base is None:
            continue
        b, f = base["metrics"]["latency_ms"]["median"], w["metrics"]["latency_ms"]["median"]
        floor = next((v for k, v in floors.items() if wid.startswith(k)), None)
        short = "/".join(wid.split("/")[:3])
        lines.append(f"  {short:<34} {b:>8.2f} {f:>8.2f} {b / f:>6.2f}x {floor or '-':>5}x  "
                     f"{verdicts.get(wid, 'not checked')}")
    for name in ("minilm",):
        if not any(wid.startswith(name) for wid in by_id):
            lines.append(f"  {name}: SKIPPED (real weights absent: python3 scripts/models/prepare_models.py --out models)")
    share = min((w["metrics"].get("cpu_share", {}).get("median", 1.0) for w in res["workloads"]), default=1.0)
    lines.append(f"  ({time.time() - t0:.0f} s; lowest median cpu_share {share:.2f}: "
                 "a busy machine slows both levels alike)")
    return ("fail" if r.returncode == EXIT_REGRESSION else "pass"), lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("KPT_BUILD_DIR", "build"))
    ap.add_argument("--baselines", default=str(BASELINES))
    ap.add_argument("--callgrind-only", action="store_true")
    ap.add_argument("--ratios-only", action="store_true")
    ap.add_argument("--regions", default="", help="comma-separated driver regions (default: all)")
    ap.add_argument("--inject-extra-work", type=float, default=0,
                    help="percent of extra work in every region (proves the gate fails on a slowdown)")
    ap.add_argument("--update", action="store_true", help="write this machine's counts as the baselines")
    ap.add_argument("--expect-regression", action="store_true",
                    help="self-test (with --inject-extra-work): exit 0 only if every region was flagged, "
                         "77 when the gate had to skip")
    args = ap.parse_args()
    if not Path(args.build).is_absolute():
        args.build = str(ROOT / args.build) if not Path(args.build).exists() else args.build
    t0 = time.time()
    results = []
    try:
        if not args.ratios_only:
            results.append(callgrind_gate(args))
        if not args.callgrind_only and not args.update:
            results.append(ratio_gate(args))
    except (GateError, FileNotFoundError) as e:
        print(f"performance gate: error: {e}", file=sys.stderr)
        return 1
    print("== performance gate")
    for _, lines in results:
        print("\n".join(lines))
    failed = any(s == "fail" for s, _ in results)
    if args.expect_regression:
        flagged = [l for _, lines in results for l in lines if l.rstrip().endswith("REGRESSED")]
        if any(s == "skip" for s, _ in results):
            print("self-test skipped: the gate itself was skipped here")
            return 77
        n_regions = len([r for r in args.regions.split(",") if r]) if args.regions else None
        ok = failed and (n_regions is None or len(flagged) == n_regions)
        print(f"self-test: {len(flagged)} region(s) flagged as REGRESSED with "
              f"{args.inject_extra_work}% extra work: {'as expected' if ok else 'NOT CAUGHT'}")
        return 0 if ok else 1
    print(f"performance gate: {'FAILED' if failed else 'passed'} in {time.time() - t0:.0f} s "
          "(docs/performance.md: CI performance gate)")
    return EXIT_REGRESSION if failed else 0


if __name__ == "__main__":
    sys.exit(main())
