"""Hostile and malformed weight files (issue 12, item 7).

Every file here must be refused by ``skipblocks.load`` with
``WeightsFileError`` -- never another exception, never a crash -- whose
message starts with the file's path and then names what was wrong (each case
asserts a fragment of that message, matched loosely). A refused load
executes nothing (payloads that would create a marker file, or import a
module whose import creates it, leave no marker), leaves the input file byte
for byte as it was, and writes nothing: the file's directory, the working
directory and the temporary directory are unchanged.

Files whose declared sizes are huge are loaded in a subprocess whose address
space is capped at 1 GiB above what it uses after importing skipblocks, and
whose peak RSS growth and time are measured: reading such a file must fail
fast without allocating what it declares.

The refusal messages are printed (``pytest -s`` or ``-rA`` shows them).
"""
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import textwrap
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

import skipblocks as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402
from hostile import call, dct, glob, i, lst, none, s, tup  # noqa: E402


# ---------------------------------------------------------------------------
# the sandbox every case runs in
# ---------------------------------------------------------------------------

class Sandbox:
    """A fresh directory for the case's file, working directory, temporary
    directory (tempfile's and $TMPDIR), a marker path that only an executed
    payload creates, and an importable module whose import creates it."""

    def __init__(self, tmp_path, monkeypatch):
        self.root = tmp_path
        self.files = tmp_path / "files"
        self.cwd = tmp_path / "cwd"
        self.tmp = tmp_path / "tmp"
        evil_dir = tmp_path / "modules"
        for d in (self.files, self.cwd, self.tmp, evil_dir):
            d.mkdir()
        monkeypatch.chdir(self.cwd)
        monkeypatch.setenv("TMPDIR", str(self.tmp))
        monkeypatch.setattr(tempfile, "tempdir", str(self.tmp))
        self.marker = tmp_path / "MARKER"
        # a unique name: no earlier import of it can be cached in sys.modules
        self.evil = f"sb_hostile_{uuid.uuid4().hex}"
        (evil_dir / f"{self.evil}.py").write_text(
            H.EVIL_MODULE_SOURCE.format(marker=str(self.marker)))
        monkeypatch.syspath_prepend(str(evil_dir))

    def write(self, name, data):
        path = self.files / name
        path.write_bytes(data)
        return path

    def _listings(self):
        return {d: sorted(p.name for p in d.iterdir())
                for d in (self.root, self.files, self.cwd, self.tmp)}

    def refuse(self, path, pattern, *, mmap=(False, True)):
        """Loads ``path`` (mmap off and on) and asserts WeightsFileError whose
        message is '<path>: ...' and matches ``pattern`` (case-insensitive)
        after the path; asserts nothing ran, nothing changed, nothing was
        written. Returns the messages."""
        path = Path(path)
        before = path.read_bytes()
        listings = self._listings()
        messages = []
        for use_mmap in mmap:
            try:
                result = sb.load(path, mmap=use_mmap)
            except sb.WeightsFileError as exc:
                message = str(exc)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                raise AssertionError(
                    f"load(mmap={use_mmap}) raised {type(exc).__name__}, not "
                    f"WeightsFileError: {exc!r:.500}") from exc
            else:
                raise AssertionError(f"load(mmap={use_mmap}) returned a "
                                     f"{type(result).__name__} instead of refusing the file: "
                                     f"{result!r:.300}")
            print(f"[mmap={use_mmap}] {message}")
            if not message.startswith(str(path)):
                raise AssertionError(f"message does not start with the path: {message!r}")
            detail = message[len(str(path)):]
            if not re.search(pattern, detail, re.IGNORECASE):
                raise AssertionError(f"load(mmap={use_mmap}): message {detail!r} does not "
                                     f"name the problem ({pattern!r})")
            messages.append(message)
        assert path.read_bytes() == before, "load modified the input file"
        assert self._listings() == listings, "load wrote files"
        assert not self.marker.exists(), "a payload was executed: the marker exists"
        assert self.evil not in sys.modules, "load imported a module the file names"
        return messages

    def refuse_bytes(self, name, data, pattern, **kwargs):
        return self.refuse(self.write(name, data), pattern, **kwargs)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    return Sandbox(tmp_path, monkeypatch)


# Legacy files are refused with mmap=True whatever they hold (torch.load's
# rule: only the zip format can be mapped), so a legacy case's own problem is
# checked with mmap=False; test_legacy_refuses_mmap checks that rule.
LEGACY = {"mmap": (False,)}


# ---------------------------------------------------------------------------
# base files (module scope: written once)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    d = tmp_path_factory.mktemp("bases")
    return {
        "zip": Path(H.write_torch_zip_base(d / "base.pt")).read_bytes(),
        "legacy": Path(H.write_torch_legacy_base(d / "legacy.pt")).read_bytes(),
        "safetensors": Path(H.write_safetensors_base(d / "base.safetensors")).read_bytes(),
        "npz": Path(H.write_npz_base(d / "base.npz")).read_bytes(),
    }


def test_hand_built_files_are_valid(sandbox):
    """The hand-built files the hostile cases alter load, with the values
    written, so each refusal below comes from what a case breaks."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    for name, data, kwargs in [
            ("a.pt", H.torch_zip(H.weights_pickle()), {}),
            ("b.pt", H.torch_zip(H.weights_pickle(how="STACK_GLOBAL")), {}),
            ("c.pt", H.legacy(H.weights_pickle(legacy=True)), LEGACY),
            ("d.pt", H.legacy(H.weights_pickle(legacy=True, how="STACK_GLOBAL")), LEGACY)]:
        for use_mmap in kwargs.get("mmap", (False, True)):
            got = sb.load(sandbox.write(name, data), mmap=use_mmap)
            assert list(got) == ["w"]
            np.testing.assert_array_equal(got["w"], w)
            assert got["w"].dtype == np.float32
    got = sb.load(sandbox.write("e.safetensors",
                                H.safetensors_bytes(H.st_base_header(), H.ST_BASE_DATA)))
    np.testing.assert_array_equal(got["w"], w)
    np.testing.assert_array_equal(got["b"], np.arange(3))
    got = sb.load(sandbox.write("f.npz", H.npz_bytes(
        {"w.npy": H.npy_bytes(H.npy_header(), H.FLOATS6)})), mmap=True)
    np.testing.assert_array_equal(got["w"], w)


def test_base_files_are_valid(sandbox, bases):
    """The library-written base files load (the truncation and fuzz cases
    start from them)."""
    for fmt, data in bases.items():
        name = {"zip": "z.pt", "legacy": "l.pt", "safetensors": "s.safetensors",
                "npz": "n.npz"}[fmt]
        got = sb.load(sandbox.write(name, data))
        if fmt in ("zip", "legacy"):
            assert got["step"] == 7 and got["name"] == "base"
            np.testing.assert_array_equal(got["view"], np.arange(12.0).reshape(3, 4).T)
        else:
            np.testing.assert_array_equal(got["w"], np.arange(6.0).reshape(2, 3))


# ---------------------------------------------------------------------------
# 1. truncated files
# ---------------------------------------------------------------------------

# pickle's own words for a cut pickle ("not enough data", "exhausted before
# seeing STOP", "only N remain", "no newline found") count as naming the
# truncation
TRUNCATED = (r"truncat|past the end|end of (the )?file|too short|incomplete|unexpected end|"
             r"EOF|missing|central directory|not a zip|zip|header|size|offset|empty|"
             r"not a torch|STOP|not enough data|exhausted|only \d+ remain|no newline found")


def _spread(n, count=24):
    return set(range(0, n, max(1, n // count)))


def _zip_cuts(data):
    cuts = set(range(0, 32)) | _spread(len(data))
    for _name, (header, start, end) in H.record_offsets(data).items():
        cuts |= {header + 1, header + 29, start, start + 1, (start + end) // 2, end - 1}
    cd = H.central_directory_offset(data)
    eocd = data.rindex(b"PK\x05\x06")
    cuts |= {cd, cd + 1, cd + 23, cd + 46, (cd + eocd) // 2, eocd, eocd + 1, eocd + 12,
             len(data) - 2, len(data) - 1}
    return sorted(c for c in cuts if 0 <= c < len(data))


def _legacy_cuts(data):
    spans, records = H.legacy_layout(data)
    cuts = set(range(0, 8)) | _spread(len(data))
    for start, end in spans:
        cuts |= {start, start + 1, (start + end) // 2, end - 1}
    cuts |= {records, records + 4, records + 8, records + 9, len(data) - 1}
    return sorted(c for c in cuts if 0 <= c < len(data))


def _safetensors_cuts(data):
    n = struct.unpack("<Q", data[:8])[0]
    cuts = set(range(0, 10)) | _spread(len(data))
    cuts |= {8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 5, len(data) - 1}
    return sorted(c for c in cuts if 0 <= c < len(data))


CUTS = {"zip": (_zip_cuts, "t.pt", {}), "legacy": (_legacy_cuts, "t.pt", LEGACY),
        "safetensors": (_safetensors_cuts, "t.safetensors", {}), "npz": (_zip_cuts, "t.npz", {})}


@pytest.mark.parametrize("fmt", list(CUTS))
def test_truncated(sandbox, bases, fmt):
    """The base file cut at many lengths: in the zip format inside local
    headers, data.pkl, storages, the central directory and its end record;
    in the legacy format inside each of its pickles and the storage records;
    in safetensors inside the length prefix, the JSON header and the data."""
    cuts_of, name, kwargs = CUTS[fmt]
    data = bases[fmt]
    cuts = cuts_of(data)
    assert len(cuts) > 30
    failures = []
    for cut in cuts:
        try:
            sandbox.refuse_bytes(name, data[:cut], TRUNCATED, **kwargs)
        except AssertionError as exc:
            failures.append(f"cut at {cut} of {len(data)}: {exc}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------
# 2-4. safetensors: lying header lengths, offsets, overlaps
# ---------------------------------------------------------------------------

def _st(header=None, data=H.ST_BASE_DATA, **kwargs):
    return H.safetensors_bytes(H.st_base_header() if header is None else header, data, **kwargs)


def _st_with(**entries):
    header = H.st_base_header()
    header.update(entries)
    return header


_ST_JSON_LENGTH = len(_st()) - 8 - len(H.ST_BASE_DATA)

SAFETENSORS_CASES = [
    # 2. header lengths that lie
    pytest.param(_st(length=len(_st())), r"header", id="length-larger-than-file"),
    pytest.param(_st(length=2**63), r"header", id="length-2**63"),
    pytest.param(_st(length=2**64 - 1), r"header", id="length-2**64-1"),
    pytest.param(_st(length=_ST_JSON_LENGTH - 5), r"header|json", id="length-inside-json"),
    pytest.param(_st(length=0), r"header", id="length-0"),
    pytest.param(_st(length=1), r"header", id="length-1"),
    pytest.param(H.safetensors_bytes(b"not json"), r"header|json", id="header-not-json"),
    pytest.param(H.safetensors_bytes(b"[1, 2, 3]   "), r"header|object|dict",
                 id="header-json-array"),
    pytest.param(H.safetensors_bytes(b'{"\xff": 1}     '), r"header|utf|json",
                 id="header-not-utf8"),
    pytest.param(_st(_st_with(w=5)), r"'w'|\bw\b|entry|tensor", id="entry-not-object"),
    pytest.param(_st(_st_with(w={"shape": [2, 3], "data_offsets": [0, 24]})), r"dtype",
                 id="dtype-missing"),
    pytest.param(_st(_st_with(w=H.st_entry("F33", [2, 3], 0, 24))), r"dtype|F33",
                 id="dtype-unknown"),
    pytest.param(_st(_st_with(w=H.st_entry(5, [2, 3], 0, 24))), r"dtype", id="dtype-int"),
    pytest.param(_st(_st_with(w=H.st_entry("F6_E2M3", [2, 3], 0, 24))), r"dtype|F6_E2M3",
                 id="dtype-unsupported"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", [-2, -3], 0, 24))), r"shape",
                 id="shape-negative"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", [1.5, 4], 0, 24))), r"shape",
                 id="shape-float"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", "2x3", 0, 24))), r"shape", id="shape-str"),
    pytest.param(_st(_st_with(w={"dtype": "F32", "shape": [2, 3], "data_offsets": [0]})),
                 r"data_offsets|offset", id="offsets-one-number"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", [2, 3], "0", "24"))),
                 r"data_offsets|offset", id="offsets-str"),
    # 3. offsets past the end, begin > end, holes
    pytest.param(_st(_st_with(w=H.st_entry("F32", [250], 0, 1000))),
                 r"past the end|offset|buffer|data", id="offsets-past-buffer"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", [6], -24, 0))),
                 r"data_offsets|offset|negative", id="offsets-negative"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", [0], 24, 0))),
                 r"data_offsets|offset|begin|end", id="offsets-begin-after-end"),
    pytest.param(_st(_st_with(w=H.st_entry("F32", [2, 3], 0, 20),
                              b=H.st_entry("I64", [3], 20, 44)), H.ST_BASE_DATA[:44]),
                 r"size|bytes|shape|offset", id="offsets-disagree-with-shape"),
    pytest.param(_st(_st_with(b=H.st_entry("I64", [3], 32, 56)),
                     H.ST_BASE_DATA[:24] + bytes(8) + H.ST_BASE_DATA[24:]),
                 r"hole|gap|cover|offset|unused", id="hole-between-tensors"),
    pytest.param(_st(data=H.ST_BASE_DATA + bytes(8)),
                 r"hole|gap|trailing|extra|cover|offset|unused|buffer", id="hole-at-end"),
    pytest.param(_st(data=H.ST_BASE_DATA[:40]),
                 r"past the end|truncat|offset|buffer|data", id="data-shorter-than-offsets"),
    # 4. overlapping ranges
    pytest.param(_st({"w": H.st_entry("F32", [2, 3], 0, 24), "v": H.st_entry("F32", [6], 0, 24)},
                     H.FLOATS6), r"overlap", id="overlap-same-bytes"),
    pytest.param(_st({"w": H.st_entry("F32", [2, 3], 0, 24), "b": H.st_entry("I64", [3], 16, 40)},
                     H.ST_BASE_DATA[:40]), r"overlap", id="overlap-partial"),
    pytest.param(_st({"big": H.st_entry("F32", [12], 0, 48),
                      "small": H.st_entry("F32", [2], 8, 16)}, H.ST_BASE_DATA),
                 r"overlap", id="overlap-contained"),
    # metadata: str -> str only
    pytest.param(_st(_st_with(__metadata__={"epoch": 3})), r"metadata", id="metadata-int-value"),
    pytest.param(_st(_st_with(__metadata__={"a": {"b": "c"}})), r"metadata",
                 id="metadata-nested"),
    pytest.param(_st(_st_with(__metadata__="x")), r"metadata", id="metadata-not-object"),
]


@pytest.mark.parametrize("data, pattern", SAFETENSORS_CASES)
def test_safetensors_refused(sandbox, data, pattern):
    sandbox.refuse_bytes("case.safetensors", data, pattern)


# ---------------------------------------------------------------------------
# 2. the legacy format: storage counts, keys and headers that lie
# ---------------------------------------------------------------------------

def _legacy_obj(size=(2, 3), numel=6, **kwargs):
    return H.pkl(dct((s("w"), H.tensor("0", numel, size, legacy=True, **kwargs))))


LEGACY_CASES = [
    pytest.param(H.legacy(_legacy_obj(), records=[H.legacy_record(5, H.FLOATS6[:20])]),
                 r"count|size|numel|element|storage|bytes", id="record-count-smaller"),
    pytest.param(H.legacy(_legacy_obj((3,), 3)), r"count|size|numel|element|storage|bytes",
                 id="record-count-larger-than-numel"),
    pytest.param(H.legacy(_legacy_obj(), records=[H.legacy_record(7, H.FLOATS6)]),
                 r"count|size|numel|element|storage|bytes|truncat", id="record-count-past-data"),
    pytest.param(H.legacy(_legacy_obj(), records=[H.legacy_record(-1, H.FLOATS6)]),
                 r"count|size|negative|element|storage", id="record-count-negative"),
    pytest.param(H.legacy(_legacy_obj(), keys=[], records=[]),
                 r"key|storage|missing|never", id="keys-empty"),
    pytest.param(H.legacy(_legacy_obj(), keys=["0", "9"],
                          records=[H.legacy_record(6, H.FLOATS6)] * 2),
                 r"key|storage|'9'|unknown", id="keys-unknown-key"),
    pytest.param(H.legacy(_legacy_obj(), keys_pickle=pickle.dumps(5, protocol=2)),
                 r"key|storage|list", id="keys-not-a-list"),
    pytest.param(H.legacy(_legacy_obj(), magic_pickle=pickle.dumps(12345, protocol=2)),
                 r"magic", id="magic-wrong"),
    pytest.param(H.legacy(_legacy_obj(), protocol_pickle=pickle.dumps(1000, protocol=2)),
                 r"protocol", id="protocol-1000"),
    pytest.param(H.legacy(_legacy_obj(), sys_info_pickle=pickle.dumps([1], protocol=2)),
                 r"sys_info|sys info|system info|header|endian|type_sizes", id="sys-info-list"),
    pytest.param(H.legacy(_legacy_obj(view=tup(s("v"), i(100), i(4)))),
                 r"view|offset|past the end|size", id="view-metadata-past-storage"),
]


@pytest.mark.parametrize("data, pattern", LEGACY_CASES)
def test_legacy_refused(sandbox, data, pattern):
    sandbox.refuse_bytes("case.pt", data, pattern, **LEGACY)


def test_legacy_refuses_mmap(sandbox, bases):
    """mmap=True needs the zip format (torch.load's rule), said in the message."""
    sandbox.refuse_bytes("l.pt", bases["legacy"], r"legacy|zip", mmap=(True,))


# ---------------------------------------------------------------------------
# 6. zip records with absurd names, sizes, headers
# ---------------------------------------------------------------------------

def _zip(*extra, storages=None, replace=None):
    """A hand-built torch zip with ``extra`` entries appended; ``replace``
    maps a record's short name (after 'archive/') to a replacement Entry
    (None drops the record)."""
    entries = H.torch_zip_entries(H.weights_pickle(), storages or {"0": H.FLOATS6},
                                  extra_entries=extra)
    out = []
    for e in entries:
        short = e.name.decode()[len("archive/"):]
        if replace and short in replace:
            if replace[short] is not None:
                out.append(replace[short])
        else:
            out.append(e)
    return out


_PKL = H.weights_pickle()
_PAYLOAD_PKL = H.pkl(dct((s("x"), call(glob("os", "system"), s("echo refused")))))
NAME = r"name|path|record|entry|member"


ZIP_CASES = [
    pytest.param(_zip(H.Entry("archive/" + "n" * 65000, b"x")), NAME + r"|long",
                 id="name-65000-bytes"),
    pytest.param(_zip(H.Entry("../../x", b"x")), NAME + r"|\.\./", id="name-dotdot"),
    pytest.param(_zip(H.Entry("archive/data/../../../x", b"x")), NAME + r"|\.\./",
                 id="name-dotdot-inside-archive"),
    pytest.param(_zip(H.Entry("/tmp/absolute/x", b"x")), NAME + r"|absolute",
                 id="name-absolute"),
    pytest.param(_zip(H.Entry("archive/extra\x00.txt", b"x")), NAME + r"|NUL|\\x00",
                 id="name-nul-extra-record"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl\x00.evil", _PKL)}),
                 NAME + r"|NUL|\\x00", id="name-nul-in-data.pkl"),
    pytest.param(_zip(H.Entry("archive/data.pkl", _PAYLOAD_PKL)),
                 r"more than once|duplicate|twice", id="duplicate-data.pkl"),
    pytest.param(_zip(H.Entry("archive/data/0", bytes(24))),
                 r"more than once|duplicate|twice", id="duplicate-storage"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl", _PKL,
                                                  local_name="archive/data.pkx")}),
                 r"name|header", id="local-name-differs"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl", _PKL, file_size=2**40)}),
                 r"size|declares|bytes", id="data.pkl-declares-2**40-bytes"),
    pytest.param(_zip(replace={"data/0": H.Entry("archive/data/0", H.FLOATS6, file_size=2**40,
                                                 compress_size=2**40)}),
                 r"past the end|size|bytes", id="storage-sizes-2**40"),
    pytest.param(_zip(replace={"data/0": H.Entry("archive/data/0", H.FLOATS6, file_size=2**40)}),
                 r"size|declares|bytes", id="storage-file-size-2**40"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl", _PKL, crc=0x12345678)}),
                 r"crc|checksum", id="data.pkl-bad-crc"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl", _PKL, flags=1)}),
                 r"encrypt", id="data.pkl-encrypted"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl", _PKL, method=12)}),
                 r"compression|method", id="data.pkl-bzip2"),
    pytest.param(_zip(replace={"data/0": H.Entry("archive/data/0", H.FLOATS6, method=99)}),
                 r"compression|method", id="storage-method-99"),
    pytest.param(_zip(replace={"data.pkl": H.Entry("archive/data.pkl", _PKL, method=8,
                                                  file_size=10**9)}),
                 r"deflate|compress|size|declares", id="data.pkl-deflate-claims-1e9"),
    pytest.param(_zip(replace={"data/0": H.Entry("archive/data/0", H.FLOATS6,
                                                 header_offset=10**7)}),
                 r"offset|past the end|header", id="storage-header-offset-past-end"),
    pytest.param(_zip(replace={"data/0": H.Entry("archive/data/0", H.FLOATS6,
                                                 header_offset=0)}),
                 r"header|name|overlap|offset", id="storage-header-is-data.pkl's"),
    pytest.param(_zip(replace={"data.pkl": None}), r"data\.pkl|not a torch|neither",
                 id="no-data.pkl"),
    pytest.param(_zip(replace={"byteorder": H.Entry("archive/byteorder", b"middle")}),
                 r"byteorder|byte order", id="byteorder-junk"),
]


@pytest.mark.parametrize("entries, pattern", ZIP_CASES)
def test_zip_records_refused(sandbox, entries, pattern):
    sandbox.refuse_bytes("case.pt", H.build_zip(entries), pattern)


@pytest.mark.parametrize("kwargs, pattern", [
    pytest.param({"cd_offset": 10**6}, r"zip|central|offset|past the end", id="cd-offset-past-end"),
    pytest.param({"cd_offset": 3}, r"zip|central|offset|header", id="cd-offset-inside-record"),
])
def test_zip_end_record_lies(sandbox, kwargs, pattern):
    sandbox.refuse_bytes("case.pt", H.build_zip(_zip(), **kwargs), pattern)


# ---------------------------------------------------------------------------
# 7. pickles that reach code: refused by name, never executed
# ---------------------------------------------------------------------------

def _payload_cases():
    # the builders need the sandbox's marker and module name: ids only here
    return [p[0] for p in H.payloads("MARKER", "evil")]


def _payload(sandbox, case):
    (_, name, build), = [p for p in H.payloads(sandbox.marker, sandbox.evil) if p[0] == case]
    return name, build


@pytest.mark.parametrize("how", ["GLOBAL", "STACK_GLOBAL"])
@pytest.mark.parametrize("case", _payload_cases())
def test_payload_in_torch_zip(sandbox, case, how):
    pattern, build = _payload(sandbox, case)
    data = H.torch_zip(H.weights_pickle([("x", build(how))], how=how))
    sandbox.refuse_bytes("case.pt", data, pattern)


@pytest.mark.parametrize("how", ["GLOBAL", "STACK_GLOBAL"])
@pytest.mark.parametrize("case", _payload_cases())
def test_payload_in_legacy(sandbox, case, how):
    pattern, build = _payload(sandbox, case)
    data = H.legacy(H.weights_pickle([("x", build(how))], legacy=True, how=how))
    sandbox.refuse_bytes("case.pt", data, pattern, **LEGACY)


@pytest.mark.parametrize("slot", ["magic_pickle", "protocol_pickle", "sys_info_pickle",
                                  "keys_pickle"])
def test_payload_in_legacy_header_pickles(sandbox, slot):
    """Each of the legacy format's other pickles goes through the same
    unpickler (or is compared without unpickling)."""
    evil = H.pkl(call(glob("os", "system"), s(f"touch {sandbox.marker}")))
    data = H.legacy(_legacy_obj(), **{slot: evil})
    sandbox.refuse_bytes("case.pt", data, r"os\.system|posix\.system|magic|protocol|sys_info|"
                                          r"sys info|key", **LEGACY)


def test_bare_pickle_file(sandbox):
    """A file that is nothing but a malicious pickle (what pickle.dump writes)."""
    data = H.pkl(call(glob("os", "system"), s(f"touch {sandbox.marker}")))
    sandbox.refuse_bytes("case.pt", data, r"os\.system|posix\.system|magic|legacy", **LEGACY)


class _Reduces:
    """Pickled by torch.save as os.system(<command>): what a malicious
    checkpoint written with torch itself holds."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_payload_written_by_torch_save(sandbox, legacy):
    import torch
    path = sandbox.files / "case.pt"
    obj = {"w": torch.ones(2), "x": _Reduces(f"touch {sandbox.marker}")}
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    sandbox.refuse(path, r"posix\.system|os\.system", **(LEGACY if legacy else {}))


# ---------------------------------------------------------------------------
# 8. protocol tricks
# ---------------------------------------------------------------------------

def _zip_with(value, how="GLOBAL"):
    return H.torch_zip(H.weights_pickle([("x", value)], how=how))


def _pid(key="0", numel=6):
    return H.storage_pid(key, numel)


_TENSOR_ARGS = (_pid(), i(0), tup(i(2), i(3)), tup(i(3), i(1)), H.false(),
                call(glob("collections", "OrderedDict")))
_REBUILD = r"size|stride|offset|storage|argument|_rebuild_tensor_v2|past the end|negative|shape"

TRICK_CASES = [
    # GLOBAL with a dotted name reaching an attribute of an allowed global
    pytest.param(_zip_with(call(glob("collections", "OrderedDict.__init__"), dct())),
                 r"OrderedDict\.__init__", id="GLOBAL-OrderedDict.__init__"),
    pytest.param(_zip_with(glob("torch._utils", "_rebuild_tensor_v2.__globals__")),
                 r"_rebuild_tensor_v2\.__globals__", id="GLOBAL-_rebuild_tensor_v2.__globals__"),
    pytest.param(_zip_with(glob("torch._utils", "_rebuild_tensor_v2.__globals__", "STACK_GLOBAL"),
                           "STACK_GLOBAL"),
                 r"_rebuild_tensor_v2\.__globals__", id="STACK_GLOBAL-__globals__"),
    pytest.param(_zip_with(glob("collections.OrderedDict", "__init__")),
                 r"OrderedDict\.__init__", id="GLOBAL-dotted-module"),
    pytest.param(_zip_with(call(glob("builtins", "getattr"), glob("collections", "OrderedDict"),
                                s("fromkeys"))),
                 r"builtins\.getattr", id="GLOBAL-builtins-getattr"),
    # allowed callables with hostile arguments
    pytest.param(_zip_with(call(glob("_codecs", "encode"), s("abc"), s("rot13"))),
                 r"_codecs\.encode|codec|latin", id="codecs-rot13"),
    pytest.param(_zip_with(call(glob("_codecs", "encode"), H.b(b"abc"), s("zlib"))),
                 r"_codecs\.encode|codec|latin", id="codecs-zlib"),
    pytest.param(_zip_with(call(glob("_codecs", "encode"), i(1), s("latin1"))),
                 r"_codecs\.encode|codec|latin", id="codecs-int"),
    pytest.param(_zip_with(call(glob("_codecs", "encode"), s("a"), s("latin1"), s("strict"),
                                s("x"))),
                 r"_codecs\.encode|codec|latin|argument", id="codecs-4-args"),
    pytest.param(_zip_with(H.tensor("0", 6, (-1,), (1,))), _REBUILD, id="rebuild-negative-size"),
    pytest.param(_zip_with(H.tensor("0", 6, (2,), (-1,), offset=1)), _REBUILD,
                 id="rebuild-negative-stride"),
    pytest.param(_zip_with(H.tensor("0", 6, (2,), (2**62,))), _REBUILD,
                 id="rebuild-stride-2**62"),
    pytest.param(_zip_with(H.tensor("0", 6, (2,), (2**64,))), _REBUILD,
                 id="rebuild-stride-2**64"),
    pytest.param(_zip_with(H.tensor("0", 6, (2,), (1,), offset=100)), _REBUILD,
                 id="rebuild-offset-past-storage"),
    pytest.param(_zip_with(H.tensor("0", 6, (2,), (1,), offset=-1)), _REBUILD,
                 id="rebuild-offset-negative"),
    pytest.param(_zip_with(H.tensor("0", 6, (3, 3))), _REBUILD, id="rebuild-view-past-storage"),
    pytest.param(_zip_with(H.tensor("0", 6, (2, 3), (1,))), _REBUILD,
                 id="rebuild-stride-rank-differs"),
    pytest.param(_zip_with(H.rebuild_v2(_pid(), 0, s("abc"), tup(i(1)))), _REBUILD,
                 id="rebuild-size-str"),
    pytest.param(_zip_with(H.rebuild_v2(_pid(), 0, tup(s("a")), tup(i(1)))), _REBUILD,
                 id="rebuild-size-of-str"),
    pytest.param(_zip_with(H.rebuild_v2(_pid(), H.f(1.5), (2,), (1,))), _REBUILD,
                 id="rebuild-offset-float"),
    pytest.param(_zip_with(H.rebuild_v2(_pid(), s("0"), (2,), (1,))), _REBUILD,
                 id="rebuild-offset-str"),
    pytest.param(_zip_with(H.rebuild_v2(_pid(), 0, (2,), tup(H.f(1.0)))), _REBUILD,
                 id="rebuild-stride-float"),
    pytest.param(_zip_with(H.rebuild_v2(None, None, None, raw_args=(i(0),) + _TENSOR_ARGS[1:])),
                 _REBUILD, id="rebuild-storage-is-int"),
    pytest.param(_zip_with(H.rebuild_v2(None, None, None, raw_args=_TENSOR_ARGS[:3])),
                 _REBUILD, id="rebuild-3-args"),
    pytest.param(_zip_with(H.rebuild_v2(None, None, None,
                                        raw_args=_TENSOR_ARGS + (none(), none(), none()))),
                 _REBUILD, id="rebuild-9-args"),
    pytest.param(_zip_with(H.rebuild_v2(None, None, None, raw_args=())), _REBUILD,
                 id="rebuild-no-args"),
    pytest.param(_zip_with(call(glob("torch", "Size"), tup(s("a"), s("b")))), r"torch\.Size|int",
                 id="Size-of-str"),
    pytest.param(_zip_with(call(glob("torch", "Size"), tup(H.f(1.5)))), r"torch\.Size|int",
                 id="Size-of-float"),
    pytest.param(_zip_with(call(glob("torch", "Size"), i(5))), r"torch\.Size|int|sequence",
                 id="Size-of-int"),
    pytest.param(_zip_with(call(glob("collections", "OrderedDict"), i(5))), r"OrderedDict",
                 id="OrderedDict-of-int"),
    pytest.param(_zip_with(call(glob("collections", "OrderedDict"), lst(i(1), i(2)))),
                 r"OrderedDict", id="OrderedDict-of-int-list"),
    pytest.param(_zip_with(call(glob("collections", "OrderedDict"), s("ab"))), r"OrderedDict",
                 id="OrderedDict-of-str"),
    pytest.param(_zip_with(call(glob("collections", "Counter"), i(5))), r"Counter",
                 id="Counter-of-int"),
    pytest.param(_zip_with(call(glob("builtins", "complex"), s("x"))), r"complex",
                 id="complex-of-junk"),
    pytest.param(_zip_with(call(glob("builtins", "set"), i(5))), r"\bset\b",
                 id="set-of-int"),
    pytest.param(_zip_with(call(glob("torch", "device"), lst())), r"device",
                 id="device-of-list"),
    pytest.param(_zip_with(call(glob("torch._utils", "_rebuild_parameter"), s("x"), H.false(),
                                call(glob("collections", "OrderedDict")))),
                 r"Parameter|tensor|_rebuild_parameter", id="parameter-of-str"),
    pytest.param(_zip_with(call(glob("torch._tensor", "_rebuild_from_type_v2"),
                                glob("collections", "OrderedDict"), glob("torch", "Tensor"),
                                tup(), dct())),
                 r"rebuild|_rebuild_from_type_v2", id="from_type_v2-func-OrderedDict"),
    pytest.param(_zip_with(call(glob("torch._tensor", "_rebuild_from_type_v2"),
                                glob("torch._utils", "_rebuild_tensor_v2"),
                                glob("collections", "OrderedDict"), tup(*_TENSOR_ARGS), dct())),
                 r"subclass|type|OrderedDict", id="from_type_v2-type-OrderedDict"),
    # BUILD on an array (the tensor stand-in) and on a dict with a non-dict state
    pytest.param(_zip_with(H.tensor("0", 6, (2, 3)) + dct((s("__class__"),
                                                         glob("collections", "OrderedDict")))
                           + pickle.BUILD), r"BUILD|state", id="BUILD-array-__class__"),
    pytest.param(_zip_with(H.tensor("0", 6, (2, 3)) + dct((s("shape"), tup(i(10**12))))
                           + pickle.BUILD), r"BUILD|state", id="BUILD-array-shape"),
    pytest.param(_zip_with(H.tensor("0", 6, (2, 3)) + tup(i(1), tup(i(100)), none(), H.false(),
                                                        H.b(b""))
                           + pickle.BUILD), r"BUILD|state", id="BUILD-array-setstate-tuple"),
    pytest.param(_zip_with(call(glob("collections", "OrderedDict")) + i(5) + pickle.BUILD),
                 r"BUILD|state", id="BUILD-OrderedDict-int-state"),
    # persistent ids that are not torch's storage tuples
    pytest.param(_zip_with(H.persid(s("module"), s("x"))), r"persistent|storage|module",
                 id="pid-module"),
    pytest.param(_zip_with(s("storage") + pickle.BINPERSID), r"persistent|storage",
                 id="pid-str"),
    pytest.param(_zip_with(H.persid(s("storage"))), r"persistent|storage", id="pid-1-item"),
    pytest.param(_zip_with(H.persid(s("storage"), glob("torch", "FloatStorage"), s("0"),
                                    s("cpu"))), r"persistent|storage", id="pid-no-numel"),
    pytest.param(_zip_with(H.rebuild_v2(H.persid(s("storage"), glob("collections", "OrderedDict"),
                                                 s("0"), s("cpu"), i(6)), 0, (2, 3))),
                 r"storage", id="pid-type-OrderedDict"),
    pytest.param(_zip_with(H.rebuild_v2(H.persid(s("storage"), s("FloatStorage"), s("0"),
                                                 s("cpu"), i(6)), 0, (2, 3))),
                 r"storage", id="pid-type-str"),
    pytest.param(_zip_with(H.rebuild_v2(H.persid(s("storage"), glob("torch", "FloatStorage"),
                                                 i(0), s("cpu"), i(6)), 0, (2, 3))),
                 r"key|storage", id="pid-key-int"),
    pytest.param(_zip_with(H.tensor("0", -1, (0,))), r"numel|size|negative|storage",
                 id="pid-numel-negative"),
    pytest.param(_zip_with(H.tensor("7", 6, (2, 3))), r"data/7|'7'|missing|no record|storage",
                 id="pid-key-without-record"),
    pytest.param(H.torch_zip(_PKL, {"0": H.FLOATS6[:20]}),
                 r"size|bytes|storage|numel|truncat", id="record-smaller-than-numel"),
    pytest.param(H.torch_zip(_PKL, {"0": b""}), r"size|bytes|storage|numel|truncat",
                 id="record-empty"),
]


@pytest.mark.parametrize("data, pattern", TRICK_CASES)
def test_protocol_tricks_refused(sandbox, data, pattern):
    sandbox.refuse_bytes("case.pt", data, pattern)


def _opcode_pickle(marker, opcode):
    touch = f"touch {marker}"
    body = {
        "INST": pickle.MARK + s(touch) + pickle.INST + b"os\nsystem\n",
        "OBJ": pickle.MARK + glob("os", "system") + s(touch) + pickle.OBJ,
        "EXT1": pickle.EXT1 + b"\x01",
        "EXT2": pickle.EXT2 + b"\x01\x00",
        "EXT4": pickle.EXT4 + b"\x01\x00\x00\x00",
        "NEWOBJ_EX": glob("collections", "OrderedDict") + tup() + dct() + pickle.NEWOBJ_EX,
        "PERSID": pickle.PERSID + b"0\n",
        "NEXT_BUFFER": pickle.NEXT_BUFFER,
        "READONLY_BUFFER": H.b(b"ab") + pickle.READONLY_BUFFER,
    }[opcode]
    protocol = {"NEWOBJ_EX": 4, "NEXT_BUFFER": 5, "READONLY_BUFFER": 5}.get(opcode, 2)
    return H.pkl(dct((s("w"), H.tensor("0", 6, (2, 3))), (s("x"), body)), protocol)


OPCODES = ["INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEWOBJ_EX", "PERSID", "NEXT_BUFFER",
           "READONLY_BUFFER"]


@pytest.mark.parametrize("opcode", OPCODES)
def test_refused_opcode_in_torch_zip(sandbox, opcode):
    data = H.torch_zip(_opcode_pickle(sandbox.marker, opcode))
    sandbox.refuse_bytes("case.pt", data, rf"\b{opcode}\b")


@pytest.mark.parametrize("opcode", ["INST", "OBJ", "PERSID"])
def test_refused_opcode_in_legacy(sandbox, opcode):
    body = _opcode_pickle(sandbox.marker, opcode).replace(
        H.storage_pid("0", 6), H.storage_pid("0", 6, legacy=True))
    sandbox.refuse_bytes("case.pt", H.legacy(body), rf"\b{opcode}\b", **LEGACY)


REBUILDS = [("_rebuild_qtensor", "quantized"), ("_rebuild_sparse_tensor", "sparse"),
            ("_rebuild_sparse_csr_tensor", "sparse"), ("_rebuild_nested_tensor", "nested"),
            ("_rebuild_meta_tensor_no_storage", "meta"),
            ("_rebuild_wrapper_subclass", "subclass|wrapper"),
            ("_rebuild_device_tensor_from_numpy", "numpy|device")]


@pytest.mark.parametrize("name, kind", REBUILDS, ids=[r[0] for r in REBUILDS])
def test_unsupported_rebuild_refused_by_name(sandbox, name, kind):
    data = _zip_with(call(glob("torch._utils", name), *_TENSOR_ARGS))
    sandbox.refuse_bytes("case.pt", data, rf"torch\._utils\.{name}|{kind}")


@pytest.mark.parametrize("storage_type", ["QInt8Storage", "QUInt8Storage", "QInt32Storage"])
def test_quantized_storage_refused(sandbox, storage_type):
    data = _zip_with(H.tensor("0", 6, (6,), storage_type=storage_type))
    sandbox.refuse_bytes("case.pt", data, rf"torch\.{storage_type}|quantized")


def _torch_written(kind):
    import torch
    x = torch.arange(4, dtype=torch.float32).reshape(2, 2)
    return {
        "quantized": lambda: torch.quantize_per_tensor(x, 0.5, 0, torch.qint8),
        "quantized-per-channel": lambda: torch.quantize_per_channel(
            x, torch.tensor([0.5, 1.0]), torch.tensor([0, 0]), 0, torch.quint8),
        "sparse": lambda: torch.ones(2, 2).to_sparse(),
        "sparse-csr": lambda: torch.ones(2, 2).to_sparse_csr(),
        "nested": lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        "meta": lambda: torch.empty(2, 2, device="meta"),
    }[kind]()


# torch warns that these tensor kinds are prototype or deprecated while writing them
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("kind, pattern", [
    ("quantized", r"quantized"), ("quantized-per-channel", r"quantized"), ("sparse", r"sparse"),
    ("sparse-csr", r"sparse"), ("nested", r"nested"), ("meta", r"meta")])
def test_torch_written_unsupported_tensors(sandbox, kind, pattern, legacy):
    """Written by torch.save itself: refused naming the kind of tensor."""
    import torch
    path = sandbox.files / "case.pt"
    torch.save({"t": _torch_written(kind)}, path, _use_new_zipfile_serialization=not legacy)
    sandbox.refuse(path, pattern, **(LEGACY if legacy else {}))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_whole_module_refused_naming_its_class(sandbox, legacy):
    import torch
    path = sandbox.files / "case.pt"
    torch.save(torch.nn.Linear(2, 2), path, _use_new_zipfile_serialization=not legacy)
    sandbox.refuse(path, r"torch\.nn\.modules\.linear\.Linear", **(LEGACY if legacy else {}))


# ---------------------------------------------------------------------------
# 9. TorchScript
# ---------------------------------------------------------------------------

# torch deprecates torch.jit.script and torch.jit.save, which write the archive
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_refused(sandbox):
    import torch
    path = sandbox.files / "case.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    sandbox.refuse(path, r"TorchScript|torch\.jit")


# ---------------------------------------------------------------------------
# .npz members
# ---------------------------------------------------------------------------

def _npz(header, data=H.FLOATS6, name="w.npy", **kwargs):
    return H.npz_bytes({name: H.npy_bytes(header, data, **kwargs)})


def _object_payload(marker):
    return pickle.PROTO + b"\x02" + glob("os", "system") + s(f"touch {marker}") + \
        pickle.TUPLE1 + pickle.REDUCE + pickle.STOP


NPZ_CASES = [
    pytest.param(lambda m: _npz(H.npy_header("|O", (1,)), _object_payload(m)),
                 r"object|pickle", id="object-dtype-pickle-payload"),
    pytest.param(lambda m: _npz("{'descr': __import__('os').system('touch %s'), "
                                "'fortran_order': False, 'shape': (1,), }" % m),
                 r"header|descr|literal", id="header-not-a-literal"),
    pytest.param(lambda m: _npz(H.npy_header(), magic=b"\x93NUMPX"), r"magic|npy|not",
                 id="bad-magic"),
    pytest.param(lambda m: _npz(H.npy_header(), version=(9, 0)), r"version", id="version-9"),
    pytest.param(lambda m: _npz(H.npy_header("<x9")), r"descr|dtype", id="descr-unknown"),
    pytest.param(lambda m: _npz(H.npy_header("<f4", (-1,))), r"shape", id="shape-negative"),
    pytest.param(lambda m: _npz(H.npy_header("<f4", ("a",))), r"shape", id="shape-str"),
    pytest.param(lambda m: _npz(H.npy_header(), H.FLOATS6[:20]),
                 r"truncat|size|bytes|past the end|short", id="data-shorter-than-shape"),
    pytest.param(lambda m: _npz("{'descr': '<f4', 'fortran_order': 'yes', 'shape': (2, 3), }"),
                 r"fortran", id="fortran-order-str"),
    pytest.param(lambda m: _npz("{'descr': [('a', '<f4')], 'fortran_order': False, "
                                "'shape': (6,), }"),
                 r"descr|dtype|structured|field", id="structured-dtype"),
    pytest.param(lambda m: _npz(H.npy_header(), name="../../x.npy"),
                 r"name|path|member|\.\./", id="member-name-dotdot"),
]


@pytest.mark.parametrize("build, pattern", NPZ_CASES)
def test_npz_refused(sandbox, build, pattern):
    sandbox.refuse_bytes("case.npz", build(sandbox.marker), pattern)


# ---------------------------------------------------------------------------
# 5. huge declared sizes: fail fast, allocate nothing (in a capped subprocess)
# ---------------------------------------------------------------------------

_CHILD = textwrap.dedent(r'''
    import json, resource, sys, time
    import skipblocks as sb

    def vm_size():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    # the address space may grow by 1 GiB past what the interpreter uses now
    limit = vm_size() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = []
    for mmap in json.loads(sys.argv[2]):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            sb.load(sys.argv[1], mmap=mmap)
            outcome, message = "returned", ""
        except sb.WeightsFileError as exc:
            outcome, message = "WeightsFileError", str(exc)
        except BaseException as exc:
            outcome, message = type(exc).__name__, repr(exc)[:500]
        results.append({"mmap": mmap, "outcome": outcome, "message": message,
                        "seconds": time.perf_counter() - start,
                        "rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss})
    print(json.dumps(results))
''')

_ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
            PYTHONPATH=os.pathsep.join(
                [os.path.dirname(os.path.dirname(os.path.abspath(sb.__file__)))]
                + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def refuse_in_capped_process(path, pattern, *, mmap=(False, True), allow_return=False):
    """Loads ``path`` in a subprocess capped at 1 GiB of extra address space;
    asserts WeightsFileError matching ``pattern`` (and not an allocation
    failure wrapped in it) -- or, with ``allow_return``, a returned object --
    in under 5 s, with peak RSS growing by less than 64 MiB."""
    before = Path(path).read_bytes()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), json.dumps(list(mmap))],
                          capture_output=True, text=True, timeout=60, env=_ENV)
    assert proc.returncode == 0, f"the loading process died ({proc.returncode}): {proc.stderr}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for r in results:
        print(f"[mmap={r['mmap']}] {r['outcome']}: {r['message']} ({r['seconds']:.3f} s, "
              f"+{r['rss_growth_kb']} KiB peak RSS)")
    for r in results:
        where = f"load(mmap={r['mmap']})"
        assert r["seconds"] < 5, f"{where} took {r['seconds']:.1f} s"
        assert r["rss_growth_kb"] < 64 * 1024, f"{where} grew RSS by {r['rss_growth_kb']} KiB"
        if allow_return and r["outcome"] == "returned":
            continue
        assert r["outcome"] == "WeightsFileError", f"{where}: {r['outcome']}: {r['message']}"
        detail = r["message"][len(str(path)):]
        assert r["message"].startswith(str(path)), r["message"]
        assert not re.search(r"MemoryError|cannot allocate|Unable to allocate", detail), \
            f"{where} tried to allocate what the file declares: {detail}"
        assert re.search(pattern, detail, re.IGNORECASE), \
            f"{where}: message {detail!r} does not name the problem ({pattern!r})"
    assert Path(path).read_bytes() == before


HUGE = r"size|elements|past the end|bytes|large|numel|shape|storage|offset|holds"
_BIG = [2**40, 2**40]


def _huge_cases():
    return [
        # torch zip: numel in the persistent id and the size of the view
        ("zip-numel-2**40", "case.pt",
         lambda: _zip_with(H.tensor("0", 2**40, (2**40,))), HUGE, {}),
        ("zip-numel-2**62", "case.pt",
         lambda: _zip_with(H.tensor("0", 2**62, (2**62,))), HUGE, {}),
        ("zip-size-2**40x2**40", "case.pt",
         lambda: _zip_with(H.tensor("0", 6, (2**40, 2**40), (2**40, 1))), HUGE, {}),
        ("zip-size-1e12", "case.pt",
         lambda: _zip_with(H.tensor("0", 10**12, (10**12,))), HUGE, {}),
        # legacy: numel and the record's element count
        ("legacy-numel-2**40", "case.pt",
         lambda: H.legacy(_legacy_obj((2**40,), 2**40),
                          records=[H.legacy_record(2**40, H.FLOATS6)]), HUGE, LEGACY),
        ("legacy-record-count-2**62", "case.pt",
         lambda: H.legacy(_legacy_obj(), records=[H.legacy_record(2**62, H.FLOATS6)]),
         HUGE + r"|count", LEGACY),
        # safetensors
        ("safetensors-2**40x2**40", "case.safetensors",
         lambda: _st({"w": H.st_entry("F32", _BIG, 0, 8)}, bytes(8)), HUGE, {}),
        ("safetensors-1e12-offsets-8", "case.safetensors",
         lambda: _st({"w": H.st_entry("F32", [10**12], 0, 8)}, bytes(8)), HUGE, {}),
        ("safetensors-1e12-offsets-4e12", "case.safetensors",
         lambda: _st({"w": H.st_entry("F32", [10**12], 0, 4 * 10**12)}, bytes(8)), HUGE, {}),
        # npz: the .npy header's shape
        ("npz-2**40x2**40", "case.npz",
         lambda: _npz(H.npy_header("<f4", tuple(_BIG)), bytes(8)), HUGE, {}),
        ("npz-1e12", "case.npz", lambda: _npz(H.npy_header("<f4", (10**12,)), bytes(8)),
         HUGE, {}),
        # pickles that ask for memory
        ("bytearray-2**40", "case.pt",
         lambda: _zip_with(call(glob("builtins", "bytearray"), i(2**40))), r"bytearray", {}),
        ("bytearray-2**31", "case.pt",
         lambda: _zip_with(call(glob("builtins", "bytearray"), i(2**31))), r"bytearray", {}),
        ("memo-index-2**28", "case.pt",
         lambda: _zip_with(s("x") + pickle.LONG_BINPUT + struct.pack("<I", 2**28)),
         r"memo|BINPUT|pickle", {}),
        ("frame-2**60", "case.pt",
         lambda: H.torch_zip(H.proto(4) + pickle.FRAME + struct.pack("<Q", 2**60)
                             + H.weights_pickle()[2:]), r"frame|truncat|pickle", {}),
        ("binunicode8-2**40", "case.pt",
         lambda: H.torch_zip(H.proto(4) + pickle.BINUNICODE8 + struct.pack("<Q", 2**40) + b"ab"
                             + pickle.STOP), r"truncat|pickle|string|bytes", {}),
        ("binbytes8-2**40", "case.pt",
         lambda: H.torch_zip(H.proto(4) + pickle.BINBYTES8 + struct.pack("<Q", 2**40) + b"ab"
                             + pickle.STOP), r"truncat|pickle|string|bytes", {}),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _huge_cases()])
def test_huge_declared_size(sandbox, case):
    (_, name, build, pattern, kwargs), = [c for c in _huge_cases() if c[0] == case]
    path = sandbox.write(name, build())
    assert path.stat().st_size < 4096
    refuse_in_capped_process(path, pattern, **kwargs)


_GIB = 1 << 30


@pytest.fixture(scope="module")
def zero_bomb():
    return H.zero_deflate_bomb(_GIB)


def _npz_bomb(header_shape, declared):
    """An .npz member whose .npy header says ``header_shape`` float32 and whose
    deflate stream inflates to that header plus 1 GiB of zeros; the record
    declares ``declared`` bytes (None: the true size)."""
    npy_head = H.npy_bytes(H.npy_header("<f4", header_shape))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(npy_head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    stream = first + block * 1024 + c.flush()
    size = len(npy_head) + _GIB
    if declared is None:
        crc, chunk = zlib.crc32(npy_head), bytes(1 << 20)
        for _ in range(1024):
            crc = zlib.crc32(chunk, crc)
    else:
        # the CRC of the bytes the record declares, so only the sizes lie
        crc = zlib.crc32((npy_head + bytes(declared))[:declared])
    entry = H.Entry("w.npy", b"", method=8, payload=stream, crc=crc,
                    file_size=size if declared is None else declared, align=False)
    return H.build_zip([entry], alignment=0)


@pytest.mark.parametrize("case", ["zip-storage-honest-1GiB", "zip-storage-numel-6",
                                  "npz-header-8-record-1GiB", "npz-header-1GiB-record-small"])
def test_deflate_bomb(sandbox, zero_bomb, case):
    """Deflated members of about 1 MiB that inflate to 1 GiB of zeros."""
    stream, crc = zero_bomb
    if case.startswith("zip"):
        numel = _GIB // 4 if case == "zip-storage-honest-1GiB" else 6
        entries = H.torch_zip_entries(H.weights_pickle([("big", H.tensor("1", numel, (numel,)))]),
                                      {"0": H.FLOATS6})
        entries.insert(5, H.Entry("archive/data/1", b"", method=8, payload=stream, crc=crc,
                                  file_size=_GIB))
        data, name = H.build_zip(entries), "case.pt"
    elif case == "npz-header-8-record-1GiB":
        data, name = _npz_bomb((8,), None), "case.npz"
    else:
        data, name = _npz_bomb((_GIB // 4,), 1024), "case.npz"
    path = sandbox.write(name, data)
    assert path.stat().st_size < 2 * 2**20
    refuse_in_capped_process(path, r"deflate|compress|size|bytes|declares|past the end|"
                                   r"truncat|large")


def _laughs(levels, leaf):
    """A pickle of nested lists in which each level holds the level below
    twice, through the memo: ``levels`` levels of a few bytes each describe
    2**levels references to ``leaf``. Whatever walks the result without
    remembering what it has visited takes 2**levels steps."""
    memo = lambda op, k: op + struct.pack("<I", k)  # noqa: E731
    body = leaf + memo(pickle.LONG_BINPUT, 0) + pickle.POP
    for k in range(1, levels + 1):
        below = memo(pickle.LONG_BINGET, k - 1)
        body += pickle.EMPTY_LIST + pickle.MARK + below + below + pickle.APPENDS \
            + memo(pickle.LONG_BINPUT, k) + pickle.POP
    return body + memo(pickle.LONG_BINGET, levels)


@pytest.mark.parametrize("leaf", ["list", "tensor"])
def test_shared_references_exponential_graph(sandbox, leaf):
    """A few hundred bytes whose object graph has 2**60 paths (a pickle
    "billion laughs"): load returns the shared structure or refuses it,
    fast, without walking every path or copying per reference."""
    leaf_ops = pickle.EMPTY_LIST if leaf == "list" else H.tensor("0", 6, (2, 3))
    path = sandbox.write("case.pt", _zip_with(_laughs(60, leaf_ops)))
    refuse_in_capped_process(path, r"nest|deep|depth|shared|refer", allow_return=True)


@pytest.mark.parametrize("kind", ["list", "dict", "tuple"])
def test_deeply_nested_pickle(sandbox, kind):
    """Containers nested 100000 deep: refused naming the nesting, not a
    crash of the interpreter's stack."""
    n = 100000
    body = {"list": pickle.EMPTY_LIST * n + pickle.APPEND * (n - 1),
            "dict": (pickle.EMPTY_DICT + s("k")) * (n - 1) + pickle.EMPTY_DICT
            + pickle.SETITEM * (n - 1),
            "tuple": pickle.MARK * n + pickle.TUPLE * n}[kind]
    sandbox.refuse_bytes("case.pt", _zip_with(body), r"nest|deep|depth|recursion")


# ---------------------------------------------------------------------------
# 10. the input file is never modified; nothing is written
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["zip", "safetensors", "npz"])
def test_mmap_writes_do_not_reach_the_file(sandbox, bases, fmt):
    """mmap=True maps the file copy-on-write: writing into the returned
    arrays changes neither the file nor a later load."""
    name = {"zip": "m.pt", "safetensors": "m.safetensors", "npz": "m.npz"}[fmt]
    path = sandbox.write(name, bases[fmt])
    listing = sorted(p.name for p in sandbox.files.iterdir())
    obj = sb.load(path, mmap=True)
    arrays = [v for v in (obj["state_dict"].values() if fmt == "zip" else obj.values())]
    assert arrays and all(isinstance(a, np.ndarray) for a in arrays)
    for a in arrays:
        if a.flags.writeable:
            a[...] = 1
        else:
            with pytest.raises(ValueError):
                a[...] = 1
    del obj, arrays
    assert path.read_bytes() == bases[fmt]
    again = sb.load(path)
    first = again["state_dict"]["bias"] if fmt == "zip" else again["w"]
    assert not np.all(first == 1)
    assert sorted(p.name for p in sandbox.files.iterdir()) == listing


def test_refused_load_of_read_only_file(sandbox):
    """A refused file that is read-only stays read-only and unchanged (mode
    and bytes); nothing is written beside it."""
    path = sandbox.write("ro.pt", _zip_with(call(glob("os", "system"), s("true"))))
    path.chmod(0o444)
    try:
        sandbox.refuse(path, r"os\.system")
        assert (path.stat().st_mode & 0o777) == 0o444
    finally:
        path.chmod(0o644)
