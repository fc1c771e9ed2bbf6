"""The command line (skipblocks/cli.py): ``skipblocks`` (the console script)
and ``python -m skipblocks``, with the subcommands demo (the default),
parity, bench, info, inspect and convert.

Most tests call ``skipblocks.cli.main(argv)`` in this process and read what
it prints; a few run it in a subprocess: ``python -m skipblocks``, the
console script (required when skipblocks is installed, as CI does with
``pip install .``; from a source checkout without an installation, a
process that calls main() as pip's generated script does), and a process in
which torch cannot be imported.
"""
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

import numpy as np
import pytest

import skipblocks
from skipblocks import cli, demos
from helpers import import_blocker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(skipblocks.__file__)))
COMMANDS = ["demo", "parity", "bench", "info", "inspect", "convert"]
MODULES = ["resnet", "densenet", "se", "unet", "unet-bilinear", "se-resnet", "se-inception"]
INFO_KEYS = {"skipblocks", "isa", "threads", "environment", "numpy", "python", "platform",
             "build", "torch"}


def run(*argv):
    """(exit status, stdout, stderr) of main(argv) in this process."""
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for key in ("PYTHONSTARTUP", "SKIPBLOCKS_ISA", "SKIPBLOCKS_NUM_THREADS"):
        env.pop(key, None)
    return env


def _subprocess(args, cwd, env=None):
    return subprocess.run(args, cwd=str(cwd), env=env or _env(), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def no_torch(monkeypatch):
    """``import torch`` fails in this process for the test's duration."""
    monkeypatch.setitem(sys.modules, "torch", None)


# -- __main__ and the entry points ------------------------------------------------------

def test_dunder_main_is_the_cli():
    import skipblocks.__main__ as dunder_main
    assert dunder_main.main is cli.main
    with open(dunder_main.__file__, encoding="utf-8") as f:
        code = [line for line in f if line.strip() and not line.lstrip().startswith(("#", '"'))]
    assert len(code) <= 4, code  # import sys, the import, the guard, sys.exit(main())


def test_python_dash_m_help_names_itself_and_lists_the_commands(tmp_path):
    proc = _subprocess([sys.executable, "-m", "skipblocks", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m skipblocks ")
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", proc.stdout, re.M), (command, proc.stdout)
    assert "python -m skipblocks parity resnet" in proc.stdout  # examples with the prog


def _installations():
    """skipblocks' metadata of each installation (pip install . or -e .),
    not the egg-info a build leaves in the checkout."""
    found = []
    for dist in importlib.metadata.distributions():
        if (dist.metadata["Name"] or "").lower() != "skipblocks":
            continue
        if os.path.realpath(str(dist.locate_file(""))) != os.path.realpath(ROOT):
            found.append(dist)
    return found


def _declares_the_script(dist):
    return [(ep.name, ep.value) for ep in dist.entry_points
            if ep.group == "console_scripts"] == [("skipblocks", "skipblocks.cli:main")]


def _console_script(dist):
    """The path of an installation's ``skipblocks`` script: from its RECORD,
    else where pip puts scripts."""
    names = ("skipblocks", "skipblocks.exe")
    for file in dist.files or []:  # the package's own files are under skipblocks/
        if os.path.basename(str(file)) in names:
            path = os.path.realpath(str(file.locate()))
            if os.path.isfile(path):
                return path
    candidates = [shutil.which("skipblocks")]
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else \
                sysconfig.get_path("scripts")
        except KeyError:
            continue
        candidates += [os.path.join(scripts, name) for name in names]
    candidates += [os.path.join(os.path.dirname(sys.executable), n) for n in names]
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def _script_commands(tmp_path):
    """[(command, environment)] that run the console script. Every
    installation whose metadata declares the script (CI: pip install .) must
    have it, and is run; so must the installation this process imported
    skipblocks from. Without one (a source checkout, perhaps beside an
    installation of an older version that had no script), a file that does
    what pip's generated script does."""
    here = os.path.realpath(os.path.dirname(skipblocks.__file__))
    commands = []
    for dist in _installations():
        location = os.path.realpath(str(dist.locate_file("")))
        imported_from_it = here.startswith(location + os.sep)
        if not (_declares_the_script(dist) or imported_from_it):
            continue  # an older installation, not the code under test
        assert _declares_the_script(dist), \
            f"the skipblocks under test is installed in {location} without its console script"
        script = _console_script(dist)
        assert script is not None, \
            f"skipblocks is installed in {location} but its console script was not found"
        commands.append(([script], dict(os.environ)))  # the installation's own skipblocks
    if not commands:
        stub = tmp_path / "bin" / "skipblocks"
        stub.parent.mkdir()
        stub.write_text("import re, sys\nfrom skipblocks.cli import main\n"
                        "sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                        "sys.exit(main())\n")
        commands.append(([sys.executable, str(stub)], _env()))
    return commands


def test_console_script(tmp_path):
    for command, env in _script_commands(tmp_path):
        proc = _subprocess(command + ["--help"], tmp_path, env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: skipblocks "), command
        assert all(name in proc.stdout for name in COMMANDS)
        proc = _subprocess(command + ["info", "--json"], tmp_path, env)
        assert proc.returncode == 0, proc.stderr
        info = json.loads(proc.stdout)
        assert info["skipblocks"]["version"] == skipblocks.__version__
        assert info["torch"]["imported"] is False
        proc = _subprocess(command + ["parity", "--mode", "sideways"], tmp_path, env)
        assert proc.returncode == 2 and "usage: skipblocks parity" in proc.stderr


# -- --help, --version, usage errors ----------------------------------------------------

def test_help_lists_the_commands():
    status, out, _ = run("--help")
    assert status == 0
    assert out.startswith("usage: skipblocks ")  # main() called from Python: the script's name
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command
    assert "examples:" in out and "Exit status" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command):
    status, out, _ = run(command, "--help")
    assert status == 0
    assert out.startswith(f"usage: skipblocks {command} ")
    examples = out.split("examples:\n", 1)[1]
    assert f"skipblocks {command}" in examples
    assert "-h, --help" in out


def test_parity_help_lists_the_modules():
    out = run("parity", "--help")[1]
    modules = out.split("modules:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in modules.splitlines()] == MODULES


def test_version():
    status, out, _ = run("--version")
    assert status == 0 and out.strip() == f"skipblocks {skipblocks.__version__}"


@pytest.mark.parametrize("argv, message", [
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["parity", "sideways"], "invalid choice: 'sideways'"),
    (["parity", "--mode", "sideways"], "invalid choice: 'sideways'"),
    (["bench", "--seconds", "0"], "expected a number > 0"),
    (["bench", "--seconds", "nan"], "expected a number > 0"),
    (["bench", "--threads", "0"], "expected an integer >= 1"),
    (["bench", "--threads", "two"], "expected an integer"),
    (["bench", "--cases", "resnet50"], "invalid choice: 'resnet50'"),
    (["inspect"], "the following arguments are required: file"),
    (["convert", "a.pt"], "the following arguments are required: OUT"),
    (["convert", "a.pt", "b.npz", "--cast", "float16"], "invalid choice: 'float16'"),
    (["info", "--seed", "1"], "unrecognized arguments: --seed 1"),
    (["--seed", "1", "info"], "--seed: not an option of info"),
    (["--no-torch", "parity"], "--no-torch: parity compares against torch"),
    (["demo", "--seed", "one"], "invalid int value: 'one'"),
])
def test_bad_arguments_exit_2_with_argparses_message(argv, message):
    status, out, err = run(*argv)
    assert status == 2
    assert out == ""
    assert err.startswith("usage: skipblocks")
    assert "error: " in err and message in err, err


# -- demo -------------------------------------------------------------------------------

DOCUMENT_SHAPES = ["(1, 128, 13, 13)", "(1, 256, 24, 24)", "(50, 512, 7, 7)", "(1, 2, 64, 64)",
                   "(2, 64, 28, 28)", "(2, 256, 28, 28)"]


def test_demo_is_the_default_and_compares_with_torch():
    status, out, _ = run()
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["demo", "input", "output", "train", "stats", "eval"]
    assert [line.split()[0] for line in lines[1:-1]] == list(cli._all_demos())
    assert all(shape in out for shape in DOCUMENT_SHAPES)
    assert lines[-1].startswith("parity error: ") and "(bound 1e-4)" in lines[-1]
    assert float(re.search(r"worst (\S+)", lines[-1]).group(1)) <= 1e-4


def test_demo_without_torch_prints_the_shapes(no_torch):
    status, out, _ = run("demo", "--seed", "2")
    assert status == 0
    assert out.splitlines()[0] == "torch is not installed: showing skipblocks' output shapes only"
    assert "resnet        input (1, 3, 100, 100) -> output (1, 128, 13, 13)" in out
    assert all(shape in out for shape in DOCUMENT_SHAPES)


def test_demo_no_torch_option_before_or_after_the_command():
    for argv in (["--no-torch"], ["demo", "--no-torch"]):
        status, out, _ = run(*argv)
        assert status == 0
        assert "parity" not in out and "torch is not installed" not in out
        assert len(out.splitlines()) == len(cli._all_demos())


def test_demo_exits_1_when_a_parity_error_exceeds_the_bound(monkeypatch):
    from skipblocks import reference
    monkeypatch.setattr(cli, "_all_demos", lambda: {"se": demos.DEMOS["se"]})
    assert run("demo")[0] == 0
    monkeypatch.setattr(reference, "parity_error", lambda ours, theirs: 2e-4)
    status, out, _ = run("demo")
    assert status == 1 and "worst 2.00e-04" in out


# -- parity -----------------------------------------------------------------------------

def _tables(out):
    """{module: [rows of its table]} of parity's text output."""
    tables = {}
    for block in out.split("== ")[1:]:
        name = block.split(" ", 1)[0]
        tables[name] = [line for line in block.splitlines()
                        if re.match(r"[ !] (train|eval) ", line)]
    return tables


def test_parity_of_every_module_passes_and_lists_its_layers():
    status, out, _ = run("parity")
    assert status == 0, out[-3000:]
    tables = _tables(out)
    assert list(tables) == MODULES
    layers = {name: {row.split()[2] if row.startswith("!") else row.split()[1]
                     for row in rows} for name, rows in tables.items()}
    assert {"0", "2.conv1", "2.bn#1", "2.bn#2", "4.downsample.0", "(model)"} <= layers["resnet"]
    assert {"3.block.dense0.conv1", "3.block.dense5.conv2"} <= layers["densenet"]
    assert {"avg_pool", "fc.0", "fc.2", "(model)"} <= layers["se"]
    assert {"inc.double_conv.0", "up4.up", "outc.conv"} <= layers["unet"]
    assert {"branch1.conv", "branch4.0", "se.fc.0"} <= layers["se-inception"]
    assert {"conv1", "se.fc.0", "bn#2"} <= layers["se-resnet"]
    for name, rows in tables.items():
        modes = {row.split()[0] for row in rows}
        assert modes == {"train", "eval"}, name
        assert not any(row.startswith("!") for row in rows), name
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"parity: 7 module\(s\), \d+ rows; worst parity error \S+ \(\S+\); "
                        r"0 row\(s\) above 1e-04", summary), summary


def test_parity_exits_1_when_a_row_exceeds_the_bound():
    status, out, _ = run("parity", "se", "--mode", "eval", "--tol", "1e-12")
    assert status == 1
    flagged = [row for row in _tables(out)["se"] if row.startswith("!")]
    assert flagged and "(flagged with !)" in out


def test_parity_markdown_fused_and_seed():
    status, out, _ = run("parity", "se", "se-resnet", "--markdown", "--fused", "--mode", "train",
                         "--seed", "5")
    assert status == 0
    assert out.startswith("### se (section 4.3")
    assert "### se-resnet (section 4.2" in out and "fused fast paths" in out
    assert "| mode | layer | type | output shape |" in out
    rows = [line for line in out.splitlines() if line.startswith("| train |")]
    assert rows and not [line for line in out.splitlines() if line.startswith("| eval |")]


def test_parity_without_torch_says_so_and_exits_2(no_torch):
    status, out, err = run("parity")
    assert status == 2 and out == ""
    assert "parity needs torch" in err and "not installed" in err


# -- bench ------------------------------------------------------------------------------

def _bench_rows(out, columns):
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("case "))
    assert lines[header].split("  ")[0].strip() == "case"
    assert re.fullmatch(r"[- ]+", lines[header + 1])
    rows = []
    for line in lines[header + 2:]:
        if not line.strip():
            break
        rows.append(line.split())
    assert all(len(row) == columns for row in rows), rows
    return lines[header], rows


def test_bench_with_a_tiny_budget_prints_a_table():
    threads_before = skipblocks.get_num_threads()
    status, out, _ = run("bench", "--seconds", "1.5", "--cases", "se", "resnet", "--threads",
                         "1", "--mode", "both")
    assert status == 0
    assert skipblocks.get_num_threads() == threads_before  # restored
    header, rows = _bench_rows(out, columns=10)  # each "median [min-max]" is 2 words
    assert header.split() == ["case", "mode", "input", "threads", "torch", "ms", "skipblocks",
                              "ms", "ratio", "rounds"]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("se", "eval", "50x512x7x7", "1"), ("se", "train", "50x512x7x7", "1"),
        ("resnet", "eval", "1x3x100x100", "1"), ("resnet", "train", "1x3x100x100", "1")]
    for row in rows:
        torch_ms, sb_ms, ratio, rounds = float(row[4]), float(row[6]), float(row[8]), int(row[9])
        assert re.fullmatch(r"\[\d+\.\d\d-\d+\.\d\d\]", row[5]) and rounds >= 3
        assert ratio == pytest.approx(torch_ms / sb_ms, rel=0.02, abs=0.01)
    assert "ratio = torch / skipblocks" in out
    total = float(re.search(r"^total (\S+) s \(budget 1\.5 s\)", out, re.M).group(1))
    assert total < 30  # about the budget; the minimum rounds may overrun it a little


def test_bench_without_torch_times_skipblocks_alone(no_torch):
    status, out, _ = run("bench", "--seconds", "0.5", "--cases", "se", "--threads", "1", "2")
    assert status == 0
    assert "torch is not installed: timing skipblocks alone" in out
    header, rows = _bench_rows(out, columns=7)
    assert header.split() == ["case", "mode", "input", "threads", "skipblocks", "ms", "rounds"]
    assert [row[3] for row in rows] == ["1", "2"]
    assert "ratio" not in out


# -- info -------------------------------------------------------------------------------

def test_info_json_has_the_keys():
    status, out, _ = run("info", "--json")
    assert status == 0
    info = json.loads(out)
    assert set(info) == INFO_KEYS
    assert info["skipblocks"]["version"] == skipblocks.__version__
    assert info["isa"]["in_use"] == skipblocks.get_isa()
    assert info["isa"]["available"] == skipblocks.available_isas()
    assert info["threads"]["in_use"] == skipblocks.get_num_threads()
    assert info["threads"]["usable_cpus"] >= 1
    assert info["numpy"] == np.__version__
    assert info["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert info["platform"]["machine"]
    assert set(info["environment"]) == {"SKIPBLOCKS_ISA", "SKIPBLOCKS_NUM_THREADS"}
    build_info = getattr(skipblocks._C, "build_info", None)
    if build_info is not None:
        assert info["build"] == json.loads(json.dumps(build_info()))
        assert set(info["isa"]["available"]) <= set(info["isa"]["compiled"])
    for key in ("compiler", "sanitize"):
        assert key in info["build"]
    assert info["torch"]["installed"] is True  # torch is the test oracle here
    assert info["torch"]["version"].startswith(sys.modules["torch"].__version__.split("+")[0])


def test_info_text_names_each_item():
    status, out, _ = run("info")
    assert status == 0
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())
    assert list(lines) == ["skipblocks", "ISA", "threads", "environment", "NumPy", "Python",
                           "platform", "CPU", "build", "torch"]
    assert lines["skipblocks"].startswith(skipblocks.__version__ + " (")
    assert lines["ISA"].startswith(f"{skipblocks.get_isa()} in use; this CPU can run: ")
    assert lines["threads"].startswith(f"{skipblocks.get_num_threads()} (")
    assert lines["NumPy"] == np.__version__
    assert lines["torch"].startswith("installed")


def test_info_without_torch(no_torch):
    info = json.loads(run("info", "--json")[1])
    assert info["torch"] == {"installed": False, "version": None, "imported": False}
    assert run("info")[1].splitlines()[-1].split(None, 1)[1].startswith("not installed")


def test_without_torch_in_a_fresh_process(tmp_path):
    """info, --help and a tiny bench in a process where torch cannot be
    imported: none of them needs it (nor imports it)."""
    code = import_blocker("torch") + textwrap.dedent("""
        import contextlib, io, json
        from skipblocks.cli import main
        for argv in (["--help"], ["parity", "--help"], ["info"]):
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(argv) == 0, argv
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["info", "--json"]) == 0
        assert json.loads(out.getvalue())["torch"]["installed"] is False
        assert main(["parity", "se"]) == 2
        assert main(["bench", "--seconds", "0.2", "--cases", "se", "--threads", "1"]) == 0
        assert "torch" not in sys.modules
    """)
    proc = _subprocess([sys.executable, "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "parity needs torch" in proc.stderr
    assert "timing skipblocks alone" in proc.stdout


def test_info_and_help_do_not_import_torch(tmp_path):
    code = textwrap.dedent("""
        import contextlib, io, sys
        from skipblocks.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["--help"], ["bench", "--help"], ["info"], ["info", "--json"]):
                assert main(argv) == 0, argv
        assert "torch" not in sys.modules
        print("ok")
    """)
    proc = _subprocess([sys.executable, "-c", code], tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


# -- inspect and convert ----------------------------------------------------------------

def test_inspect_and_convert(tmp_path):
    weights = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
               "bn.running_mean": np.zeros(2, np.float32)}
    skipblocks.save(weights, str(tmp_path / "w.npz"))
    status, out, _ = run("inspect", str(tmp_path / "w.npz"))
    assert status == 0
    assert "NumPy .npz" in out and "(2, 3, 2, 2)" in out and "2 tensors" in out
    status, out, _ = run("convert", str(tmp_path / "w.npz"), str(tmp_path / "w.safetensors"))
    assert status == 0 and out.startswith(f"wrote {tmp_path / 'w.safetensors'} (safetensors)")
    back = skipblocks.load(str(tmp_path / "w.safetensors"))
    assert set(back) == set(weights)
    assert np.array_equal(back["conv.weight"], weights["conv.weight"])
    status, out, err = run("inspect", str(tmp_path / "missing.pt"))
    assert status == 1 and err.startswith("error: ")
