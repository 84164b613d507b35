"""Structural check of a .tflite file, done before any runtime parses it.

Why: a runtime handed a truncated or corrupt file does not always refuse it cleanly; tensorflow.lite
follows an offset past the end of a truncated model and the process dies with SIGSEGV. So the engine
checks the file itself first, cheaply: it reads offsets and lengths, never tensor data, and confirms that
everything a runtime will follow lands inside the file.

A .tflite file is a FlatBuffer (flatbuffers.dev, "Internals"): bytes 0..4 hold the little-endian offset
of the root table, bytes 4..8 the file identifier "TFL3". A table starts with a signed offset back to its
vtable; the vtable holds its own size, the table's inline size, then one 16-bit offset per field (0:
absent). Offsets to tables, vectors and strings are unsigned and relative to where they are stored; a
vector (and a string) starts with its 32-bit length, and a string ends with a NUL. The tables and field
numbers walked here are the TFLite schema's (tensorflow/compiler/mlir/lite/schema/schema.fbs): Model,
OperatorCode, SubGraph, Tensor, QuantizationParameters, Operator, Buffer, Metadata, SignatureDef. Buffers
with ``offset > 1`` keep their bytes after the FlatBuffer; their range must lie inside the file too.
Indices between them (a tensor's buffer, an operator's opcode and tensors) must name existing entries.

This is not the full FlatBuffers verifier (alignment, union types and nesting depth are left to the
runtime, which verifies the model itself): it is the part that keeps a cut-off or garbled file from
reaching a runtime.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IDENTIFIER = b"TFL3"  # schema.fbs: file_identifier "TFL3"; bytes 4..8 of every TFLite FlatBuffer


class TFLiteFileError(ValueError):
    """The file is not a structurally sound TFLite FlatBuffer; the message says where (one line)."""


class NotTFLiteError(TFLiteFileError):
    """The file is empty or lacks the TFL3 identifier: not a TFLite model at all (a README, a Keras file)."""


class _Reader:
    """Bounds-checked little-endian reads over the file's bytes."""

    def __init__(self, data: Any, size: int) -> None:
        self.data = data
        self.size = size

    def need(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise TFLiteFileError(f"{what} (bytes {pos}..{pos + length}) lies outside the {self.size}-byte file")

    def unpack(self, fmt: str, pos: int, what: str) -> Any:
        self.need(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, pos)[0]

    def table(self, pos: int, what: str) -> _Table:
        soffset = self.unpack("<i", pos, what)
        vtable = pos - soffset
        vsize = self.unpack("<H", vtable, f"{what}'s vtable")
        tsize = self.unpack("<H", vtable + 2, f"{what}'s vtable")
        if vsize < 4 or vsize % 2 or tsize < 4:
            raise TFLiteFileError(f"{what}'s vtable at byte {vtable} is malformed (sizes {vsize}, {tsize})")
        self.need(vtable, vsize, f"{what}'s vtable")
        self.need(pos, tsize, what)
        return _Table(self, pos, vtable, vsize, tsize, what)


class _Table:
    """One FlatBuffer table; field ``i`` is the i-th field of its schema table (0-based)."""

    def __init__(self, reader: _Reader, pos: int, vtable: int, vsize: int, tsize: int, what: str) -> None:
        self.r = reader
        self.pos, self.vtable, self.vsize, self.tsize, self.what = pos, vtable, vsize, tsize, what

    def _field(self, i: int, size: int) -> int | None:
        slot = 4 + 2 * i
        if slot + 2 > self.vsize:
            return None  # written by an older schema: the field is absent
        off = self.r.unpack("<H", self.vtable + slot, f"{self.what}'s vtable")
        if off == 0:
            return None
        if off + size > self.tsize:
            raise TFLiteFileError(f"{self.what} field {i} lies outside its table at byte {self.pos}")
        return self.pos + off

    def scalar(self, i: int, fmt: str, default: int = 0) -> int:
        at = self._field(i, struct.calcsize(fmt))
        return default if at is None else int(self.r.unpack(fmt, at, f"{self.what} field {i}"))

    def _ref(self, i: int, what: str) -> int | None:
        at = self._field(i, 4)
        if at is None:
            return None
        target = at + self.r.unpack("<I", at, what)
        self.r.need(target, 4, what)
        return target

    def table(self, i: int, what: str) -> _Table | None:
        target = self._ref(i, what)
        return None if target is None else self.r.table(target, what)

    def vector(self, i: int, item_size: int, what: str) -> tuple[int, int]:
        """(first item's position, length) of a vector field; (0, 0) when absent."""
        target = self._ref(i, what)
        if target is None:
            return 0, 0
        length = self.r.unpack("<I", target, what)
        self.r.need(target + 4, length * item_size, f"{what} of {length} items")
        return target + 4, length

    def string(self, i: int, what: str) -> None:
        start, length = self.vector(i, 1, what)
        if start:
            self.r.need(start + length, 1, f"{what}'s terminator")

    def ints(self, i: int, what: str) -> list[int]:
        start, length = self.vector(i, 4, what)
        return list(struct.unpack_from(f"<{length}i", self.r.data, start)) if length else []

    def tables(self, i: int, what: str) -> Iterator[_Table]:
        start, length = self.vector(i, 4, what)
        for k in range(length):
            at = start + 4 * k
            yield self.r.table(at + self.r.unpack("<I", at, what), f"{what}[{k}]")


def _external(r: _Reader, offset: int, size: int, what: str) -> None:
    """Data kept after the FlatBuffer (schema.fbs: offset > 1 means outside it) must be in the file."""
    if offset > 1:
        r.need(offset, size, what)


def _indices(values: list[int], count: int, what: str, *, optional: bool = False) -> None:
    low = -1 if optional else 0
    bad = [v for v in values if not low <= v < count]
    if bad:
        raise TFLiteFileError(f"{what} names entry {bad[0]}, but there are {count}")


def _check_model(r: _Reader) -> None:
    root = r.unpack("<I", 0, "the root table offset")
    model = r.table(root, "the Model table")
    opcodes = list(model.tables(1, "operator_codes"))
    for code in opcodes:
        code.string(1, f"{code.what}.custom_code")
    buffers = list(model.tables(4, "buffers"))
    for buf in buffers:
        buf.vector(0, 1, f"{buf.what}.data")
        _external(r, buf.scalar(1, "<Q"), buf.scalar(2, "<Q"), f"{buf.what}'s external data")
    subgraphs = list(model.tables(2, "subgraphs"))
    if not subgraphs:
        raise TFLiteFileError("the model has no subgraphs")
    for g, sub in enumerate(subgraphs):
        where = f"subgraphs[{g}]"
        tensors = list(sub.tables(0, f"{where}.tensors"))
        for t in tensors:
            t.ints(0, f"{t.what}.shape")
            t.string(3, f"{t.what}.name")
            t.ints(7, f"{t.what}.shape_signature")
            _indices([t.scalar(2, "<I")], max(len(buffers), 1), f"{t.what}.buffer")
            q = t.table(4, f"{t.what}.quantization")
            if q is not None:
                for i, (size, name) in enumerate(((4, "min"), (4, "max"), (4, "scale"), (8, "zero_point"))):
                    q.vector(i, size, f"{q.what}.{name}")
                q.table(5, f"{q.what}.details")
            t.table(6, f"{t.what}.sparsity")
            for v in t.tables(9, f"{t.what}.variant_tensors"):
                v.ints(0, f"{v.what}.shape")
        _indices(sub.ints(1, f"{where}.inputs"), len(tensors), f"{where}.inputs")
        _indices(sub.ints(2, f"{where}.outputs"), len(tensors), f"{where}.outputs")
        for op in sub.tables(3, f"{where}.operators"):
            _indices([op.scalar(0, "<I")], len(opcodes), f"{op.what}.opcode_index")
            for i, name in ((1, "inputs"), (2, "outputs"), (8, "intermediates")):
                _indices(op.ints(i, f"{op.what}.{name}"), len(tensors), f"{op.what}.{name}", optional=True)
            op.table(4, f"{op.what}.builtin_options")
            op.vector(5, 1, f"{op.what}.custom_options")
            op.vector(7, 1, f"{op.what}.mutating_variable_inputs")
            _external(r, op.scalar(9, "<Q"), op.scalar(10, "<Q"), f"{op.what}'s large custom options")
            op.table(12, f"{op.what}.builtin_options_2")
        sub.string(4, f"{where}.name")
    model.string(3, "the description")
    _indices(model.ints(5, "metadata_buffer"), len(buffers), "metadata_buffer")
    for meta in model.tables(6, "metadata"):
        meta.string(0, f"{meta.what}.name")
        _indices([meta.scalar(1, "<I")], len(buffers), f"{meta.what}.buffer")
    for sig in model.tables(7, "signature_defs"):
        for i, name in ((0, "inputs"), (1, "outputs")):
            for tm in sig.tables(i, f"{sig.what}.{name}"):
                tm.string(0, f"{tm.what}.name")
        sig.string(2, f"{sig.what}.signature_key")
        _indices([sig.scalar(4, "<I")], len(subgraphs), f"{sig.what}.subgraph_index")


def check_tflite(path: Path) -> None:
    """Raise TFLiteFileError (one line) unless ``path`` is a structurally sound TFLite FlatBuffer;
    NotTFLiteError (its subclass, message "empty" or "not a TensorFlow Lite model ...") when it is not one at all.

    OSError (missing, unreadable, a directory) propagates for the caller to word.
    """
    with path.open("rb") as f:
        head = f.read(8)
        if not head:
            raise NotTFLiteError("empty")
        if len(head) < 8 or head[4:8] != IDENTIFIER:
            raise NotTFLiteError("not a TensorFlow Lite model (no TFL3 identifier)")
        # mmap: only the offsets are touched, so a large model is not read into memory.
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _check_model(_Reader(data, len(data)))


__all__ = ["IDENTIFIER", "NotTFLiteError", "TFLiteFileError", "check_tflite"]
