"""What a generation did: per class requested, candidates drawn, kept, rejected per filter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class ClassReport:
    name: str
    requested: int
    candidates: int  # generated and judged, in index order, up to the last one kept
    kept: int
    rejected: dict[str, int]  # per filter: candidates it rejected (each counted by the first filter that did)
    near_copies: Optional[int]  # rejected by memorization; None when that filter is off
    truncation: Optional[float]  # the threshold used (None: no truncation)
    truncation_scores: Optional[dict[str, float]] = None  # --truncation auto: score per threshold tried


@dataclass
class GenerationReport:
    classes: list[ClassReport]
    checkpoint: Path
    checkpoint_sha256: str
    step: int
    ema: bool
    seed: int
    filters: list[dict[str, Any]]
    seconds: float
    out: Optional[Path] = None
    format: Optional[str] = None
    grids: Optional[Path] = None

    @property
    def kept(self) -> int:
        return sum(c.kept for c in self.classes)

    @property
    def candidates(self) -> int:
        return sum(c.candidates for c in self.classes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        out = asdict(self)
        for key in ("checkpoint", "out", "grids"):
            out[key] = None if out[key] is None else str(out[key])
        out["kept"], out["candidates"] = self.kept, self.candidates
        return out
