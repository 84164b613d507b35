"""Label encodings: multi-hot rows and one-hot classes of key combinations.

A label row is the session's ``actions.npy`` row of the label frame, restricted to (and ordered by) the
chosen actions. Multi-hot keeps the row as is: (A,) uint8, 1 = held. Combo turns it into one class index:
the row's set of held actions is looked up in a class table (class i = exactly ``classes[i]`` held;
``()`` = nothing held). The table is either the combinations observed in the data, or a given list such
as :data:`WASD9`; a row whose combination is not listed has no class (-1) and its window is dropped.

Rows are compared as bit masks (bit a = column a), so A is limited to :data:`MAX_ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.dataset.spec import Combo, DatasetError

MAX_ACTIONS = 62  # bits of an int64 mask, keeping the sign bit clear

WASD9: tuple[Combo, ...] = (
    (), ("w",), ("a",), ("s",), ("d",), ("w", "a"), ("w", "d"), ("s", "a"), ("s", "d"),
)
ARROWS9: tuple[Combo, ...] = (
    (), ("up",), ("left",), ("down",), ("right",),
    ("up", "left"), ("up", "right"), ("down", "left"), ("down", "right"),
)
PRESETS: dict[str, tuple[Combo, ...]] = {"wasd9": WASD9, "arrows9": ARROWS9}


def combo_name(combo: Sequence[str]) -> str:
    """'w+a' for ("w", "a"); 'none' for ()."""
    return "+".join(combo) or "none"


def parse_combo(text: str) -> Combo:
    """Inverse of :func:`combo_name`: 'w+a' -> ("w", "a"); 'none' or '' -> ()."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return ()
    return tuple(p.strip() for p in text.split("+"))


def parse_classes(text: str) -> tuple[Combo, ...]:
    """A preset name (wasd9, arrows9) or a comma-separated list of combinations ('none,w,a,w+a')."""
    key = text.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    return tuple(parse_combo(part) for part in text.split(","))


def masks(rows: np.ndarray) -> np.ndarray:
    """(N, A) 0/1 rows -> (N,) int64 bit masks (bit a set when column a is nonzero)."""
    if rows.shape[1] > MAX_ACTIONS:
        raise DatasetError(f"{rows.shape[1]} actions is more than {MAX_ACTIONS}; choose fewer with actions=")
    bits = np.left_shift(np.int64(1), np.arange(rows.shape[1], dtype=np.int64))
    return (rows != 0).astype(np.int64) @ bits if rows.shape[1] else np.zeros(rows.shape[0], np.int64)


def combo_of_mask(mask: int, actions: Sequence[str]) -> Combo:
    """The actions whose bits are set, in column order."""
    return tuple(a for i, a in enumerate(actions) if mask >> i & 1)


class ClassTable:
    """Classes of key combinations over ``actions``: lookup from row masks to class indices."""

    def __init__(self, classes: Sequence[Sequence[str] | str], actions: Sequence[str], min_classes: int = 2) -> None:
        """Validate ``classes`` against ``actions``: known names, no name twice in a class, no class twice,
        at least ``min_classes`` classes (a one-class model has nothing to decide). Raises DatasetError."""
        self.actions = tuple(actions)
        # A class may be spelt "w+a" / "none" as well as ("w", "a") / ().
        self.classes: tuple[Combo, ...] = tuple(parse_combo(c) if isinstance(c, str) else tuple(c) for c in classes)
        col = {a: i for i, a in enumerate(self.actions)}
        mask_list = []
        for c in self.classes:
            unknown = [a for a in c if a not in col]
            if unknown:
                raise DatasetError(
                    f"class {combo_name(c)!r} names {unknown[0]!r}, which is not one of the actions "
                    f"{', '.join(self.actions)}; fix the classes or choose the actions"
                )
            if len(set(c)) != len(c):
                raise DatasetError(f"class {combo_name(c)!r} names an action twice")
            mask_list.append(sum(1 << col[a] for a in c))
        self.masks = np.array(mask_list, np.int64)
        if len(set(mask_list)) != len(mask_list):
            raise DatasetError("a key combination appears twice in the classes; list each once")
        if len(self.classes) < min_classes:
            raise DatasetError(
                f"combo encoding needs at least {min_classes} classes, got {len(self.classes)} "
                f"({', '.join(map(combo_name, self.classes)) or 'none at all'}); list more classes, record "
                "more varied play, or use multihot"
            )
        self._order = np.argsort(self.masks)
        self._sorted = self.masks[self._order]

    @classmethod
    def observed(cls, row_masks: np.ndarray, actions: Sequence[str], min_classes: int = 2) -> ClassTable:
        """The combinations present in ``row_masks``, fewest keys first, then in column order
        (so 'none' comes first, then single keys, then pairs, ...)."""
        present = np.unique(row_masks).tolist()
        combos = sorted(
            (combo_of_mask(m, actions) for m in present),
            key=lambda c: (len(c), [actions.index(a) for a in c]),
        )
        return cls(combos, actions, min_classes)

    def lookup(self, row_masks: np.ndarray) -> np.ndarray:
        """(N,) int64 class index of each mask, -1 where the combination is not a class."""
        if not len(self._sorted):
            return np.full(row_masks.shape, -1, np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, row_masks), len(self._sorted) - 1)
        found = self._sorted[pos] == row_masks
        return np.where(found, self._order[pos], -1).astype(np.int64)

    @property
    def names(self) -> list[str]:
        return [combo_name(c) for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)


__all__ = [
    "ARROWS9",
    "MAX_ACTIONS",
    "PRESETS",
    "WASD9",
    "ClassTable",
    "combo_name",
    "combo_of_mask",
    "masks",
    "parse_classes",
    "parse_combo",
]
