"""Word error rates with NIST sclite (Debian ``sctk``), from recognition output and a corpus description.

The references come from the corpus JSON written by ``data_prep`` and the hypotheses from the
``search_out.py`` dict (``{seq_tag: "WORDS"}``) that the ASR forward writes, as i6_core's
CorpusToStmJob / SearchWordsToCTMJob / ScliteJob do for Bliss corpora.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional

from ..sisyphus_api import Job, Task, tk

SCTK_LOCATIONS = ("/usr/lib/sctk/bin", "/usr/bin", "/usr/local/bin")


def recording_name(seq_tag: str) -> str:
    """sclite matches stm and ctm by recording name; slashes would be read as paths."""
    return seq_tag.replace("/", "_")


def find_sclite(sctk_binary_path: Optional[tk.Path]) -> str:
    if sctk_binary_path is not None:
        return os.path.join(sctk_binary_path.get_path(), "sclite")
    found = shutil.which("sclite")
    if found:
        return found
    for directory in SCTK_LOCATIONS:
        candidate = os.path.join(directory, "sclite")
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("sclite not found: install Debian's sctk (scripts/setup_env.sh does) or pass sctk_binary_path")


def _read_corpus(path: str):
    from ..data_prep.corpus import load_corpus_json

    return load_corpus_json(path)


class CorpusToStmJob(Job):
    """Reference transcriptions as an stm file (one segment per utterance)."""

    def __init__(self, corpus_file: tk.Path):
        self.corpus_file = corpus_file
        self.out_stm = self.output_path("corpus.stm")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        entries = _read_corpus(self.corpus_file.get_path())
        with open(self.out_stm.get_path(), "w") as f:
            f.write(';; LABEL "o" "overall" "all segments"\n')
            for e in sorted(entries, key=lambda e: recording_name(e.seq_tag)):
                f.write(f"{recording_name(e.seq_tag)} 1 {e.speaker} 0.00 {e.duration:.2f} <o> {e.text}\n")


def read_search_output(path: str) -> Dict[str, str]:
    """A ``search_out.py`` dict ``{seq_tag: "WORDS"}``, read as data (``ast.literal_eval``), never executed."""
    with open(path, encoding="utf8") as f:
        text = f.read()
    try:
        hyps = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"search output {path} is not a Python dict literal ({exc})") from None
    if not isinstance(hyps, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in hyps.items()):
        raise ValueError(f"search output {path} must be a dict {{seq_tag: 'WORDS'}}, got {type(hyps).__name__}")
    return hyps


class SearchWordsToCtmJob(Job):
    """Recognised words (``{seq_tag: "WORDS"}``) as a ctm file, words spread evenly over each utterance."""

    def __init__(self, recog_words_file: tk.Path, corpus_file: tk.Path):
        self.recog_words_file = recog_words_file
        self.corpus_file = corpus_file
        self.out_ctm = self.output_path("search.ctm")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        hyps = read_search_output(self.recog_words_file.get_path())
        entries = _read_corpus(self.corpus_file.get_path())
        missing = [e.seq_tag for e in entries if e.seq_tag not in hyps]
        if missing:
            raise KeyError(f"{self.recog_words_file.get_path()} has no hypothesis for {len(missing)} sequence(s), "
                           f"e.g. {missing[:5]}")
        with open(self.out_ctm.get_path(), "w") as f:
            f.write(";; <name> <track> <start> <duration> <word> <confidence>\n")
            for e in sorted(entries, key=lambda e: recording_name(e.seq_tag)):
                words: List[str] = hyps[e.seq_tag].split()
                step = e.duration / max(1, len(words))
                for i, word in enumerate(words):
                    f.write(f"{recording_name(e.seq_tag)} 1 {i * step:.3f} {step:.3f} {word} 1.00\n")


class ScliteJob(Job):
    __sis_hash_exclude__ = {"sctk_binary_path": None, "precision_ndigit": 1}

    def __init__(self, ref: tk.Path, hyp: tk.Path, cer: bool = False, sort_files: bool = False,
                 additional_args: Optional[List[str]] = None, sctk_binary_path: Optional[tk.Path] = None,
                 precision_ndigit: int = 1):
        self.ref = ref
        self.hyp = hyp
        self.cer = cer
        self.sort_files = sort_files
        self.additional_args = additional_args
        self.sctk_binary_path = sctk_binary_path
        self.precision_ndigit = precision_ndigit
        self.out_report_dir = self.output_path("reports", directory=True)
        self.out_wer = self.output_var("wer")
        self.out_num_errors = self.output_var("num_errors")
        self.out_percent_correct = self.output_var("percent_correct")
        self.out_ref_words = self.output_var("ref_words")
        self.out_hyp_words = self.output_var("hyp_words")
        self.out_percent_substitution = self.output_var("percent_substitution")
        self.out_percent_deletions = self.output_var("percent_deletions")
        self.out_percent_insertions = self.output_var("percent_insertions")
        self.out_num_substitutions = self.output_var("num_substitutions")
        self.out_num_deletions = self.output_var("num_deletions")
        self.out_num_insertions = self.output_var("num_insertions")
        self.out_num_words = self.output_var("num_words")  # reference words, the WER's denominator

    def tasks(self):
        yield Task("run", resume="run", mini_task=True)

    def run(self) -> None:
        cmd = [find_sclite(self.sctk_binary_path), "-r", self.ref.get_path(), "stm", "-h", self.hyp.get_path(), "ctm",
               "-o", "all", "-o", "dtl", "-o", "lur", "-n", "sclite", "-O", self.out_report_dir.get_path()]
        if self.cer:
            cmd.append("-c")
        cmd += list(self.additional_args or [])
        subprocess.check_call(cmd, stdout=subprocess.DEVNULL)
        counts = parse_sclite_dtl(os.path.join(self.out_report_dir.get_path(), "sclite.dtl"))
        ref_words = counts["ref_words"]
        errors = counts["substitutions"] + counts["deletions"] + counts["insertions"]

        def percent(n: int) -> float:
            return round(100.0 * n / ref_words, self.precision_ndigit) if ref_words else 0.0

        self.out_wer.set(percent(errors))
        self.out_num_errors.set(errors)
        self.out_percent_correct.set(percent(counts["correct"]))
        self.out_ref_words.set(ref_words)
        self.out_hyp_words.set(counts["hyp_words"])
        self.out_percent_substitution.set(percent(counts["substitutions"]))
        self.out_percent_deletions.set(percent(counts["deletions"]))
        self.out_percent_insertions.set(percent(counts["insertions"]))
        self.out_num_substitutions.set(counts["substitutions"])
        self.out_num_deletions.set(counts["deletions"])
        self.out_num_insertions.set(counts["insertions"])
        self.out_num_words.set(ref_words)


@dataclass(frozen=True)
class WerResult:
    """A WER with its error counts (all ``tk.Variable``s of one :class:`ScliteJob`), and for synthesised audio the
    ratio of synthesised to real duration (:class:`~.evaluation.SynthesisLengthRatioJob`), so no WER is read
    without what it consists of."""

    wer: tk.Variable  # percent
    substitutions: tk.Variable
    deletions: tk.Variable
    insertions: tk.Variable
    words: tk.Variable  # reference words
    report_dir: tk.Path
    length_ratio: Optional[tk.Variable] = None  # total synthesised / total real seconds (sWER only)
    mean_length_ratio: Optional[tk.Variable] = None  # mean over utterances of synthesised / real (sWER only)

    @classmethod
    def from_sclite(cls, job: "ScliteJob") -> "WerResult":
        return cls(job.out_wer, job.out_num_substitutions, job.out_num_deletions, job.out_num_insertions,
                   job.out_num_words, job.out_report_dir)

    def variables(self) -> Dict[str, tk.Variable]:
        """The figures by name (``wer``, ``sub``, ``del``, ``ins``, ``words`` and, for sWER, ``length_ratio``,
        ``mean_length_ratio``), e.g. for a report."""
        values = {"wer": self.wer, "sub": self.substitutions, "del": self.deletions, "ins": self.insertions,
                  "words": self.words}
        if self.length_ratio is not None:
            values["length_ratio"] = self.length_ratio
        if self.mean_length_ratio is not None:
            values["mean_length_ratio"] = self.mean_length_ratio
        return values


_DTL_FIELDS = {
    "Percent Correct": "correct",
    "Percent Substitution": "substitutions",
    "Percent Deletions": "deletions",
    "Percent Insertions": "insertions",
    "Ref. words": "ref_words",
    "Hyp. words": "hyp_words",
}


def parse_sclite_dtl(path: str) -> Dict[str, int]:
    """Absolute counts from sclite's detailed report (the percentages there have one fixed digit)."""
    counts: Dict[str, int] = {}
    with open(path, errors="replace") as f:
        for line in f:
            for label, key in _DTL_FIELDS.items():
                if line.startswith(label) and key not in counts:
                    match = re.search(r"\(\s*(\d+)\s*\)", line)
                    if match:
                        counts[key] = int(match.group(1))
    missing = set(_DTL_FIELDS.values()) - set(counts)
    if missing:
        raise ValueError(f"{path}: sclite report lacks {sorted(missing)}")
    return counts


class FilterCorpusJob(Job):
    """The entries of a corpus description whose seq tags are listed in a segment file (e.g. the TTS-CV split)."""

    def __init__(self, corpus_file: tk.Path, segment_file: tk.Path):
        self.corpus_file = corpus_file
        self.segment_file = segment_file
        self.out_corpus = self.output_path("corpus.json")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        from ..data_prep.corpus import write_derived_corpus_json

        with open(self.segment_file.get_path()) as f:
            keep = {line.strip() for line in f if line.strip()}
        entries = [e for e in _read_corpus(self.corpus_file.get_path()) if e.seq_tag in keep]
        found = {e.seq_tag for e in entries}
        if keep - found:
            raise KeyError(f"{self.segment_file.get_path()}: {len(keep - found)} segment(s) not in "
                           f"{self.corpus_file.get_path()}, e.g. {sorted(keep - found)[:5]}")
        write_derived_corpus_json(self.out_corpus.get_path(), self.corpus_file.get_path(), entries)
