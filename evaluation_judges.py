"""Builders for the independent judges of ``jobs/judges.py``: PocketSphinx WER, DNSMOS, Resemblyzer speaker
similarity, and NISQA where a user has its code and weights.

Every builder judges either real audio (a corpus description) or synthesised audio (``audio_files.txt`` of a
Griffin-Lim forward, turned into a corpus with the texts and speakers of the reference corpus). Called with the
same reference corpus, the real-audio jobs have the same hash for every model, so they run once and sit beside
every model's numbers as the ceiling: PocketSphinx' WER on the real audio, DNSMOS of the real audio, and the
speaker similarity of real audio to other real utterances of its speaker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from .jobs.evaluation import SynthesizedCorpusJob
from .jobs.judges import DnsmosJob, NisqaJob, PocketsphinxRecognitionJob, SpeakerSimilarityJob
from .jobs.scoring import CorpusToStmJob, ScliteJob, SearchWordsToCtmJob
from .sisyphus_api import tk


@dataclass(frozen=True)
class NisqaSetup:
    """Where a user keeps NISQA (not shipped by any package; weights licensed non-commercially).

    :param code_dir: the NISQA checkout holding ``run_predict.py``
    :param weights: a checkpoint, e.g. ``<code_dir>/weights/nisqa_tts.tar`` (TTS naturalness, as the original used)
    :param python: interpreter of an environment with NISQA's requirements (default: the one running the job)
    """

    code_dir: tk.Path
    weights: tk.Path
    python: Optional[tk.Path] = None


def judged_corpus(reference_corpus: tk.Path, audio_list: Optional[tk.Path] = None) -> tk.Path:
    """The corpus description to judge: ``reference_corpus`` itself (real audio) or, with ``audio_list``
    (``tag<TAB>file<TAB>seconds``), the synthesised audio with the reference texts and speakers."""
    if audio_list is None:
        return reference_corpus
    return SynthesizedCorpusJob(audio_list, reference_corpus).out_corpus


def _pocketsphinx_sclite(prefix: str, corpus: tk.Path, num_workers: int) -> Dict[str, tk.Variable]:
    words = PocketsphinxRecognitionJob(corpus, num_workers=num_workers).out_words
    sclite = ScliteJob(CorpusToStmJob(corpus).out_stm, SearchWordsToCtmJob(words, corpus).out_ctm, precision_ndigit=2)
    tk.register_output(f"{prefix}/wer", sclite.out_wer)
    tk.register_output(f"{prefix}/report", sclite.out_report_dir)
    return {"wer": sclite.out_wer, "sub": sclite.out_percent_substitution, "del": sclite.out_percent_deletions,
            "ins": sclite.out_percent_insertions, "ref_words": sclite.out_ref_words}


def pocketsphinx_wer(prefix: str, reference_corpus: tk.Path, audio_list: Optional[tk.Path] = None, *,
                     num_workers: int = 1) -> Dict[str, tk.Variable]:
    """PocketSphinx (bundled en-US model) WER of the judged audio, scored by sclite against the reference texts,
    with sub/del/ins in percent of the reference words; ``real_*`` are the same numbers for the real audio of the
    reference corpus, so every sWER has the recogniser's own real-audio WER beside it.

    Outputs under ``<prefix>/pocketsphinx/`` (judged) and ``<prefix>/pocketsphinx_real/`` (real audio).
    """
    result = _pocketsphinx_sclite(f"{prefix}/pocketsphinx", judged_corpus(reference_corpus, audio_list), num_workers)
    real = _pocketsphinx_sclite(f"{prefix}/pocketsphinx_real", reference_corpus, num_workers)
    result.update({f"real_{k}": v for k, v in real.items()})
    return result


def dnsmos(prefix: str, reference_corpus: tk.Path, audio_list: Optional[tk.Path] = None, *,
           utterances_per_speaker: Optional[int] = None) -> Dict[str, tk.Variable]:
    """Means over utterances of DNSMOS P.808 MOS (``p808_mos``) and P.835 ``sig`` / ``bak`` / ``ovrl`` of the judged
    audio (each speaker's first ``utterances_per_speaker`` utterances, None: all); per-utterance scores in
    ``<prefix>/dnsmos/dnsmos.csv``. DNSMOS rates noise-suppressed speech; it is not a TTS naturalness judge (see
    :func:`nisqa_mos`)."""
    job = DnsmosJob(judged_corpus(reference_corpus, audio_list), utterances_per_speaker=utterances_per_speaker)
    tk.register_output(f"{prefix}/dnsmos/dnsmos.csv", job.out_csv)
    result = {"p808_mos": job.out_p808_mos, "sig": job.out_sig, "bak": job.out_bak, "ovrl": job.out_ovrl}
    for key, var in result.items():
        tk.register_output(f"{prefix}/dnsmos/{key}", var)
    return result


def speaker_similarity(prefix: str, reference_corpus: tk.Path,
                       audio_list: Optional[tk.Path] = None) -> Dict[str, tk.Variable]:
    """Resemblyzer cosine of the judged audio to real utterances of the same speaker (``same_speaker``, the real
    recording of the same seq tag excluded) and of other speakers (``different_speaker``), and their
    ``difference``; per-utterance values in ``<prefix>/speaker_similarity/speaker_similarity.csv``. Without
    ``audio_list`` the real audio is judged against itself: the ceiling."""
    job = SpeakerSimilarityJob(judged_corpus(reference_corpus, audio_list), reference_corpus)
    tk.register_output(f"{prefix}/speaker_similarity/speaker_similarity.csv", job.out_csv)
    result = {"same_speaker": job.out_same_speaker, "different_speaker": job.out_different_speaker,
              "difference": job.out_difference}
    for key, var in result.items():
        tk.register_output(f"{prefix}/speaker_similarity/{key}", var)
    return result


def nisqa_mos(prefix: str, reference_corpus: tk.Path, audio_list: Optional[tk.Path] = None,
              nisqa: Optional[NisqaSetup] = None) -> Dict[str, tk.Variable]:
    """NISQA MOS (``mos``) of the judged audio where the user has NISQA (``nisqa``); with ``nisqa=None`` nothing
    enters the graph and the result is empty."""
    if nisqa is None:
        return {}
    job = NisqaJob(judged_corpus(reference_corpus, audio_list), nisqa.code_dir, nisqa.weights, nisqa.python)
    tk.register_output(f"{prefix}/nisqa/nisqa.csv", job.out_csv)
    tk.register_output(f"{prefix}/nisqa/mos", job.out_mos)
    return {"mos": job.out_mos}


def judge_audio(prefix: str, reference_corpus: tk.Path, audio_list: Optional[tk.Path] = None, *,
                speakers: bool = True, nisqa: Optional[NisqaSetup] = None, pocketsphinx: bool = True,
                dnsmos_utterances_per_speaker: Optional[int] = None,
                num_workers: int = 1) -> Dict[str, tk.Variable]:
    """All judges of one audio set (a TTS model's, a resynthesis control's, or with ``audio_list=None`` the real
    audio) as one flat dict: ``pocketsphinx_{wer,sub,del,ins,ref_words}``, ``pocketsphinx_real_*``,
    ``dnsmos_{p808_mos,sig,bak,ovrl}``, ``speaker_{same_speaker,different_speaker,difference}`` (when
    ``speakers``; needs at least two speakers with two utterances each in the reference corpus) and ``nisqa_mos``
    (when ``nisqa`` is given). ``pocketsphinx=False`` leaves pocketsphinx out (see
    ``ExperimentSetup.pocketsphinx_on_synthesis``); ``dnsmos_utterances_per_speaker`` limits DNSMOS to each
    speaker's first utterances (``ExperimentSetup.dnsmos_utterances_per_speaker``)."""
    result: Dict[str, tk.Variable] = {}
    for name, values in (("pocketsphinx", pocketsphinx_wer(prefix, reference_corpus, audio_list,
                                                           num_workers=num_workers) if pocketsphinx else {}),
                         ("dnsmos", dnsmos(prefix, reference_corpus, audio_list,
                                           utterances_per_speaker=dnsmos_utterances_per_speaker)),
                         ("speaker", speaker_similarity(prefix, reference_corpus, audio_list) if speakers else {}),
                         ("nisqa", nisqa_mos(prefix, reference_corpus, audio_list, nisqa))):
        result.update({f"{name}_{k}": v for k, v in values.items()})
    return result
