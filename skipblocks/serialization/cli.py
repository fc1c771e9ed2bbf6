"""``python -m skipblocks inspect FILE`` and ``python -m skipblocks convert IN
OUT``: look into and convert weight files, without torch."""
import os
import sys
from collections.abc import Mapping

import numpy as np

from . import _FORMAT_OF_EXTENSION, _format_for_save, _is_state_dict, _read, save
from . import _find_state_dict
from ._common import RawTensor, WeightsFileError, walk_tensors

FORMAT_NAMES = {"torch-zip": "torch zip format (torch.save since torch 1.6)",
                "torch-legacy": "torch legacy format (torch.save before torch 1.6)",
                "safetensors": "safetensors", "npz": "NumPy .npz"}
# buffers torch's layers register, which a state_dict holds beside parameters
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked")


class _SameAs:
    """A container the file shares with an earlier key."""

    def __init__(self, key):
        self.key = key

    def __repr__(self):
        return f"<the same object as {self.key}>"


def _shown(text):
    """Text from a file, printable: control characters (terminal escapes)
    are shown escaped, never sent to the terminal."""
    return text if text.isprintable() else repr(text)[1:-1]


def _dtype_name(tensor):
    return tensor.dtype.name if isinstance(tensor, RawTensor) else str(tensor.dtype)


def _leaves(obj, prefix="", depth=0, seen=None):
    """(dotted key, value) of every non-container entry, tensors included;
    a container met a second time (shared in the file) is listed once."""
    seen = {} if seen is None else seen
    descends = isinstance(obj, Mapping) or (isinstance(obj, (list, tuple)) and any(
        isinstance(v, (np.ndarray, RawTensor, Mapping, list, tuple)) for v in obj))
    if descends:
        if id(obj) in seen:
            yield prefix, _SameAs(seen[id(obj)])
            return
        seen[id(obj)] = prefix
    if isinstance(obj, Mapping) and depth < 64:
        for key, value in obj.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key), depth + 1, seen)
    elif isinstance(obj, (list, tuple)) and depth < 64 and any(
            isinstance(v, (np.ndarray, RawTensor, Mapping, list, tuple)) for v in obj):
        for index, value in enumerate(obj):
            yield from _leaves(value, f"{prefix}.{index}" if prefix else str(index), depth + 1,
                               seen)
    else:
        yield prefix, obj


def inspect(path, out=None):
    """Prints a file's format, every tensor's key, shape and stored dtype,
    the other entries' values, and the totals. Reads no tensor data where
    the format allows a memory map."""
    out = out or sys.stdout
    fmt, obj, metadata = _read(path, mmap="auto", keep_bits=True)
    print(f"{path}: {FORMAT_NAMES[fmt]}, {os.path.getsize(path):,} bytes", file=out)
    rows = list(_leaves(obj))
    state_dict = _find_state_dict(obj, 0)
    in_state_dict = ({id(v) for v in state_dict.values()} if state_dict is not None
                     else {id(v) for _, v in rows})
    width = max([len(key) for key, _ in rows] + [3])
    tensors = elements = parameter_elements = buffer_elements = nbytes = 0
    print(f"{'key':{width}s}  {'shape':>20s}  dtype", file=out)
    for key, value in rows:
        if isinstance(value, (np.ndarray, RawTensor)):
            size = int(np.prod(value.shape, dtype=np.int64))
            tensors += 1
            elements += size
            nbytes += value.nbytes
            if id(value) in in_state_dict:
                if key.split(".")[-1] in BUFFER_NAMES:
                    buffer_elements += size
                else:
                    parameter_elements += size
            stored = _dtype_name(value)
            print(f"{_shown(key):{width}s}  {str(tuple(value.shape)):>20s}  {stored}", file=out)
        else:
            text = repr(value)
            text = _shown(text if len(text) <= 60 else text[:57] + "...")
            print(f"{_shown(key):{width}s}  = {text}", file=out)
    where = "the state_dict's" if state_dict is not None else "the file's"
    print(f"{tensors} tensors, {elements:,} elements ({where} {parameter_elements:,} in "
          f"parameters, {buffer_elements:,} in buffers named {'/'.join(BUFFER_NAMES)}; "
          f"{elements - parameter_elements - buffer_elements:,} in other tensors), "
          f"{nbytes:,} bytes of tensor data", file=out)
    for key, value in metadata.items():
        print(f"metadata: {_shown(key)} = {_shown(value)}", file=out)
    return 0


def _cast_float32(obj, depth=0):
    """Every floating-point tensor as float32 (complex ones as complex64)."""
    if isinstance(obj, RawTensor):
        return obj.decoded()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and obj.dtype != np.float32:
            return obj.astype(np.float32)
        if obj.dtype.kind == "c" and obj.dtype != np.complex64:
            return obj.astype(np.complex64)
        return obj
    if depth > 200:
        return obj
    if isinstance(obj, dict):
        converted = type(obj)() if type(obj) is not dict else {}
        for key, value in obj.items():
            converted[key] = _cast_float32(value, depth + 1)
        if getattr(obj, "__dict__", None):
            converted.__dict__.update(obj.__dict__)
        return converted
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cast_float32(value, depth + 1) for value in obj)
    return obj


def convert(source, destination, cast=None, out=None, err=None):
    """Converts between torch .pt, .safetensors and .npz, copying each
    tensor's bytes exactly. ``cast="float32"`` writes every floating-point
    tensor as float32 (needed for a dtype the output format cannot hold,
    such as bfloat16 into .npz)."""
    out, err = out or sys.stdout, err or sys.stderr
    out_format = _format_for_save(destination, None)
    fmt, obj, metadata = _read(source, mmap="auto", keep_bits=True)
    if cast == "float32":
        obj = _cast_float32(obj)
    elif cast is not None:
        raise ValueError(f"--cast takes float32, got {cast!r}")
    if out_format in ("safetensors", "npz") and not _is_state_dict(obj):
        found = _find_state_dict(obj, 0)
        if found is None:
            raise ValueError(f"{source} holds a {type(obj).__name__} that is not a mapping of "
                             f"names to tensors, and none was found inside it: "
                             f"{out_format} holds only that")
        kept = {id(value) for _, value in walk_tensors(found)}
        dropped = [key for key, value in _leaves(obj) if id(value) not in kept]
        print(f"note: {source} holds a checkpoint; writing the state_dict found in it "
              f"({len(found)} tensors); {len(dropped)} other entries have no place in "
              f"{out_format}", file=err)
        obj = found
    exotic = [(key, value.dtype.name) for key, value in walk_tensors(obj)
              if isinstance(value, RawTensor)]
    if out_format == "npz" and exotic:
        raise ValueError(f"{exotic[0][0]!r} is {exotic[0][1]}, which .npz (NumPy) cannot hold: "
                         f"pass --cast float32 to write floating-point tensors as float32")
    save(obj, destination,
         metadata=(metadata or None) if out_format == "safetensors" and fmt == "safetensors"
         else None)
    count = sum(1 for _ in walk_tensors(obj))
    print(f"wrote {destination} ({out_format}): {count} tensors, "
          f"{os.path.getsize(destination):,} bytes", file=out)
    return 0


def main(command, args, out=None, err=None):
    """Runs a subcommand; errors print one line and return status 1."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        if command == "inspect":
            return inspect(args.file, out)
        return convert(args.source, args.destination, args.cast, out, err)
    except (WeightsFileError, ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=err)
        return 1


SUPPORTED_EXTENSIONS = tuple(_FORMAT_OF_EXTENSION)
