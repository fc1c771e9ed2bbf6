"""Reading records of zip archives (torch's zip format, .npz) with every
declared size checked against the file first."""
import io
import struct
import zipfile
import zlib

from ._common import FileProblem

# A deflated record may claim at most 100 times its compressed size: weights
# compress far less (float data barely at all), and deflate's own limit
# (about 1032 times) would let a 1 MB file make the reader allocate 1 GB.
_DEFLATE_MAX_RATIO = 100
# Record names longer than this, or with NUL bytes, '..' parts, absolute or
# backslash paths, are no names a weight file's writer produces.
_MAX_NAME_BYTES = 1024


def file_size_of(fileobj):
    here = fileobj.tell()
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(here)
    return size


def open_archive(fileobj, what):
    """The zip archive, refusing absurd record names, a name given twice and
    overlapping records; ``archive.data_starts`` maps each record to where its
    bytes start."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise FileProblem(f"{what}: not a readable zip archive: its central directory or end "
                          f"record is corrupt or points past the end ({exc})") from None
    seen = set()
    for info in archive.infolist():
        name = info.orig_filename          # zipfile's .filename stops at a NUL byte
        parts = name.replace("\\", "/").split("/")
        if (len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES or "\0" in name
                or "\\" in name or name.startswith("/") or ".." in parts):
            raise FileProblem(f"{what}: record name {name!r:.80} (length {len(name)}) is not a "
                              f"name a weight file holds (too long, NUL bytes, '..', absolute "
                              f"or backslash path)")
        if info.filename in seen:
            raise FileProblem(f"{what}: record {info.filename!r:.80} appears more than once")
        seen.add(info.filename)
    _refuse_overlaps(fileobj, archive, what)
    return archive


def _refuse_overlaps(fileobj, archive, what):
    """Records must not overlap one another or the central directory: records
    that share bytes (a deflate stream quoting the next records' headers)
    would let a small file expand into many large records."""
    infos = sorted(archive.infolist(), key=lambda info: info.header_offset)
    size = file_size_of(fileobj)
    here = fileobj.tell()
    # where each record's bytes start, read once from its local header
    archive.data_starts = {}
    for index, info in enumerate(infos):
        start = archive.data_starts[info.filename] = data_offset(fileobj, info, size, what)
        end = start + info.compress_size
        limit = infos[index + 1].header_offset if index + 1 < len(infos) else archive.start_dir
        if end > min(limit, size):
            raise FileProblem(f"{what}: record {info.filename!r:.80} (bytes "
                              f"{info.header_offset}..{end}) overlaps the next record or the "
                              f"central directory at {min(limit, size)}")
    fileobj.seek(here)


def check_record(info, file_size, what):
    """Refuses a zip record whose declared sizes no file of this size holds
    (its local header was checked by ``open_archive``)."""
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
                              f"bytes: more than {_DEFLATE_MAX_RATIO} times, refused as a "
                              f"decompression bomb")
    else:
        raise FileProblem(f"{what}: record {info.filename!r:.80} uses compression method "
                          f"{info.compress_type} (only stored and deflated records are read)")
    if info.header_offset + info.compress_size > file_size:
        raise FileProblem(f"{what}: record {info.filename!r:.80} ({info.compress_size} bytes "
                          f"at offset {info.header_offset}) runs past the end of the "
                          f"{file_size}-byte file")


def data_offset(fileobj, info, file_size, what):
    """Where a record's bytes start, from its local header."""
    if info.header_offset < 0:
        raise FileProblem(f"{what}: record {info.filename!r:.80} has a negative offset: the "
                          f"central directory's offset points past the end of the file")
    fileobj.seek(info.header_offset)
    header = fileobj.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise FileProblem(f"{what}: record {info.filename!r:.80} has no local header at "
                          f"offset {info.header_offset}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    local_name = fileobj.read(name_length)
    if local_name != info.orig_filename.encode(
            "utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
        raise FileProblem(f"{what}: the local header at offset {info.header_offset} names "
                          f"{local_name[:80]!r}, the central directory {info.filename!r:.80} "
                          f"(a record name with a NUL byte, or records that overlap)")
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.compress_size > file_size:
        raise FileProblem(f"{what}: record {info.filename!r:.80} runs past the end of the file")
    return start


def read_record(archive, info, what):
    """A record's bytes, CRC-checked. A stored record is read straight into
    the buffer (zipfile's reader would copy it chunk by chunk)."""
    buffer = bytearray(info.file_size)
    if info.compress_type == zipfile.ZIP_STORED:
        fileobj = archive.fp
        fileobj.seek(archive.data_starts[info.filename])
        if fileobj.readinto(memoryview(buffer)) != info.file_size:
            raise FileProblem(f"{what}: record {info.filename!r:.80} is truncated")
        if zlib.crc32(buffer) != info.CRC:
            raise FileProblem(f"{what}: record {info.filename!r:.80} fails its CRC check "
                              f"(corrupt)")
        return buffer
    with archive.open(info) as record:
        got = record.readinto(memoryview(buffer))
        if got != info.file_size or record.read(1):
            raise FileProblem(f"{what}: record {info.filename!r:.80} does not hold the "
                              f"{info.file_size} bytes it declares")
    return buffer
