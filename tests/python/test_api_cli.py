"""The console scripts installed by `pip install .` launch the packaged C++ CLI."""
import shutil
import subprocess
import sys

import pytest
from conftest import FIXTURES

kpt = pytest.importorskip("kernel_pytorch", reason="kernel_pytorch is not installed (pip install .)")
from kernel_pytorch import cli  # noqa: E402


def run_entry(func, *args):
    code = f"import sys; from kernel_pytorch import cli; sys.argv[0] = 'x'; cli.{func}()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_binary_is_packaged():
    assert cli.binary_path().exists(), "pip install . must put the CLI under kernel_pytorch/bin/"


def test_kernelpytorch_entry_point_runs_the_cli():
    p = run_entry("main", "--version")
    assert p.returncode == 0 and "kernelpytorch" in p.stdout
    p = run_entry("main", "inspect", FIXTURES / "gpt2_inner")
    assert p.returncode == 0 and "GPT2LMHeadModel" in p.stdout


def test_alias_entry_points_pass_their_subcommand():
    p = run_entry("doctor", "--help")
    assert p.returncode == 0 and "doctor" in (p.stdout + p.stderr).lower()
    p = run_entry("main", "no-such-command")
    assert p.returncode != 0  # usage errors come from the CLI itself


@pytest.mark.parametrize("script", ["kernelpytorch", "kpt-optimize", "kpt-benchmark", "kpt-doctor"])
def test_console_scripts_are_installed(script):
    if shutil.which(script) is None:
        pytest.skip(f"{script} is not on PATH (installed with --user or into another environment?)")
    assert shutil.which(script)
