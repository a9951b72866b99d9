"""Logic of the CI performance gate (scripts/perf/gate.py) without valgrind: dump parsing,
thresholds, the skip for an unknown ISA, baseline updates. Run: python3 -m unittest test_gate
(ctest perf_gate.logic)."""
import json
import sys
import tempfile
import types
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "perf"))
import gate  # noqa: E402

KEY = "sse4.2+avx+avx2+fma|onednn:avx2"


def header(names, key=KEY):
    return {"isa_key": key, "regions": [{"name": n, "reps": 10, "what": n + " shape"} for n in names]}


def baselines(path, regions, key=KEY):
    j = {"schema": gate.SCHEMA, "threshold_regression": 0.03, "threshold_faster": 0.10,
         "baselines": {key: {"regions": {n: {"instructions_per_call": v} for n, v in regions.items()}}}}
    Path(path).write_text(json.dumps(j))


class GateLogic(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        (self.dir / "tests" / "perf").mkdir(parents=True)
        (self.dir / "tests" / "perf" / "kpt_perf_driver").write_text("")  # exists: not called (mocked)
        self.base = self.dir / "callgrind.json"

    def tearDown(self):
        self.tmp.cleanup()

    def args(self, **kw):
        a = dict(build=str(self.dir), baselines=str(self.base), regions="", inject_extra_work=0, update=False)
        a.update(kw)
        return types.SimpleNamespace(**a)

    def run_gate(self, counts, key=KEY, **kw):
        with mock.patch.object(gate, "run_driver", return_value=(header(list(counts), key), counts)), \
                mock.patch.object(gate.shutil, "which", return_value="/usr/bin/valgrind"), \
                mock.patch.object(gate, "toolchain", return_value={}):
            return gate.callgrind_gate(self.args(**kw))

    def test_parses_the_dumps_of_named_regions(self):
        d = self.dir / "dumps"
        d.mkdir()
        (d / "cg.out.1").write_text("version: 1\ndesc: Trigger: Client Request: gemv_int8\nevents: Ir\n"
                                    "fn=(1) f\n3 100\nsummary: 5517168\n")
        (d / "cg.out.2").write_text("desc: Trigger: Client Request: add_rmsnorm\ntotals: 1918640\n")
        (d / "cg.out").write_text("desc: Trigger: Program termination\ntotals: 7\n")  # not a region
        self.assertEqual(gate.parse_callgrind_dumps(d), {"gemv_int8": 5517168, "add_rmsnorm": 1918640})

    def test_thresholds(self):
        rows = gate.compare_counts({"a": 1031, "b": 1029, "c": 890, "d": 5},
                                   {"a": {"instructions_per_call": 1000}, "b": {"instructions_per_call": 1000},
                                    "c": {"instructions_per_call": 1000}}, 0.03, 0.10)
        verdicts = {r[0]: r[4] for r in rows}
        self.assertEqual(verdicts["a"], "REGRESSED")           # +3.1%
        self.assertEqual(verdicts["b"], "ok")                  # +2.9%
        self.assertTrue(verdicts["c"].startswith("faster"))    # -11%: asks for a baseline update
        self.assertTrue(verdicts["d"].startswith("new"))       # no baseline for the region

    def test_ten_percent_more_work_fails_and_equal_work_passes(self):
        baselines(self.base, {"gemv_int8": 689646, "add_rmsnorm": 95932})
        status, lines = self.run_gate({"gemv_int8": 689646 * 1.10, "add_rmsnorm": 95932.0})
        self.assertEqual(status, "fail")
        self.assertIn("REGRESSED", "\n".join(lines))
        status, _ = self.run_gate({"gemv_int8": 689646.0, "add_rmsnorm": 95932.0})
        self.assertEqual(status, "pass")

    def test_unknown_isa_is_skipped_with_the_known_keys(self):
        baselines(self.base, {"gemv_int8": 689646})
        status, lines = self.run_gate({"gemv_int8": 1.0}, key="avx512f+amx|onednn:avx512_core_amx")
        self.assertEqual(status, "skip")
        text = "\n".join(lines)
        self.assertIn("no baseline for this ISA", text)
        self.assertIn(KEY, text)
        self.assertIn("update_baselines.sh", text)

    def test_update_keeps_other_isas(self):
        baselines(self.base, {"gemv_int8": 1}, key="other-isa")
        status, _ = self.run_gate({"gemv_int8": 689646.0}, update=True)
        self.assertEqual(status, "pass")
        j = json.loads(self.base.read_text())
        self.assertEqual(j["baselines"]["other-isa"]["regions"]["gemv_int8"]["instructions_per_call"], 1)
        self.assertEqual(j["baselines"][KEY]["regions"]["gemv_int8"]["instructions_per_call"], 689646)

    def test_missing_driver_skips(self):
        (self.dir / "tests" / "perf" / "kpt_perf_driver").unlink()
        status, lines = gate.callgrind_gate(self.args())
        self.assertEqual(status, "skip")
        self.assertIn("not built", lines[0])

    def test_committed_baselines_parse(self):
        j = gate.load_baselines(gate.BASELINES)
        self.assertTrue(j["baselines"], "benchmarks/baselines/callgrind.json holds no ISA")
        for key, entry in j["baselines"].items():
            self.assertIn("|onednn:", key)
            for name, r in entry["regions"].items():
                self.assertGreater(r["instructions_per_call"], 0, name)


if __name__ == "__main__":
    unittest.main()
