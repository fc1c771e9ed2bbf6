"""What a pickle may do to objects it has built, and what a small file may
make the reader do: the review's attacks, each refused or harmless.

* BUILD may set only a state_dict's ``_metadata`` (an OrderedDict's
  ``__dict__``): not the attributes of a storage (which would let a view
  read past its buffer) nor of a stand-in function or class (which would
  change every later load).
* A container the pickle's memo shares 2**40 times is visited once.
* torch's neg bit on a broadcast view stays a view (no materialised copy).
* Zip records that overlap (a deflate stream quoting later headers) are
  refused; npz members that map to one name are refused.
* ``inspect`` never sends a file's control characters to the terminal.
"""
import io
import struct
import time
import zipfile
from contextlib import redirect_stdout

import numpy as np
import pytest

import skipblocks as sb
from skipblocks.__main__ import main as cli_main


def _s(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _g(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _i(n):
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


def _pid(key, numel, storage="FloatStorage"):
    return b"(" + _s("storage") + _g("torch", storage) + _s(key) + _s("cpu") + _i(numel) + b"tQ"


def _tensor(pid, offset, size, stride, metadata=b""):
    return (_g("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + _i(offset)
            + b"(" + b"".join(map(_i, size)) + b"t(" + b"".join(map(_i, stride)) + b"t\x89"
            + _g("collections", "OrderedDict") + b")R" + metadata + b"tR")


def _torch_zip(path, body, storages=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + body + b".")
        archive.writestr("archive/byteorder", b"little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", b"3\n")


def test_build_on_a_storage_is_refused(tmp_path):
    """Setting a storage's cached elements to a (K, 0) view would let the
    next tensor's bounds check pass and read K bytes of foreign memory."""
    pid = _pid("0", 16, "ByteStorage")
    body = (b"](" + _tensor(pid, 0, (4096, 0), (1, 1)) + b"q\x01" + pid + b"}" + _s("_elements")
            + b"}" + _s("uint8") + b"h\x01ssb0" + _tensor(pid, 0, (2, 4096), (0, 1)) + b"e")
    _torch_zip(tmp_path / "oob.pt", body, {"0": b"A" * 16})
    with pytest.raises(sb.WeightsFileError, match="BUILD on a Storage"):
        sb.load(tmp_path / "oob.pt")


@pytest.mark.parametrize("target", [("torch._utils", "_rebuild_tensor_v2"),
                                    ("torch.nn.parameter", "Parameter"),
                                    ("collections", "Counter")])
def test_build_on_a_stand_in_is_refused_and_later_loads_are_unchanged(tmp_path, target):
    # BUILD with a (None, slotstate) state would setattr on the stand-in
    body = (_g(*target) + b"N}(" + _s("__defaults__") + b"(\x89N}(" + _s("neg") + b"\x88ut"
            + b"u\x86b0N")
    _torch_zip(tmp_path / "patch.pt", body)
    with pytest.raises(sb.WeightsFileError, match="BUILD on a"):
        sb.load(tmp_path / "patch.pt")
    good = tmp_path / "good.pt"
    sb.save({"w": np.arange(4, dtype=np.float32)}, good)
    assert np.array_equal(sb.load(good)["w"], np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("opcode, target", [(b"a", b"}"), (b"s", b"]")])
def test_append_and_setitem_only_on_lists_and_dicts(tmp_path, opcode, target):
    # APPEND onto a dict, SETITEM onto a list: torch refuses both
    body = target + (_s("k") + _s("v") if opcode == b"s" else _s("v")) + opcode
    _torch_zip(tmp_path / "op.pt", body)
    with pytest.raises(sb.WeightsFileError, match="not allowed"):
        sb.load(tmp_path / "op.pt")


def test_a_storage_inside_a_set_is_refused(tmp_path):
    body = _g("__builtin__", "set") + b"](" + _pid("0", 1) + b"e\x85R"
    _torch_zip(tmp_path / "set.pt", body, {"0": bytes(4)})
    with pytest.raises(sb.WeightsFileError, match="unhashable"):
        sb.load(tmp_path / "set.pt")


def test_a_memo_shared_container_is_visited_once(tmp_path):
    """40 lists, each holding the previous one twice: 2**40 paths through a
    1 KB file. A reader that walked every path would not finish."""
    body = b"]r" + struct.pack("<I", 0)
    for k in range(40):
        body += (b"](j" + struct.pack("<I", k) + b"j" + struct.pack("<I", k) + b"er"
                 + struct.pack("<I", k + 1))
    _torch_zip(tmp_path / "dag.pt", body)
    start = time.perf_counter()
    result = sb.load(tmp_path / "dag.pt")
    assert time.perf_counter() - start < 30        # a generous bound: walking every path takes years
    assert result[0] is result[1]
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["inspect", str(tmp_path / "dag.pt")]) == 0
    assert "the same object as" in out.getvalue()


def test_neg_bit_on_a_broadcast_view_stays_a_view(tmp_path):
    """A stride-0 view of one element with torch's neg bit: 4 GiB if
    materialised; a view of the negated storage instead."""
    metadata = b"}(" + _s("neg") + b"\x88u"
    body = _tensor(_pid("0", 1), 0, (65536, 16384), (0, 0), metadata)
    _torch_zip(tmp_path / "neg.pt", body, {"0": np.float32(1.5).tobytes()})
    result = sb.load(tmp_path / "neg.pt")
    assert result.shape == (65536, 16384) and result.strides == (0, 0)
    assert result[0, 0] == -1.5 and result[-1, -1] == -1.5


def test_overlapping_zip_records_are_refused(tmp_path):
    """Two central-directory entries whose records share bytes."""
    path = tmp_path / "overlap.pt"
    sb.save({"w": np.arange(4, dtype=np.float32)}, path)
    data = bytearray(path.read_bytes())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    infos = {info.filename.split("/", 1)[1]: info for info in archive.infolist()}
    # make the storage record claim 64 more compressed bytes, reaching into the next record
    end_of_central = data.rfind(b"PK\x05\x06")
    central = struct.unpack("<I", data[end_of_central + 16:end_of_central + 20])[0]
    position = central
    while data[position:position + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack(
            "<HHH", data[position + 28:position + 34])
        name = data[position + 46:position + 46 + name_length].decode()
        if name.endswith("data/0"):
            size = infos["data/0"].compress_size + 64
            data[position + 20:position + 28] = struct.pack("<II", size, size)
            offset = infos["data/0"].header_offset
            data[offset + 18:offset + 26] = struct.pack("<II", size, size)
        position += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(data))
    with pytest.raises(sb.WeightsFileError, match="overlaps"):
        sb.load(path)


def test_npz_members_that_map_to_one_name_are_refused(tmp_path):
    path = tmp_path / "twice.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("a.npy", "a"):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ones(2))
            archive.writestr(name, buffer.getvalue())
    with pytest.raises(sb.WeightsFileError, match="second member named 'a'"):
        sb.load(path)


def test_inspect_escapes_control_characters(tmp_path):
    path = tmp_path / "esc.safetensors"
    sb.save({"w\x1b[2J\x1b[31mOK": np.ones(2, np.float32)}, path, metadata={"k\x07": "v\x1b"})
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["inspect", str(path)]) == 0
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert "\\x1b[2J" in out.getvalue()
