"""The promise about dependencies, checked on pyproject.toml: NumPy is the
only run-time dependency; torch, the oracle, is pinned wherever it appears
(an unpinned torch can pull a multi-GB CUDA build); the engines of
benchmarks/bench_engines.py sit in the ``bench`` extra only, which neither
the README's test command nor CI installs."""

import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    PROJECT = tomllib.load(f)["project"]
EXTRAS = PROJECT["optional-dependencies"]
ENGINES = ("onnx", "onnxruntime", "openvino")


def _name(requirement):
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_numpy_is_the_only_run_time_dependency():
    assert [_name(r) for r in PROJECT["dependencies"]] == ["numpy"]


def test_torch_is_pinned_in_every_extra():
    for extra, requirements in EXTRAS.items():
        for requirement in requirements:
            if _name(requirement) == "torch":
                assert requirement.replace(" ", "") == "torch==2.13.0", (extra, requirement)


def test_engines_only_in_the_bench_extra():
    assert {_name(r) for r in EXTRAS["bench"]} >= set(ENGINES)
    for extra, requirements in EXTRAS.items():
        if extra != "bench":
            assert not {_name(r) for r in requirements} & set(ENGINES), extra


def test_readme_and_ci_install_the_same_extras_without_bench():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    installs = re.findall(r'pip install "\.\[([^\]]*)\]"', readme)
    assert installs, "README.md lost its test command"
    test_command = installs[0]
    assert f'pip install ".[{test_command}]"' in ci
    assert "bench" not in test_command.split(",")
    assert set(test_command.split(",")) <= set(EXTRAS)
