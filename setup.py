"""Build script for the C extension skipblocks._C.

Only portable flags (no CPU-specific -march option), so a wheel built here runs on any
x86-64 (and the same sources build on ARM). CPU-specific code paths are
chosen at run time, never at build time.
"""
import glob
import os
import sys

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def c_sources():
    parts = ("glue", "ops", "runtime", "kernels")
    return [f for part in parts for f in sorted(glob.glob(os.path.join("csrc", part, "*.c")))]


def c_depends():
    """Headers and included kernel bodies: listed so that an in-place rebuild
    (build_ext --inplace) recompiles when one of them changes, not only when
    a .c file does."""
    return sorted(glob.glob(os.path.join("csrc", "*", "*.h")) +
                  glob.glob(os.path.join("csrc", "*", "*.inc")))


if sys.platform == "win32":
    extra_compile_args = ["/O2"]
    extra_link_args = []
else:
    # -fno-math-errno lets sqrt/exp inline; no -ffast-math: NaN and inf must
    # propagate exactly as they do in torch.
    extra_compile_args = ["-O3", "-std=c99", "-fno-math-errno", "-pthread", "-Wall", "-Wextra",
                          "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    extra_link_args = ["-pthread"]

extension = Extension(
    "skipblocks._C",
    sources=c_sources(),
    depends=c_depends(),
    include_dirs=[os.path.join("csrc", "include"), numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_23_API_VERSION")],
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
)

setup(ext_modules=[extension])
