"""What the results report shows: a small typed description that an experiment fills with job outputs.

The report only knows columns, curves, audio and alignments by name, so new metrics need no change here:
``rows[family][experiment][column]`` holds a ``tk.Variable`` (shown as "pending" until its job has set it), a
``tk.Path`` (a link once available), a plain number or string, or None (an empty cell).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Union

from ..data_prep.features import LogMelSettings
from ..sisyphus_api import tk

#: An audio source: ``audio_files.txt`` of a synthesis (``tag<TAB>file[<TAB>seconds]``, files relative to the
#: list), a corpus description ``*.json`` (real audio), or a list of audio files (tag = file name stem).
AudioSource = Union[tk.Path, Sequence[tk.Path]]


@dataclass
class ReportSpec:
    """Filled by the experiment (see ``default_experiment``), rendered by ``report.page.ReportWriter``.

    rows: family -> experiment -> column -> value; families and experiments keep their insertion order,
      columns their first appearance (or ``column_order`` first).
    curves: training name -> RETURNN ``learning_rates`` file (train/dev scores per epoch).
    audio: source name (e.g. "real", "resynthesis", a TTS model) -> AudioSource; the first source in this order
      that is available picks the utterances; spectrograms are drawn from the same utterances.
    alignments: name (e.g. "given", "MAS", "reference") -> durations HDF (frames per token).
    """

    title: str
    rows: Dict[str, Dict[str, Dict[str, Any]]] = field(default_factory=dict)
    column_order: List[str] = field(default_factory=list)
    curves: Dict[str, tk.Path] = field(default_factory=dict)
    audio: Dict[str, AudioSource] = field(default_factory=dict)
    alignments: Dict[str, tk.Path] = field(default_factory=dict)
    num_audio: int = 3
    log_mel: LogMelSettings = field(default_factory=LogMelSettings)
    notes: List[str] = field(default_factory=list)

    def add_row(self, family: str, experiment: str, columns: Mapping[str, Any]) -> None:
        """Add (or extend) one row. A nested dict value ``{"sWER": {"wer": v, "sub": s}}`` becomes the columns
        "sWER wer" and "sWER sub"."""
        row = self.rows.setdefault(family, {}).setdefault(experiment, {})
        row.update(flatten_columns(columns))

    def required_paths(self) -> List[Any]:
        """Every path the report shows (``tk.register_report``'s ``required``)."""
        values: List[Any] = [v for family in self.rows.values() for row in family.values() for v in row.values()]
        values += list(self.curves.values()) + list(self.alignments.values())
        for source in self.audio.values():
            values += list(source) if isinstance(source, (list, tuple)) else [source]
        return [v for v in values if isinstance(v, tk.AbstractPath) or hasattr(v, "is_set")]


def flatten_columns(columns: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, value in columns.items():
        full = f"{prefix} {name}" if prefix else str(name)
        if isinstance(value, Mapping):
            out.update(flatten_columns(value, full))
        else:
            out[full] = value
    return out
