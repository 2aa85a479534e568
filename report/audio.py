"""Audio of the report: which files a source holds, which utterances to show, copies next to the page."""
from __future__ import annotations

import os
import shutil
from typing import Dict, List, Sequence

from .spec import AudioSource


class AudioSourceError(ValueError):
    """An audio list or corpus description that cannot be read."""


def source_available(source: AudioSource) -> bool:
    paths = list(source) if isinstance(source, (list, tuple)) else [source]
    return bool(paths) and all(p.available() for p in paths)


def read_source(source: AudioSource) -> Dict[str, str]:
    """seq tag -> absolute audio file of an available source (see ``spec.AudioSource``)."""
    if isinstance(source, (list, tuple)):
        files = [p.get_path() for p in source]
        return {os.path.splitext(os.path.basename(f))[0]: f for f in files}
    path = source.get_path()
    if path.endswith(".json") or path.endswith(".json.gz"):
        from ..data_prep.corpus import load_corpus_json

        return {e.seq_tag: e.audio for e in load_corpus_json(path)}
    files: Dict[str, str] = {}
    with open(path, encoding="utf8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                raise AudioSourceError(f"{path}:{number}: expected 'tag<TAB>file[<TAB>seconds]', got {line!r}")
            files[parts[0]] = os.path.join(os.path.dirname(path), parts[1])  # relative files: next to the list
    return files


def choose_utterances(sources: Dict[str, Dict[str, str]], order: Sequence[str], count: int) -> List[str]:
    """The first ``count`` tags (sorted) of the first source in ``order`` that is read; stable while more
    sources become available."""
    for name in order:
        if name in sources and sources[name]:
            return sorted(sources[name])[:count]
    return []


def copy_if_changed(source: str, target: str) -> bool:
    """Copy with its modification time; skipped when the target already has the same size and time."""
    try:
        src, dst = os.stat(source), os.stat(target)
        if src.st_size == dst.st_size and int(src.st_mtime) == int(dst.st_mtime):
            return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(source, target + ".tmp")
    os.replace(target + ".tmp", target)
    return True


def remove_stale(directory: str, keep: Sequence[str]) -> None:
    """Delete files under ``directory`` that the page no longer refers to (e.g. after the utterances changed)."""
    keep_set = {os.path.abspath(k) for k in keep}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.abspath(os.path.join(root, name))
            if path not in keep_set:
                os.remove(path)

