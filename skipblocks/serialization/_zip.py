"""Reading records of zip archives (torch's zip format, .npz) with every
declared size checked against the file first."""
import io
import struct
import zipfile

from ._common import FileProblem

# Deflate cannot expand data more than about 1032 times: a record that claims
# more is refused before it is inflated.
_DEFLATE_MAX_RATIO = 1032


def file_size_of(fileobj):
    here = fileobj.tell()
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(here)
    return size


def open_archive(fileobj, what):
    """The zip archive, refusing one that names a record twice."""
    archive = zipfile.ZipFile(fileobj)
    seen = set()
    for info in archive.infolist():
        if info.filename in seen:
            raise FileProblem(f"{what}: record {info.filename!r:.80} appears more than once")
        seen.add(info.filename)
    return archive


def check_record(info, file_size, what):
    """Refuses a zip record whose declared sizes no file of this size holds."""
    if info.flag_bits & 0x1:
        raise FileProblem(f"{what}: record {info.filename!r:.80} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise FileProblem(f"{what}: stored record {info.filename!r:.80} declares "
                              f"{info.file_size} bytes but holds {info.compress_size}")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 64:
            raise FileProblem(f"{what}: record {info.filename!r:.80} declares "
                              f"{info.file_size} bytes from {info.compress_size} compressed "
                              f"bytes, more than deflate can produce")
    else:
        raise FileProblem(f"{what}: record {info.filename!r:.80} uses compression method "
                          f"{info.compress_type} (only stored and deflated records are read)")
    if info.header_offset + info.compress_size > file_size:
        raise FileProblem(f"{what}: record {info.filename!r:.80} ({info.compress_size} bytes "
                          f"at offset {info.header_offset}) runs past the end of the "
                          f"{file_size}-byte file")


def data_offset(fileobj, info, file_size, what):
    """Where a stored record's bytes start, from its local header."""
    fileobj.seek(info.header_offset)
    header = fileobj.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise FileProblem(f"{what}: record {info.filename!r:.80} has no local header at "
                          f"offset {info.header_offset}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.compress_size > file_size:
        raise FileProblem(f"{what}: record {info.filename!r:.80} runs past the end of the file")
    return start


def read_record(archive, info, what):
    buffer = bytearray(info.file_size)
    with archive.open(info) as record:
        got = record.readinto(memoryview(buffer))
        if got != info.file_size or record.read(1):
            raise FileProblem(f"{what}: record {info.filename!r:.80} does not hold the "
                              f"{info.file_size} bytes it declares")
    return buffer
