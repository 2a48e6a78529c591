"""A GGUF file read in numpy: header, metadata, tensor table, and GGML blocks dequantized to float32.

`mx.load` reads GGUF too, but refuses K-quants (Q4_K, Q5_K, Q6_K: llama.cpp's usual Q4_K_M files
mix them) and hands back MLX arrays. This reader parses the file itself (versions 2 and 3, memory
mapped) and expands each tensor's blocks with numpy, one vectorised pass per tensor:

| type | block | layout (bytes) | value |
|---|---|---|---|
| F32 / F16 / BF16 | 1 | the number | itself |
| Q8_0 | 32 | f16 d, 32 x int8 q | d * q |
| Q4_0 | 32 | f16 d, 16 x (two 4-bit q) | d * (q - 8) |
| Q4_1 | 32 | f16 d, f16 m, 16 x (two 4-bit q) | d * q + m |
| Q5_0 / Q5_1 | 32 | f16 d, (f16 m), u32 high bits, 16 x (two 4-bit q) | d * (q - 16) / d * q + m |
| Q4_K | 256 | f16 d, f16 dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks, 128 x (two 4-bit q) | d * sc * q - dmin * m |
| Q5_K | 256 | as Q4_K plus 32 bytes of 5th bits | d * sc * q - dmin * m |
| Q6_K | 256 | 128 bytes low 4 bits, 64 bytes high 2 bits, 16 x int8 scales, f16 d | d * sc * (q - 32) |

(within a 32-block the low nibbles are elements 0-15 and the high ones 16-31; within a K-block each
64 elements take the low then the high nibbles of 32 bytes.) Shapes come out in numpy order (GGUF
lists dimensions innermost first). `tests/test_ggml.py` checks every type against the `gguf`
package's own dequantization (a test-only dependency) on random blocks and on written files.

Pure numpy, no MLX.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"GGUF"
VERSIONS = (2, 3)
QK_K = 256

# GGML type ids (ggml.h) -> (name, elements per block, bytes per block)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
         7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 12: ("Q4_K", QK_K, 144), 13: ("Q5_K", QK_K, 176),
         14: ("Q6_K", QK_K, 210), 30: ("BF16", 1, 2)}
TYPE_IDS = {name: i for i, (name, _, _) in TYPES.items()}

_SCALARS = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8",
            12: "<f8"}
_STRING, _ARRAY, _BOOL = 8, 9, 7


class GGMLError(ValueError):
    """A GGUF file or tensor this reader cannot handle (one line)."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy order (outermost first)
    type_id: int
    offset: int  # from the start of the file

    @property
    def type_name(self) -> str:
        return TYPES[self.type_id][0] if self.type_id in TYPES else f"type {self.type_id}"

    @property
    def nbytes(self) -> int:
        _, block, size = TYPES[self.type_id]
        return int(np.prod(self.shape, dtype=np.int64)) // block * size


class _Cursor:
    def __init__(self, data: np.ndarray):
        self.data, self.pos = data, 0

    def take(self, dtype: str, count: int = 1) -> np.ndarray:
        dt = np.dtype(dtype)
        end = self.pos + dt.itemsize * count
        if end > len(self.data):
            raise GGMLError("the file ends inside its header (truncated?)")
        out = self.data[self.pos:end].view(dt)
        self.pos = end
        return out

    def scalar(self, dtype: str):
        return self.take(dtype)[0].item()

    def string(self) -> str:
        n = self.scalar("<u8")
        return bytes(self.take("u1", n)).decode("utf-8", errors="replace")

    def value(self, type_id: int):
        if type_id == _STRING:
            return self.string()
        if type_id == _ARRAY:
            item_type, n = self.scalar("<u4"), self.scalar("<u8")
            if item_type == _STRING:
                return [self.string() for _ in range(n)]
            if item_type == _ARRAY:
                return [self.value(_ARRAY) for _ in range(n)]
            if item_type not in _SCALARS:
                raise GGMLError(f"unknown metadata array type {item_type}")
            values = self.take(_SCALARS[item_type], n)
            return values.astype(bool).tolist() if item_type == _BOOL else values.tolist()
        if type_id not in _SCALARS:
            raise GGMLError(f"unknown metadata value type {type_id}")
        v = self.scalar(_SCALARS[type_id])
        return bool(v) if type_id == _BOOL else v


def check_header(path: str | Path) -> int:
    """The GGUF version of `path` (reads 8 bytes); GGMLError unless it starts with the magic and a known version."""
    path = Path(path)
    if not path.is_file():
        raise GGMLError(f"GGUF file not found: {path}")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head[:4] != MAGIC:
        raise GGMLError(f"{path} is not a GGUF file (magic {head[:4]!r}, expected {MAGIC!r})")
    version = int.from_bytes(head[4:8], "little") if len(head) == 8 else None
    if version not in VERSIONS:
        raise GGMLError(f"{path}: GGUF version {version} is not supported (expected one of "
                        f"{', '.join(map(str, VERSIONS))})")
    return version


class GGUFFile:
    """A GGUF file: `metadata` (plain Python values), `tensors` (name -> TensorInfo), `tensor(name)`
    (float32 numpy array, dequantized) and `raw(name)` (the tensor's bytes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.version = check_header(self.path)
        self.data = np.memmap(self.path, dtype=np.uint8, mode="r")
        cur = _Cursor(self.data)
        cur.pos = 8
        n_tensors, n_kv = cur.scalar("<u8"), cur.scalar("<u8")
        self.metadata: dict = {}
        for _ in range(n_kv):
            key = cur.string()
            self.metadata[key] = cur.value(cur.scalar("<u4"))
        infos = []
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.scalar("<u8") for _ in range(cur.scalar("<u4"))]
            infos.append((name, tuple(reversed(dims)), cur.scalar("<u4"), cur.scalar("<u8")))
        align = int(self.metadata.get("general.alignment", 32))
        start = (cur.pos + align - 1) // align * align
        self.tensors = {name: TensorInfo(name, shape, t, start + off) for name, shape, t, off in infos}

    def raw(self, name: str) -> np.ndarray:
        info = self.tensors[name]
        if info.type_id not in TYPES:
            raise GGMLError(f"tensor {name}: GGML {info.type_name} is not supported "
                            f"(supported: {', '.join(n for n, _, _ in TYPES.values())})")
        if info.offset + info.nbytes > len(self.data):
            raise GGMLError(f"tensor {name} runs past the end of {self.path} (truncated?)")
        return self.data[info.offset: info.offset + info.nbytes]

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as float32, in numpy order."""
        info = self.tensors[name]
        return dequantize(self.raw(name), TYPES[info.type_id][0] if info.type_id in TYPES else "?").reshape(info.shape)


def _f16(blocks: np.ndarray, start: int) -> np.ndarray:
    """(n, 1) float32 from the little-endian float16 at byte `start` of each block."""
    return blocks[:, start:start + 2].copy().view("<f2").astype(np.float32)


def _nibbles32(qs: np.ndarray) -> np.ndarray:
    """(n, 16) bytes -> (n, 32): low nibbles are elements 0-15, high nibbles 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)


def _high_bits32(qh_bytes: np.ndarray) -> np.ndarray:
    """(n, 4) bytes of a little-endian u32 -> (n, 32) bit j of it, as 0/16."""
    qh = qh_bytes.copy().view("<u4").astype(np.uint32)  # (n, 1)
    return (((qh >> np.arange(32, dtype=np.uint32)) & 1) << 4).astype(np.int32)


def _k_scales(sc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) packed bytes -> (n, 8) 6-bit scales and (n, 8) 6-bit mins (ggml's get_scale_min_k4)."""
    sc = sc.astype(np.int32)
    scales = np.concatenate([sc[:, 0:4] & 63, (sc[:, 8:12] & 0x0F) | ((sc[:, 0:4] >> 6) << 4)], axis=1)
    mins = np.concatenate([sc[:, 4:8] & 63, (sc[:, 8:12] >> 4) | ((sc[:, 4:8] >> 6) << 4)], axis=1)
    return scales.astype(np.float32), mins.astype(np.float32)


def _k_nibbles(qs: np.ndarray) -> np.ndarray:
    """(n, 128) bytes -> (n, 256): each 32 bytes give 64 elements, low nibbles then high."""
    q = qs.reshape(-1, 4, 32)
    return np.stack([q & 0x0F, q >> 4], axis=2).reshape(-1, QK_K).astype(np.int32)


def dequantize(raw: np.ndarray, type_name: str) -> np.ndarray:
    """Flat float32 values of raw GGML data of `type_name` (one of the TYPES names)."""
    if type_name not in TYPE_IDS:
        raise GGMLError(f"GGML {type_name} is not supported (supported: {', '.join(TYPE_IDS)})")
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    _, block, size = TYPES[TYPE_IDS[type_name]]
    if len(raw) % size:
        raise GGMLError(f"{type_name} data of {len(raw)} bytes is not whole blocks of {size}")
    if type_name == "F32":
        return raw.view("<f4").astype(np.float32)
    if type_name == "F16":
        return raw.view("<f2").astype(np.float32)
    if type_name == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    b = raw.reshape(-1, size)
    if type_name == "Q8_0":
        return (_f16(b, 0) * b[:, 2:].view(np.int8).astype(np.float32)).reshape(-1)
    if type_name == "Q4_0":
        return (_f16(b, 0) * (_nibbles32(b[:, 2:]) - 8)).reshape(-1)
    if type_name == "Q4_1":
        return (_f16(b, 0) * _nibbles32(b[:, 4:]) + _f16(b, 2)).reshape(-1)
    if type_name == "Q5_0":
        return (_f16(b, 0) * ((_nibbles32(b[:, 6:]) | _high_bits32(b[:, 2:6])) - 16)).reshape(-1)
    if type_name == "Q5_1":
        return (_f16(b, 0) * (_nibbles32(b[:, 8:]) | _high_bits32(b[:, 4:8])) + _f16(b, 2)).reshape(-1)
    if type_name in ("Q4_K", "Q5_K"):
        d, dmin = _f16(b, 0), _f16(b, 2)
        scales, mins = _k_scales(b[:, 4:16])
        if type_name == "Q4_K":
            q = _k_nibbles(b[:, 16:144])
        else:
            q = _k_nibbles(b[:, 48:176])
            qh = b[:, 16:48].astype(np.int32)  # bit 2i / 2i+1 of byte l: 5th bit of element l of chunk i, low / high
            shifts = np.arange(8).reshape(4, 2)  # (chunk, low/high)
            high = (qh[:, None, None, :] >> shifts[None, :, :, None]) & 1  # (n, 4, 2, 32)
            q = q + (high.reshape(-1, QK_K) << 4)
        return (d * np.repeat(scales, 32, axis=1) * q - dmin * np.repeat(mins, 32, axis=1)).reshape(-1)
    # Q6_K
    ql, qh, sc = b[:, :128].astype(np.int32), b[:, 128:192].astype(np.int32), b[:, 192:208].view(np.int8)
    d = _f16(b, 208)
    out = np.empty((len(b), QK_K), dtype=np.float32)
    for half in range(2):  # 128 elements each: ql 64 bytes, qh 32 bytes, 8 scales
        l_, h_ = ql[:, 64 * half:64 * half + 64], qh[:, 32 * half:32 * half + 32]
        quads = [(l_[:, :32] & 0x0F) | ((h_ & 3) << 4), (l_[:, 32:] & 0x0F) | (((h_ >> 2) & 3) << 4),
                 (l_[:, :32] >> 4) | (((h_ >> 4) & 3) << 4), (l_[:, 32:] >> 4) | (((h_ >> 6) & 3) << 4)]
        for k, q in enumerate(quads):  # elements 32k..32k+31 of this half; scale index = 2k + (l >= 16)
            s = np.repeat(sc[:, 8 * half + 2 * k: 8 * half + 2 * k + 2].astype(np.float32), 16, axis=1)
            out[:, 128 * half + 32 * k: 128 * half + 32 * k + 32] = d * s * (q - 32)
    return out.reshape(-1)
