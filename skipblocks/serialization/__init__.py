"""Weight files without torch: torch's ``.pt``/``.pth`` (zip and legacy
formats), ``.safetensors`` and ``.npz``, read safely and written.

Security model: a torch file is a pickle, and unpickling runs the functions
a pickle names, so skipblocks never unpickles with Python's defaults. Its
unpickler (``torch_pickle``) allows only the globals torch 2.13's
weights-only loader allows, each replaced by a skipblocks function that
builds NumPy arrays and plain Python objects; everything else is refused by
name, and sizes declared in any file are checked against the file before
anything is allocated. A file that breaks a rule raises WeightsFileError;
nothing in it is executed.

Modules: ``torch_pickle`` (the allow-listed unpickler), ``torch_format``
(torch's zip and legacy layouts), ``safetensors_format``, ``npz_format``,
``_zip`` (zip records, size-checked), ``_common`` (dtypes, decoders, the
error), ``cli`` (``python -m skipblocks inspect`` / ``convert``).
"""
import contextlib
import os
import re
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ._common import FileProblem, RawTensor, WeightsFileError
from . import npz_format, safetensors_format, torch_format
from ._zip import open_archive

__all__ = ["load", "save", "state_dict_from", "read_metadata", "WeightsFileError"]

TORCH_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt")
_FORMAT_OF_EXTENSION = {**{ext: "torch" for ext in TORCH_EXTENSIONS},
                        ".safetensors": "safetensors", ".npz": "npz"}


def _describe(path):
    return os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else repr(path)


def _extension(path):
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.path.splitext(os.fsdecode(path))[1].lower()
    return ""


def _detect(fileobj, extension):
    """The format of an open file, from its first bytes."""
    fileobj.seek(0)
    head = fileobj.read(512)
    fileobj.seek(0)
    if not head:
        raise FileProblem("the file is empty")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        names = open_archive(fileobj, "zip archive").namelist()
        fileobj.seek(0)
        if any(name.endswith(("/data.pkl", "/constants.pkl")) for name in names):
            return "torch-zip"
        if extension == ".npz" or (names and all(n.endswith(".npy") for n in names)):
            return "npz"
        if extension in TORCH_EXTENSIONS:
            return "torch-zip"
        raise FileProblem("a zip archive that is neither a torch file (no '<archive>/data.pkl') "
                          "nor an .npz (members are not .npy)")
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "torch-legacy"
    if head[257:262] == b"ustar":
        raise FileProblem("a tar archive: torch's pre-0.4 tar format, which torch's own "
                          "weights-only loader refuses too, is not read")
    if extension == ".safetensors":
        return "safetensors"     # its reader names what is wrong with the header
    raise FileProblem(f"not a torch, safetensors or npz file (it starts with {head[:8]!r})")


@contextlib.contextmanager
def _opened(path):
    """The open file (a path is opened and closed here); any error a
    malformed file causes becomes WeightsFileError naming the file."""
    name = _describe(path)
    opened = isinstance(path, (str, bytes, os.PathLike))
    if not opened and not (hasattr(path, "seekable") and path.seekable()):
        raise ValueError("load needs a path or a seekable binary file object")
    fileobj = open(path, "rb") if opened else path
    try:
        yield fileobj
    except FileProblem as exc:
        raise WeightsFileError(f"{name}: {exc}") from None
    except Exception as exc:     # zipfile, struct and numpy's header parser on a corrupt file
        raise WeightsFileError(f"{name}: malformed file ({type(exc).__name__}: {exc})") from None
    finally:
        if opened:
            fileobj.close()


def _read(path, *, mmap=False, keep_bits=False):
    """(format, object, safetensors metadata) of a file. ``mmap="auto"``:
    map the file where its format allows (a path, not the legacy format)."""
    is_path = isinstance(path, (str, bytes, os.PathLike))
    if mmap is True and not is_path:
        raise ValueError("mmap=True needs a path, not a file object")
    with _opened(path) as fileobj:
        fmt = _detect(fileobj, _extension(path))
        if mmap == "auto":
            mmap = is_path and fmt != "torch-legacy"
        mapped = None
        if mmap:
            if fmt == "torch-legacy":
                raise FileProblem("mmap=True needs a file in torch's zip format (torch.save "
                                  "since torch 1.6); this file is in the legacy format, as "
                                  "torch.load(mmap=True) also says")
            mapped = np.memmap(path, dtype=np.uint8, mode="c").view(np.ndarray)
        metadata = {}
        if fmt == "torch-zip":
            obj = torch_format.read_zip(fileobj, mmap_array=mapped, keep_bits=keep_bits)
        elif fmt == "torch-legacy":
            obj = torch_format.read_legacy(fileobj, keep_bits=keep_bits)
        elif fmt == "safetensors":
            obj, metadata = safetensors_format.read(fileobj, mmap_array=mapped,
                                                    keep_bits=keep_bits)
        else:
            obj = npz_format.read(fileobj, mmap_array=mapped)
        return fmt, obj, metadata


def load(path, *, mmap=False):
    """Reads a weight file and returns the object it holds, without torch.

    Formats, recognised by the file's first bytes:

    * torch's ``.pt`` / ``.pth`` (``torch.save``), the zip format of torch
      1.6+ and the legacy format before it: the pickled object comes back
      whole (a state_dict, or a checkpoint such as ``{"epoch": 3,
      "state_dict": ...}``). Tensors become NumPy arrays of the stored dtype
      (float16 stays float16) in host memory; views keep their offsets and
      strides, and tensors that view one storage share its memory. dicts,
      OrderedDicts, lists, tuples, sets, strings and numbers come back as
      those Python objects.
    * ``.safetensors``: an ``OrderedDict`` of name -> array, in the file's
      order (the file's ``__metadata__``:
      ``skipblocks.serialization.read_metadata``).
    * ``.npz``: an ``OrderedDict`` of name -> array (object arrays are
      refused: they need pickle).

    NumPy has no bfloat16 or float8: those tensors are decoded to float32
    (exactly: float32 holds all their values), complex32 to complex64.

    Files are hostile input: only the data types torch's own
    ``weights_only=True`` loader allows are read, nothing in a file is ever
    executed, and every declared size is checked against the file before
    memory is allocated. Anything else raises :class:`WeightsFileError`,
    naming what was wrong.

    Args:
        path: a path, or a seekable binary file object (read from its start).
        mmap: map the file into memory (copy-on-write) instead of reading
            it: tensors are views of the map, read from disk as they are
            used. Needs a path; for torch files, the zip format (as
            ``torch.load(mmap=True)``). Without it, tensors are read one at
            a time as the file refers to them.
    """
    return _read(path, mmap=mmap)[1]


def read_metadata(path):
    """The ``__metadata__`` dict (str -> str) of a ``.safetensors`` file;
    ``{}`` for a file without one and for the other formats."""
    with _opened(path) as fileobj:
        if _detect(fileobj, _extension(path)) != "safetensors":
            return {}
        return safetensors_format.read_header(fileobj)[1]


def _format_for_save(path, format):
    if format is not None:
        if format not in ("torch", "safetensors", "npz"):
            raise ValueError(f"format must be 'torch', 'safetensors' or 'npz', got {format!r}")
        return format
    extension = _extension(path)
    if extension not in _FORMAT_OF_EXTENSION:
        raise ValueError(f"cannot tell the format from the extension {extension!r} of "
                         f"{_describe(path)}: use .pt/.pth/.bin/.ckpt (torch), .safetensors or "
                         f".npz, or pass format='torch', 'safetensors' or 'npz'")
    return _FORMAT_OF_EXTENSION[extension]


def save(obj, path, *, format=None, metadata=None):
    """Writes ``obj`` to a weight file, without torch.

    Formats, from ``format`` or else the file's extension:

    * ``"torch"`` (``.pt``, ``.pth``, ``.bin``, ``.ckpt``): torch's zip
      format, readable by ``torch.load(path, weights_only=True)``. ``obj``
      may be any nesting of dicts, OrderedDicts, lists, tuples, sets,
      strings, bytes, numbers, None and NumPy arrays (which become tensors;
      arrays that view one buffer share one storage, as in torch). NumPy
      scalars are written as Python numbers.
    * ``"safetensors"``: a flat mapping of names to arrays, byte for byte as
      the ``safetensors`` package writes it; ``metadata`` (str -> str) is the
      file's ``__metadata__``.
    * ``"npz"``: a flat mapping of names to arrays, as ``numpy.savez``.

    The file is written to a temporary name beside ``path`` and renamed into
    place, so a failed save leaves no partial file. A module is not data:
    save ``model.state_dict()``.
    """
    fmt = _format_for_save(path, format)
    if metadata is not None and fmt != "safetensors":
        raise ValueError("metadata is stored only in .safetensors files")
    if not isinstance(path, (str, bytes, os.PathLike)):
        _write(obj, path, fmt, metadata, "archive")
        return
    path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path}: the folder {folder} does not exist")
    temporary = f"{path}.{os.getpid()}.partial"
    try:
        with open(temporary, "wb") as fileobj:
            # torch names the archive's folder after the file; "archive" where the
            # name holds characters a reader may refuse in a record name
            stem = os.path.splitext(os.path.basename(path))[0]
            stem = stem if re.fullmatch(r"[A-Za-z0-9_.-]+", stem) and ".." not in stem \
                else "archive"
            _write(obj, fileobj, fmt, metadata, stem)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write(obj, fileobj, fmt, metadata, archive_name):
    if fmt == "torch":
        torch_format.write_zip(obj, fileobj, archive_name)
    elif fmt == "safetensors":
        safetensors_format.write(obj, fileobj, metadata)
    else:
        npz_format.write(obj, fileobj)


# -- checkpoints as people have them ---------------------------------------------

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


def _is_array(value):
    """A NumPy array, a RawTensor, or a torch tensor (recognised by its type's
    name and module, without importing torch: a checkpoint torch.load read)."""
    if isinstance(value, (np.ndarray, RawTensor)):
        return True
    t = type(value)
    return t.__module__.split(".")[0] == "torch" and t.__name__ in ("Tensor", "Parameter")


def _is_state_dict(obj):
    """A mapping of names to arrays or tensors (a module's ``_extra_state``
    entries may hold anything, as in torch)."""
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and any(_is_array(v) for v in obj.values())
            and all(_is_array(v) or k.endswith("_extra_state") for k, v in obj.items()))


def state_dict_from(obj, prefix="module."):
    """The state_dict inside a loaded checkpoint.

    ``obj`` itself when it is a mapping of names to arrays (NumPy arrays, or
    torch tensors of a checkpoint torch.load read); otherwise the
    first such mapping under the keys ``state_dict``, ``model_state_dict``,
    ``model``, ``net`` or ``module``, looked for in that order and then
    inside those entries (a few levels deep). Keys starting with ``prefix``
    (``"module."``, which ``torch.nn.DataParallel`` and
    ``DistributedDataParallel`` add) lose it, as torch's
    ``consume_prefix_in_state_dict_if_present`` does; pass ``prefix=None``
    to keep keys as they are.

    Raises ValueError, listing the keys it saw, when no state_dict is found.
    """
    found = _find_state_dict(obj, 0)
    if found is None:
        keys = list(obj)[:20] if isinstance(obj, Mapping) else None
        raise ValueError(
            "no state_dict found: expected a mapping of names to arrays, or one under "
            + ", ".join(repr(k) for k in STATE_DICT_KEYS)
            + (f"; the object's keys are {keys}" if keys is not None
               else f"; got a {type(obj).__name__}"))
    if not prefix:
        return OrderedDict(found)
    result = OrderedDict()
    for key, value in found.items():
        stripped = key[len(prefix):] if key.startswith(prefix) else key
        if stripped in result:
            raise ValueError(f"stripping {prefix!r} makes two keys {stripped!r}")
        result[stripped] = value
    return result


def _find_state_dict(obj, depth):
    if _is_state_dict(obj):
        return obj
    if not isinstance(obj, Mapping) or depth >= 3:
        return None
    for key in STATE_DICT_KEYS:
        if key in obj:
            found = _find_state_dict(obj[key], depth + 1)
            if found is not None:
                return found
    return None
