"""NumPy's .npz, read with every member's declared shape checked against
its record's size before the array is allocated (``numpy.load`` allocates
what a member's header declares first), and written as ``numpy.savez``
writes it (stored ``<name>.npy`` members). Object arrays, which need
pickle, are refused."""
import zipfile
from collections import OrderedDict

import numpy as np

from ._common import FileProblem, RawTensor, check_shape
from ._zip import check_record, file_size_of, open_archive


def read(fileobj, *, mmap_array=None):
    what = "npz file"
    size = file_size_of(fileobj)
    archive = open_archive(fileobj, what)
    result = OrderedDict()
    for info in archive.infolist():
        check_record(info, size, what)
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        where = f"{what}: member {info.filename!r:.80}"
        if name in result:
            raise FileProblem(f"{where}: a second member named {name!r:.80}")
        with archive.open(info) as member:
            try:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise FileProblem(f"{where}: .npy format version {version} is not read")
            except FileProblem:
                raise
            except Exception as exc:     # numpy's header parser: ValueError and others
                raise FileProblem(f"{where}: not a valid .npy header ({exc})") from None
            header_bytes = member.tell()
            if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufcSU":
                raise FileProblem(f"{where}: arrays of dtype {dtype} are not read (object "
                                  f"arrays need pickle; structured arrays are not weights)")
            shape, numel = check_shape(list(shape), where)
            nbytes = numel * dtype.itemsize
            if info.file_size - header_bytes != nbytes:
                raise FileProblem(f"{where}: shape {list(shape)} of {dtype} needs {nbytes} "
                                  f"bytes, the member holds {info.file_size - header_bytes}")
            if mmap_array is not None and info.compress_type == zipfile.ZIP_STORED:
                start = archive.data_starts[info.filename] + header_bytes
                raw = mmap_array[start:start + nbytes]
            else:
                buffer = bytearray(nbytes)
                if member.readinto(memoryview(buffer)) != nbytes:
                    raise FileProblem(f"{where}: truncated")
                raw = np.frombuffer(buffer, dtype=np.uint8)
        array = raw.view(dtype)
        result[name] = array.reshape(shape, order="F" if fortran else "C")
    return result


def write(arrays, fileobj):
    if not isinstance(arrays, dict):
        raise TypeError(f".npz holds a mapping of names to arrays, got {type(arrays).__name__}")
    checked = []
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f".npz names arrays with strings, got {name!r}")
        if isinstance(value, RawTensor):
            raise TypeError(f"array {name!r}: .npz cannot hold {value.dtype.name} (NumPy has "
                            f"no such dtype); cast it to float32")
        if isinstance(value, (bool, int, float, complex, np.generic)):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f".npz holds arrays only: {name!r} is a {type(value).__name__}; "
                            f"pass a flat mapping of names to arrays "
                            f"(skipblocks.state_dict_from(checkpoint) finds a checkpoint's)")
        checked.append((name, value))
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in checked:
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
