"""The checkpoint index (``variables/variables.index``) as entries, read and written back.

The index is a TensorBundle: a LevelDB-format table (data blocks of prefix-compressed
entries, a metaindex and an index block, each with a type byte and a masked CRC-32C, then a
48-byte footer ending in a magic number) mapping each checkpoint key to a serialized
``BundleEntryProto``; the empty key holds the ``BundleHeaderProto``. TensorFlow exposes a
reader of it but no writer of arbitrary entries: ``write_table`` writes any list of
``(key, value)`` pairs, in the order given and duplicates included, as a table whose blocks
and footer TensorFlow accepts, so that what a change of the entries does reaches the
bundle's own checks instead of the table's checksums.
"""

import struct

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the fixed64 magic
HEADER_KEY = b""


class TableError(ValueError):
    """The bytes are not a table this module reads."""


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    """The CRC as LevelDB and TensorFlow store it (rotated and offset, so a CRC of bytes
    holding CRCs does not degenerate)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data, at):
    n = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise TableError(f"a varint runs past its block at byte {at}")
        byte = data[at]
        n |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return n, at


def _block(entries):
    """Block contents: every entry its own restart point (no shared key prefix)."""
    body, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    restarts = restarts or [0]
    body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(body)


def _read_block(contents):
    if len(contents) < 4:
        raise TableError("a block shorter than its restart count")
    (count,) = struct.unpack_from("<I", contents, len(contents) - 4)
    end = len(contents) - 4 - 4 * count
    if end < 0:
        raise TableError("a block's restart array is larger than the block")
    entries, at, last = [], 0, b""
    while at < end:
        shared, at = _read_varint(contents, at)
        unshared, at = _read_varint(contents, at)
        size, at = _read_varint(contents, at)
        if shared > len(last) or at + unshared + size > end:
            raise TableError("an entry runs past its block")
        key = last[:shared] + contents[at:at + unshared]
        at += unshared
        entries.append((key, contents[at:at + size]))
        at += size
        last = key
    return entries


def _handle(offset, size):
    return _varint(offset) + _varint(size)


def write_table(entries):
    """The bytes of a table holding ``entries`` (``(key, value)`` bytes pairs) as given."""
    out = bytearray()

    def put(contents):
        offset = len(out)
        out.extend(contents + b"\0" + struct.pack("<I", masked_crc32c(contents + b"\0")))
        return offset, len(contents)

    entries = [(bytes(k), bytes(v)) for k, v in entries]
    index = []
    if entries:
        data = put(_block(entries))
        # The index key bounds the block from above: its largest key, whatever the order.
        index.append((max(k for k, _ in entries), _handle(*data)))
    meta = put(_block([]))
    index = put(_block(index))
    footer = _handle(*meta) + _handle(*index)
    out += footer + b"\0" * (40 - len(footer)) + struct.pack("<Q", MAGIC)
    return bytes(out)


def read_table(data):
    """The ``(key, value)`` pairs of the table ``data``, in file order; the block checksums
    are checked."""
    if len(data) < FOOTER_SIZE:
        raise TableError(f"{len(data)} bytes: shorter than a table's footer")
    (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
    if magic != MAGIC:
        raise TableError(f"no table magic number (0x{magic:016x})")
    footer = data[len(data) - FOOTER_SIZE:]
    _, at = _read_varint(footer, 0)
    _, at = _read_varint(footer, at)
    index = _read_handle_block(data, footer, at)
    entries = []
    for _, handle in _read_block(index):
        entries.extend(_read_block(_read_handle_block(data, handle, 0)))
    return entries


def _read_handle_block(data, handle, at):
    offset, at = _read_varint(handle, at)
    size, _ = _read_varint(handle, at)
    if offset + size + 5 > len(data):
        raise TableError(f"a block at {offset} of {size} bytes runs past the file")
    contents = data[offset:offset + size]
    kind, (crc,) = data[offset + size], struct.unpack_from("<I", data, offset + size + 1)
    if kind != 0:
        raise TableError(f"a compressed block (type {kind}): not written by TensorFlow's bundle")
    if crc != masked_crc32c(contents + b"\0"):
        raise TableError(f"the block at {offset} fails its checksum")
    return contents
