"""Writes ``report/``: ``results.md`` (returned to ``tk.register_report``, which writes it), ``results.csv``,
``index.html`` with plots and audio players, ``plots/`` and ``audio/``.

Called every time the manager updates reports, with whatever results exist: unfinished values show as
"pending", figures appear once their inputs exist. A figure is re-drawn only when the files it is drawn from
changed (fingerprints in ``.render_cache.json``), so a rebuild without news costs a few ``stat`` calls.
The page uses relative links only and no external JS/CSS/fonts, so it works opened from disk.
"""
from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import audio as audio_mod
from . import plots
from . import wall_times
from .environment import describe_environment
from .spec import ReportSpec
from .tables import build_tables, count_pending, to_csv, to_html, to_markdown

log = logging.getLogger(__name__)
e = html.escape

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td { text-align: right; font-variant-numeric: tabular-nums; }
tbody th { text-align: left; font-weight: normal; font-family: monospace; }
thead th { background: #f0f0f0; }
td.pending { color: #a60; font-style: italic; } td.error { color: #b00; }
p.pending { color: #a60; font-style: italic; } p.error { color: #b00; white-space: pre-wrap; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
audio { width: 16em; }
ul.environment { font-size: 0.85em; color: #555; }
"""


def slug(name: str) -> str:
    """A file-name-safe, unique name: readable part plus a short hash of the full name."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.")[:60] or "x"
    return f"{readable}-{hashlib.sha1(name.encode('utf8')).hexdigest()[:6]}"


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _code_version() -> str:
    """Figures are redrawn when the drawing code changed, not only their inputs."""
    with open(plots.__file__, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()[:12]


_CODE_VERSION = _code_version()


def _fingerprint(files: Sequence[str], extra: Any = None) -> List[Any]:
    out: List[Any] = [_CODE_VERSION, repr(extra)]
    for f in files:
        try:
            st = os.stat(f)
            out.append([f, st.st_mtime_ns, st.st_size])
        except FileNotFoundError:
            out.append([f, None, None])
    return out


class RenderCache:
    """Remembers from which input files each figure was drawn; persisted, so a restarted manager redraws nothing.

    ``deadline`` (a ``time.monotonic()`` value) bounds the drawing time of one report update, so a first report
    of a large run (a hundred training curves) does not hold the manager up; the rest is drawn next time.
    """

    FRESH, DRAWN, DEFERRED = "fresh", "drawn", "deferred"

    def __init__(self, path: str):
        self.path = path
        self.deadline: Optional[float] = None
        try:
            with open(path) as f:
                self.entries: Dict[str, Any] = json.load(f)
        except (OSError, ValueError):
            self.entries = {}

    def render(self, out_file: str, inputs: Sequence[str], extra: Any, draw: Callable[[], None]) -> str:
        """Run ``draw`` unless ``out_file`` exists and was drawn from the same inputs (or time is up)."""
        key = os.path.basename(out_file)
        fingerprint = _fingerprint(inputs, extra)
        if os.path.exists(out_file) and self.entries.get(key) == fingerprint:
            return self.FRESH
        if self.deadline is not None and time.monotonic() > self.deadline:
            return self.DEFERRED
        draw()
        self.entries[key] = fingerprint
        _write_text(self.path, json.dumps(self.entries, indent=0))
        return self.DRAWN


class ReportWriter:
    """The callable given to ``tk.register_report``: writes the page and returns the Markdown tables."""

    def __init__(self, spec: ReportSpec, report_dir: str, max_draw_seconds: float = 10.0):
        self.spec = spec
        self.report_dir = report_dir
        self.max_draw_seconds = max_draw_seconds
        self.environment = describe_environment()
        self.cache = RenderCache(os.path.join(report_dir, ".render_cache.json"))
        self._tag_memo: Optional[tuple] = None

    def __call__(self) -> str:
        return self.write()

    # ------------------------------------------------------------------ whole report
    def write(self) -> str:
        os.makedirs(self.report_dir, exist_ok=True)
        complete = all(v.available() if hasattr(v, "available") else v.is_set()
                       for v in self.spec.required_paths())
        # while results arrive, drawing time per update is bounded; the final report is drawn in full
        self.cache.deadline = None if complete else time.monotonic() + self.max_draw_seconds
        tables = build_tables(self.spec)
        pending = count_pending(tables)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        status = f"Written {stamp}; {pending} value(s) pending." if pending else f"Written {stamp}; complete."
        markdown = "\n".join([f"# {self.spec.title}", "", status, "", *self.spec.notes, "",
                              *(f"- {line}" for line in self.environment), "", "Plots and audio: [index.html](index.html)", "",
                              to_markdown(tables, self.report_dir), "", self._wall_times_markdown()])
        _write_text(os.path.join(self.report_dir, "results.csv"), to_csv(tables))
        sections = [("results", "Results", "\n".join(f"<h3>{e(t.family)}</h3>\n{to_html(t, self.report_dir)}"
                                                     for t in tables) or "<p>No results registered.</p>")]
        for anchor, title, build in (("curves", "Training curves", self._curves_section),
                                     ("audio", "Audio and spectrograms", self._audio_section),
                                     ("alignments", "Alignments and durations", self._alignment_section),
                                     ("walltimes", "Job wall times", self._wall_times_section)):
            sections.append((anchor, title, self._guarded(title, build)))
        _write_text(os.path.join(self.report_dir, "index.html"), self._page(status, sections))
        return markdown + "\n"

    def _wall_times(self) -> "wall_times.WallTimes":
        from ..sisyphus_api import gs

        return wall_times.summarize(wall_times.collect_task_times(os.path.join(gs.BASE_DIR, gs.WORK_DIR)))

    def _wall_times_markdown(self) -> str:
        try:
            return wall_times.markdown_section(self._wall_times())
        except (OSError, ValueError) as exc:
            log.warning("job wall times failed: %s", exc)
            return f"## Job wall times\n\nnot available: {exc}\n"

    def _wall_times_section(self) -> str:
        wall = self._wall_times()
        rows = "".join(f"<tr><td>{e(job)}</td><td>{e(wall_times.format_duration(sec))}</td><td>{sec:.1f}</td></tr>"
                       for job, sec, _ in wall.jobs)
        return (f"<p>{len(wall.jobs)} finished jobs; summed task time {e(wall_times.format_duration(wall.total_s))}; "
                f"span from the first start to the last end {e(wall_times.format_duration(wall.span_s))}.</p>\n"
                f"<table><thead><tr><th>job</th><th>wall time</th><th>s</th></tr></thead><tbody>{rows}</tbody></table>")

    def _guarded(self, title: str, build: Callable[[], str]) -> str:
        try:
            return build()
        except Exception as exc:  # noqa: BLE001  (shown on the page and logged; the manager keeps running)
            log.warning("report section %r failed", title, exc_info=True)
            return f'<p class="error">{e(title)} could not be drawn: {e(type(exc).__name__)}: {e(str(exc))}</p>'

    def _page(self, status: str, sections: List[tuple]) -> str:
        nav = " ".join(f'<a href="#{a}">{e(t)}</a>' for a, t, _ in sections)
        notes = "".join(f"<p>{e(n)}</p>" for n in self.spec.notes)
        notes += '<ul class="environment">' + "".join(f"<li>{e(line)}</li>" for line in self.environment) + "</ul>"
        body = "\n".join(f'<section id="{a}">\n<h2>{e(t)}</h2>\n{content}\n</section>' for a, t, content in sections)
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(self.spec.title)}'
                f"</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{e(self.spec.title)}</h1>\n"
                f'<p id="status">{e(status)} Reload the page to update.</p>\n{notes}\n<nav>{nav}</nav>\n{body}\n'
                "</body>\n</html>\n")

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.report_dir)

    def _figure(self, png: str, caption: str, status: str = RenderCache.FRESH) -> str:
        if status == RenderCache.DEFERRED and not os.path.exists(png):
            return f'<p class="pending">{e(caption)}: drawn at the next update</p>'
        return (f'<figure><img src="{e(self._rel(png))}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>")

    # ------------------------------------------------------------------ training curves
    def _curves_section(self) -> str:
        from ..jobs.learning_rates import read_learning_rates_file

        parts = []
        for name, path in self.spec.curves.items():
            file = path.get_path()
            if not os.path.exists(file):
                parts.append(f'<p class="pending">{e(name)}: pending (no epoch finished yet)</p>')
                continue
            png = os.path.join(self.report_dir, "plots", f"curves_{slug(name)}.png")
            epochs = read_learning_rates_file(file)
            if not any(entry.scores for entry in epochs.values()):
                parts.append(f'<p class="pending">{e(name)}: pending (no scores yet)</p>')
                continue
            status = self.cache.render(png, [file], "curves", lambda: plots.plot_training_curves(name, epochs, png))
            running = "" if path.available() else f" (training running: {max(epochs)} epoch(s) so far)"
            parts.append(self._figure(png, f"{name}{running}", status))
        return "\n".join(parts) or "<p>No trainings registered.</p>"

    # ------------------------------------------------------------------ audio
    def _audio_section(self) -> str:
        spec = self.spec
        if not spec.audio:
            return "<p>No audio registered.</p>"
        sources: Dict[str, Dict[str, str]] = {}
        notes = []
        for name, source in spec.audio.items():
            if audio_mod.source_available(source):
                try:
                    sources[name] = audio_mod.read_source(source)
                except (OSError, ValueError) as exc:
                    notes.append(f'<p class="error">{e(name)}: {e(str(exc))}</p>')
        tags = audio_mod.choose_utterances(sources, list(spec.audio), spec.num_audio)
        audio_dir = os.path.join(self.report_dir, "audio")
        copied: List[str] = []
        rows = []
        for name in spec.audio:  # one row per source, one column per utterance
            cells = []
            for tag in tags:
                if name not in sources:
                    cells.append('<td class="pending">pending</td>')
                    continue
                original = sources[name].get(tag)
                if original is None or not os.path.exists(original):
                    cells.append('<td class="missing">&mdash;</td>')
                    continue
                target = os.path.join(audio_dir, slug(name), slug(tag) + os.path.splitext(original)[1])
                audio_mod.copy_if_changed(original, target)
                copied.append(target)
                cells.append(f'<td><audio controls preload="metadata" src="{e(self._rel(target))}"></audio></td>')
            rows.append(f"<tr><th>{e(name)}</th>{''.join(cells)}</tr>")
        audio_mod.remove_stale(audio_dir, copied)
        head = "".join(f"<th>{e(tag)}</th>" for tag in tags)
        table = (f'<table class="audio"><thead><tr><th>audio</th>{head}</tr></thead>'
                 f"<tbody>{''.join(rows)}</tbody></table>") if tags else '<p class="pending">No audio yet.</p>'
        return "\n".join(notes + [table, self._spectrograms(sources, tags)])

    def _spectrograms(self, sources: Dict[str, Dict[str, str]], tags: List[str]) -> str:
        if not tags:
            return ""
        tag = tags[0]
        files = [(name, sources[name][tag]) for name in self.spec.audio
                 if name in sources and tag in sources[name] and os.path.exists(sources[name][tag])]
        png = os.path.join(self.report_dir, "plots", "spectrograms.png")
        status = self.cache.render(png, [f for _, f in files],
                                   ("spectrograms", tag, [n for n, _ in files], self.spec.log_mel),
                                   lambda: plots.plot_spectrograms(tag, files, self.spec.log_mel, png))
        return self._figure(png, f"log-mel spectrograms of {tag} (the project's front end)", status)

    # ------------------------------------------------------------------ alignments
    def _alignment_section(self) -> str:
        from ..data_prep import hdf

        import numpy as np

        if not self.spec.alignments:
            return "<p>No alignments registered.</p>"
        available = {name: p.get_path() for name, p in self.spec.alignments.items() if p.available()}
        pending = [name for name in self.spec.alignments if name not in available]
        parts = [f'<p class="pending">{e(", ".join(pending))}: pending</p>'] if pending else []
        if not available:
            return "\n".join(parts)
        files = list(available.values())
        path_png = os.path.join(self.report_dir, "plots", "alignment_path.png")
        hist_png = os.path.join(self.report_dir, "plots", "durations.png")
        loaded: Dict[str, Dict[str, Any]] = {}

        def load() -> Dict[str, Dict[str, Any]]:
            if not loaded:
                loaded.update({name: hdf.read_all(f, f"{name} durations") for name, f in available.items()})
            return loaded

        tag = self._alignment_tag(available)
        if tag is None:
            return "\n".join(parts + ['<p class="pending">The alignments hold no utterances yet.</p>'])

        def draw_path() -> None:
            data = load()
            plots.plot_alignment_paths(tag, [(n, data[n][tag]) for n in available if tag in data[n]], path_png)

        def draw_hist() -> None:
            data = load()
            plots.plot_duration_histograms(
                [(n, np.concatenate([np.asarray(d).reshape(-1) for d in data[n].values()])
                  if data[n] else np.zeros(0)) for n in available], hist_png)

        names = list(available)
        path_status = self.cache.render(path_png, files, ("path", tag, names), draw_path)
        hist_status = self.cache.render(hist_png, files, ("hist", names), draw_hist)
        parts.append(self._figure(path_png, f"alignment paths of {tag}: " + ", ".join(names), path_status))
        parts.append(self._figure(hist_png, "durations (frames per token) over all utterances", hist_status))
        return "\n".join(parts)

    def _alignment_tag(self, available: Dict[str, str]) -> Optional[str]:
        """The first tag (sorted) that all available alignments have, else the first of the first one
        (remembered while the files stay the same)."""
        from ..data_prep import hdf

        fingerprint = _fingerprint(list(available.values()), list(available))
        if self._tag_memo is None or self._tag_memo[0] != fingerprint:
            tag_sets = [set(hdf.read_seq_lengths(f, f"{n} durations")) for n, f in available.items()]
            common = set.intersection(*tag_sets)
            self._tag_memo = (fingerprint, min(common) if common else min(tag_sets[0]) if tag_sets[0] else None)
        return self._tag_memo[1]
