"""Console scripts: thin launchers of the packaged C++ CLI (kernel_pytorch/bin/kernelpytorch).

    kernelpytorch ...   -> kernelpytorch ...
    kpt-optimize ...    -> kernelpytorch optimize ...
    kpt-benchmark ...   -> kernelpytorch benchmark ...
    kpt-doctor ...      -> kernelpytorch doctor ...
"""
import os
import sys
from pathlib import Path


def binary_path():
    return Path(__file__).resolve().parent / "bin" / "kernelpytorch"


def _exec(subcommand):
    exe = binary_path()
    if not exe.exists():
        sys.stderr.write(f"error: the KernelPyTorch CLI binary is missing ({exe}); reinstall with pip install .\n")
        sys.exit(1)
    argv = [str(exe)] + ([subcommand] if subcommand else []) + sys.argv[1:]
    os.execv(str(exe), argv)  # replaces this process: exit codes and signals are the binary's own


def main():
    _exec(None)


def optimize():
    _exec("optimize")


def benchmark():
    _exec("benchmark")


def doctor():
    _exec("doctor")
