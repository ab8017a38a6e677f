"""The module matrix of a QR code (ISO/IEC 18004) in byte mode, error level M, one fixed mask: what segno makes for
the same call, module for module, in a tenth of its time.

segno builds a code module by module in pure Python (about 2 ms a letter, a tenth of a letter's whole budget: issue
#16), and a night makes one code per letter, each different (its amount and reference). Here everything that depends
only on the version is made once per version and kept: the function patterns (finders, timing, alignment, format
and version information) and the order in which the data modules are filled; a code is then its bit stream, its
Reed-Solomon error correction (big-integer XOR of precomputed rows), and one pass putting the masked bits in place.
`tests/render/test_qr_code.py` holds the matrix equal to segno's (`segno.make(data, error="m", boost_error=False,
micro=False, mask=...)`) for payloads of every length up to the EPC's and beyond, on every version they reach.

>>> matrix = qr_matrix(b"BCD\\n002\\n1\\nSCT")
>>> len(matrix), bytes(matrix[0][:8])
(21, b'\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x00')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# Error level M, by version 1..40: the groups of blocks (how many, codewords in all, data codewords in each).
_BLOCKS_M: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((1, 26, 16),), ((1, 44, 28),), ((1, 70, 44),), ((2, 50, 32),), ((2, 67, 43),), ((4, 43, 27),), ((4, 49, 31),),
    ((2, 60, 38), (2, 61, 39)), ((3, 58, 36), (2, 59, 37)), ((4, 69, 43), (1, 70, 44)),
    ((1, 80, 50), (4, 81, 51)), ((6, 58, 36), (2, 59, 37)), ((8, 59, 37), (1, 60, 38)),
    ((4, 64, 40), (5, 65, 41)), ((5, 65, 41), (5, 66, 42)), ((7, 73, 45), (3, 74, 46)),
    ((10, 74, 46), (1, 75, 47)), ((9, 69, 43), (4, 70, 44)), ((3, 70, 44), (11, 71, 45)),
    ((3, 67, 41), (13, 68, 42)), ((17, 68, 42),), ((17, 74, 46),), ((4, 75, 47), (14, 76, 48)),
    ((6, 73, 45), (14, 74, 46)), ((8, 75, 47), (13, 76, 48)), ((19, 74, 46), (4, 75, 47)),
    ((22, 73, 45), (3, 74, 46)), ((3, 73, 45), (23, 74, 46)), ((21, 73, 45), (7, 74, 46)),
    ((19, 75, 47), (10, 76, 48)), ((2, 74, 46), (29, 75, 47)), ((10, 74, 46), (23, 75, 47)),
    ((14, 74, 46), (21, 75, 47)), ((14, 74, 46), (23, 75, 47)), ((12, 75, 47), (26, 76, 48)),
    ((6, 75, 47), (34, 76, 48)), ((29, 74, 46), (14, 75, 47)), ((13, 74, 46), (32, 75, 47)),
    ((40, 75, 47), (7, 76, 48)), ((18, 75, 47), (31, 76, 48)),
)
_LEVEL_M = 0b00        # the error level's two bits in the format information
_BYTE_MODE = 0b0100
_PAD = (0xEC, 0x11)


@dataclass(frozen=True)
class _Version:
    size: int
    template: bytes            # the function patterns, row after row; data modules 0 for now
    positions: tuple[int, ...]  # the data modules' indexes in `template`, in filling order
    masked: int                # the data modules the mask inverts, as bits in filling order
    capacity: int              # data codewords
    blocks: tuple[tuple[int, int, int], ...]


def qr_matrix(data: bytes, mask: int = 0) -> tuple[bytearray, ...]:
    """The code's modules, row after row (1 dark, 0 light), without quiet zone: segno's `QRCode.matrix` for
    `segno.make(data, error="m", boost_error=False, micro=False, mask=mask)` when segno encodes `data` in byte mode
    (any text holding a line break or a lower-case letter, as an EPC payload does). ValueError if it does not fit."""
    version = _version_for(len(data))
    shape = _shape(version, mask)
    stream = _codewords(data, version, shape)
    bits = int.from_bytes(stream, "big") << (len(shape.positions) - 8 * len(stream))   # remainder bits: 0
    values = format(bits ^ shape.masked, f"0{len(shape.positions)}b").encode("ascii")
    flat = bytearray(shape.template)
    for position, value in zip(shape.positions, values):
        flat[position] = value - 48        # ord("0")
    size = shape.size
    return tuple(flat[row:row + size] for row in range(0, size * size, size))


def _version_for(length: int) -> int:
    """The smallest version whose level-M data capacity holds the byte segment (mode, count, data)."""
    for version in range(1, 41):
        count_bits = 8 if version < 10 else 16
        if 8 * _data_codewords(version) >= 4 + count_bits + 8 * length:
            return version
    raise ValueError("data too large for a QR code")


def _data_codewords(version: int) -> int:
    return sum(count * data for count, _, data in _BLOCKS_M[version - 1])


def _codewords(data: bytes, version: int, shape: _Version) -> bytes:
    """The final message: the data codewords (segment, terminator, padding, pad codewords) interleaved block by
    block, then the blocks' error correction codewords interleaved."""
    count_bits = 8 if version < 10 else 16
    capacity_bits = 8 * shape.capacity
    length = 4 + count_bits + 8 * len(data)
    stream = ((_BYTE_MODE << count_bits) | len(data)) << 8 * len(data) | int.from_bytes(data, "big")
    terminator = min(capacity_bits - length, 4)
    length += terminator
    # As segno does: zero bits up to the next codeword boundary, a whole zero codeword when already on one.
    padding = 8 - length % 8
    stream <<= terminator + padding
    length += padding
    message = stream.to_bytes(length // 8, "big")[:shape.capacity]
    message += bytes(_PAD[i % 2] for i in range(shape.capacity - len(message)))
    data_blocks, ec_blocks, start = [], [], 0
    for count, total, size in shape.blocks:
        for _ in range(count):
            block = message[start:start + size]
            start += size
            data_blocks.append(block)
            ec_blocks.append(_remainder(block, total - size))
    longest = max(len(block) for block in data_blocks)
    interleaved = bytearray()
    for index in range(longest):
        interleaved.extend(block[index] for block in data_blocks if index < len(block))
    for index in range(len(ec_blocks[0])):
        interleaved.extend(block[index] for block in ec_blocks)
    return bytes(interleaved)


# ---------------------------------------------------------------- Reed-Solomon over GF(256), polynomial 0x11D

def _field() -> tuple[list[int], list[int]]:
    exp, log = [0] * 512, [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    for power in range(255, 512):
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _field()


def _multiply(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


@functools.cache
def _generator_rows(degree: int) -> tuple[int, ...]:
    """For each byte f: f times the generator polynomial of `degree` error codewords, its `degree` lower
    coefficients as one big integer (the leading coefficient, 1, cancels out of the division)."""
    generator = [1]
    for root in range(degree):
        factor = _EXP[root]
        shifted = generator + [0]
        for index in range(1, len(shifted)):
            shifted[index] ^= _multiply(generator[index - 1], factor)
        generator = shifted
    lower = generator[1:]
    return tuple(int.from_bytes(bytes(_multiply(f, g) for g in lower), "big") for f in range(256))


def _remainder(block: bytes, degree: int) -> bytes:
    """The block's error correction codewords: the remainder of its polynomial times x^degree by the generator."""
    rows = _generator_rows(degree)
    top, mask, remainder = 8 * (degree - 1), (1 << 8 * degree) - 1, 0
    for byte in block:
        remainder = ((remainder << 8) & mask) ^ rows[(remainder >> top) ^ byte]
    return remainder.to_bytes(degree, "big")


# ---------------------------------------------------------------- what depends on the version only

def _alignment_centres(version: int, size: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    step = (version * 8 + count * 3 + 5) // (count * 4 - 4) * 2
    return [6] + [size - 7 - step * index for index in reversed(range(count - 1))]


def _bch(value: int, generator: int, degree: int) -> int:
    """`value` followed by its BCH check bits (the remainder of value * x^degree by the generator)."""
    remainder = value << degree
    for bit in reversed(range(degree, remainder.bit_length())):
        if remainder >> bit & 1:
            remainder ^= generator << (bit - degree)
    return value << degree | remainder


@functools.cache
def _shape(version: int, mask: int) -> _Version:
    if mask != 0:
        raise ValueError("only mask 0 is made here")
    size = 17 + 4 * version
    light, dark, free = 0, 1, 2
    grid = [[free] * size for _ in range(size)]
    # Finder patterns with their light separators.
    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        for row in range(-1, 8):
            for column in range(-1, 8):
                r, c = top + row, left + column
                if 0 <= r < size and 0 <= c < size:
                    ring = max(abs(row - 3), abs(column - 3))
                    grid[r][c] = dark if ring in (0, 1, 3) else light
    # Timing patterns.
    for index in range(8, size - 8):
        grid[6][index] = grid[index][6] = dark if index % 2 == 0 else light
    # Alignment patterns, except where they would cover a finder.
    centres = _alignment_centres(version, size)
    last = centres[-1] if centres else None
    for row in centres:
        for column in centres:
            if (row, column) in ((6, 6), (6, last), (last, 6)):
                continue
            for r in range(-2, 3):
                for c in range(-2, 3):
                    grid[row + r][column + c] = dark if max(abs(r), abs(c)) != 1 else light
    # Format information (level M, this mask), placed as segno places it, then the dark module.
    fmt = _bch(_LEVEL_M << 3 | mask, 0b10100110111, 10) ^ 0b101010000010010
    for index in range(8):
        low, high = fmt >> index & 1, fmt >> (14 - index) & 1
        offset = 1 if index >= 6 else 0
        grid[index + offset][8] = low
        grid[8][index + offset] = high
        grid[8][size - 1 - index] = low
        grid[size - 1 - index][8] = high
    grid[size - 8][8] = dark
    # Version information (version 7 and up).
    if version >= 7:
        info = _bch(version, 0b1111100100101, 12)
        for index in range(6):
            for offset in range(3):
                bit = info >> (index * 3 + offset) & 1
                grid[size - 11 + offset][index] = bit
                grid[index][size - 11 + offset] = bit
    # Data modules: two columns at a time from the right, upwards then downwards, skipping the timing column.
    positions, masked = [], 0
    for right in range(size - 1, 0, -2):
        if right <= 6:
            right -= 1
        upwards_pair = (right & 2) == 0
        for vertical in range(size):
            for column in (right, right - 1):
                upwards = upwards_pair ^ (column < 6)
                row = size - 1 - vertical if upwards else vertical
                if grid[row][column] == free:
                    grid[row][column] = light
                    positions.append(row * size + column)
                    masked = masked << 1 | ((row + column) % 2 == 0)
    template = bytes(value for row in grid for value in row)
    return _Version(size, template, tuple(positions), masked, _data_codewords(version), _BLOCKS_M[version - 1])
