"""torchlite's import-time malloc tuning: freed activation memory is reused, not faulted in again."""
import os
import platform
import resource
import subprocess
import sys

import numpy as np

import torchlite
from torchlite._malloc import tune_malloc

GLIBC = platform.libc_ver()[0] == "glibc"


def _faults_of_alloc_loop(steps=20, nbytes=8 << 20):
    """Minor page faults while a step-like loop allocates, touches and frees two big arrays."""
    def step():
        a = np.ones(nbytes // 4, np.float32)
        b = a * 2
        del a, b

    step()  # the first step faults its pages in once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_tuned_on_glibc():
    assert tune_malloc() is GLIBC


def test_freed_big_arrays_are_reused_without_page_faults():
    assert torchlite  # imported: the tuning is in effect in this process
    faults = _faults_of_alloc_loop()
    if GLIBC:
        # untuned glibc faults every page of both arrays every step: ~30,000 faults here
        assert faults < 200, faults


def test_environment_variable_turns_the_tuning_off():
    code = ("import torchlite, sys; from torchlite._malloc import tune_malloc; "
            "sys.exit(0 if tune_malloc() is False else 1)")
    env = dict(os.environ, TORCHLITE_MALLOC_TUNING="0")
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_untuned_process_does_fault():
    """The check above can fail: without the tuning the same loop faults on every step."""
    if not GLIBC:
        return
    code = ("import sys; sys.path.insert(0, {!r}); import test_malloc as t; "
            "print(t._faults_of_alloc_loop())").format(os.path.dirname(__file__))
    env = dict(os.environ, TORCHLITE_MALLOC_TUNING="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) > 10 * 200
