"""What a source distribution carries: setuptools puts only the extension's
.c files into an sdist by itself; the headers and the included kernel bodies
(.inc) come through MANIFEST.in. A file type under csrc/ that MANIFEST.in
does not name would build from a git checkout and fail from an sdist."""
import fnmatch
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/package/ -> repo


def _manifest_csrc_patterns():
    patterns = []
    with open(os.path.join(ROOT, "MANIFEST.in")) as f:
        for line in f:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "recursive-include" and parts[1] == "csrc":
                patterns += parts[2:]
    return patterns


def test_manifest_names_every_csrc_file_the_build_reads():
    patterns = _manifest_csrc_patterns()
    assert patterns, "MANIFEST.in has no recursive-include for csrc"
    missing = []
    for folder, _, files in os.walk(os.path.join(ROOT, "csrc")):
        for name in files:
            if not any(fnmatch.fnmatch(name, p) for p in patterns):
                missing.append(os.path.relpath(os.path.join(folder, name), ROOT))
    assert not missing, f"not in an sdist (add to MANIFEST.in): {missing}"


def test_every_included_file_exists_under_csrc():
    # each #include "..." of the C sources resolves to a file the sdist carries
    patterns = _manifest_csrc_patterns()
    for folder, _, files in os.walk(os.path.join(ROOT, "csrc")):
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M):
                    candidates = [os.path.join(folder, inc),
                                  os.path.join(ROOT, "csrc", "include", inc)]
                    found = [c for c in candidates if os.path.isfile(c)]
                    assert found, f"{name}: #include \"{inc}\" not found"
                    assert any(fnmatch.fnmatch(os.path.basename(found[0]), p) for p in patterns)


def test_pyproject_lists_every_subpackage():
    """pip installs only the packages pyproject.toml names: a subpackage
    missing there works from the checkout and is absent after install."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
        listed = set(re.findall(r'"(skipblocks[\w.]*)"',
                                re.search(r"^packages = \[(.*?)\]", f.read(), re.M | re.S)[1]))
    found = {os.path.relpath(folder, root).replace(os.sep, ".")
             for folder, _, files in os.walk(os.path.join(root, "skipblocks"))
             if "__init__.py" in files}
    assert found == listed
