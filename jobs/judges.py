"""Independent judges of speech audio whose models ship inside their PyPI wheels; nothing is downloaded at run time.

Why: the project's own sWER recogniser was trained by this project, on the same corpus, by the same front end; a
judge that no experiment trained tells whether a TTS model got better or only closer to that recogniser. Every job
reads a corpus description (``data_prep/corpus.py``: seq tag, audio path, text, speaker); synthesised audio gets one
from ``jobs/evaluation.SynthesizedCorpusJob`` (``audio_files.txt`` + the reference corpus), so real, resynthesised and
synthesised audio are judged by the same code.

What each judge proxies, plainly:

- :class:`PocketsphinxRecognitionJob`: CMU PocketSphinx 5 with the en-US continuous acoustic model, the generic
  en-US trigram LM and CMUdict that are inside the ``pocketsphinx`` wheel (``pocketsphinx/model/en-us``). A weak,
  old recogniser (GMM-HMM, trained on broadcast/read US English, not on LibriSpeech): its absolute WER on real
  LibriSpeech is high, so read its sWER only next to its WER on the real audio of the same utterances.
- :class:`DnsmosJob`: Microsoft DNSMOS (P.808 MOS and the P.835 SIG/BAK/OVRL heads), the ONNX models inside the
  ``speechmos`` wheel (``speechmos/dnsmos_models``), run with onnxruntime. DNSMOS was trained to rate *noise
  suppression* output (background noise, speech distortion), not TTS naturalness. It is **not** NISQA-TTS, whose
  naturalness model the original used; NISQA's weights are licensed non-commercially and no package ships them.
  :class:`NisqaJob` runs NISQA where a user has its code and weights.
- :class:`SpeakerSimilarityJob`: the Resemblyzer d-vector speaker encoder (GE2E, VoxCeleb/LibriSpeech-trained;
  ``resemblyzer/pretrained.pt`` inside the ``resemblyzer`` wheel). Cosine similarity of d-vectors proxies "sounds
  like the same speaker"; it is insensitive to many artefacts a listener would notice.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import os
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..sisyphus_api import Job, Task, tk

JUDGE_SAMPLE_RATE = 16000  # all three judges' models work on 16 kHz audio


def _load_corpus(path: str):
    from ..data_prep.corpus import load_corpus_json

    entries = load_corpus_json(path)
    if not entries:
        raise ValueError(f"corpus {path} holds no utterances")
    return entries


def load_audio_16k(path: str, seq_tag: str) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at 16 kHz (resampled with librosa if the file has another rate)."""
    import soundfile

    try:
        audio, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as exc:
        raise ValueError(f"cannot read audio {path} of sequence {seq_tag}: {exc}") from exc
    if audio.shape[1] != 1:
        raise ValueError(f"audio {path} of sequence {seq_tag} has {audio.shape[1]} channels, expected mono")
    audio = audio[:, 0]
    if audio.size == 0:
        raise ValueError(f"audio {path} of sequence {seq_tag} is empty")
    if sample_rate != JUDGE_SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=JUDGE_SAMPLE_RATE).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def _write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with open(path, "w", newline="", encoding="utf8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------------------------------- pocketsphinx

_PRONUNCIATION_VARIANT = re.compile(r"\(\d+\)$")


def normalize_words(text: str) -> str:
    """The corpus' word form: upper-case words separated by single spaces.

    Corpus texts already have it (``data_prep/corpus.py`` upper-cases LibriSpeech transcripts), so this is the
    identity on references; on PocketSphinx output it upper-cases, drops fillers (``<s>``, ``<sil>``, ``[NOISE]``)
    and pronunciation-variant marks (``read(2)`` -> ``READ``). Apostrophes stay, as in both LibriSpeech and CMUdict.
    """
    words = []
    for word in text.split():
        if word.startswith("<") or word.startswith("["):
            continue
        words.append(_PRONUNCIATION_VARIANT.sub("", word).upper())
    return " ".join(words)


def pocketsphinx_model_dir() -> str:
    """``pocketsphinx/model/en-us`` inside the installed wheel (acoustic model ``en-us/``, ``en-us.lm.bin``,
    ``cmudict-en-us.dict``)."""
    from pocketsphinx import get_model_path

    model_dir = os.path.join(get_model_path(), "en-us")
    for name in ("en-us", "en-us.lm.bin", "cmudict-en-us.dict"):
        if not os.path.exists(os.path.join(model_dir, name)):
            raise FileNotFoundError(f"pocketsphinx wheel lacks its bundled model file {os.path.join(model_dir, name)}")
    return model_dir


@dataclass(frozen=True)
class PocketsphinxSearch:
    """Search limits of the PocketSphinx decoder (its ``-beam``, ``-wbeam``, ``-pbeam``, ``-maxhmmpf``, ``-maxwpf``).

    Why not its defaults (beam 1e-48, 30,000 active HMMs per frame, no word limit): on unintelligible synthetic audio
    no hypothesis dominates, so the default search keeps tens of thousands of HMMs alive and takes ~30 s per
    utterance (~10 CPU minutes per 112 utterances) - too slow to judge every TTS model on a laptop. Measured on 32
    real utterances of the embedded corpus (8 voices): the defaults 63.8 % WER in 650 s, these limits 69.9 % in 113 s;
    tighter ones (beam 1e-30, 1,500 HMMs, 5 words per frame) 81.9 %. They apply to every audio the judge hears (real,
    resynthesised, synthesised), so its sWER and its real-audio WER stay comparable."""

    beam: float = 1e-40
    wbeam: float = 1e-25
    pbeam: float = 1e-40
    maxhmmpf: int = 3000
    maxwpf: int = 10

    def decoder_options(self) -> Dict[str, float]:
        return dataclasses.asdict(self)


_DECODER = None


def _init_decoder(search: Optional[PocketsphinxSearch] = None) -> None:
    """One decoder per process. ``cmn="batch"`` normalises each utterance by its own cepstral mean, so results do
    not depend on the order or the worker that recognises an utterance (``live`` CMN carries over between them).
    ``search``: limits of the search (None: PocketSphinx' own defaults)."""
    global _DECODER
    from pocketsphinx import Decoder

    model_dir = pocketsphinx_model_dir()
    _DECODER = Decoder(hmm=os.path.join(model_dir, "en-us"), lm=os.path.join(model_dir, "en-us.lm.bin"),
                       dict=os.path.join(model_dir, "cmudict-en-us.dict"), samprate=JUDGE_SAMPLE_RATE, cmn="batch",
                       loglevel="FATAL", **(search.decoder_options() if search is not None else {}))


def recognize_file(seq_tag: str, path: str) -> Tuple[str, str]:
    """(seq_tag, normalised words) of one audio file with the bundled en-US model (decoder set up by
    :func:`_init_decoder`)."""
    if _DECODER is None:
        raise RuntimeError("_init_decoder() must set up the PocketSphinx decoder first")
    audio = load_audio_16k(path, seq_tag)
    pcm = np.round(audio * 32767.0).astype(np.int16)
    _DECODER.start_utt()
    _DECODER.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
    _DECODER.end_utt()
    hyp = _DECODER.hyp()
    return seq_tag, normalize_words(hyp.hypstr if hyp is not None else "")


class PocketsphinxRecognitionJob(Job):
    """Recognises every utterance of a corpus description with PocketSphinx's bundled en-US model and writes the
    words as ``search_out.py`` (``{seq_tag: "WORDS"}``, the format of the ASR forward), so
    ``jobs/scoring.SearchWordsToCtmJob`` / ``CorpusToStmJob`` / ``ScliteJob`` score it like every other WER.

    :param num_workers: decoder processes (the cpu requirement); results do not depend on it, so it is not hashed
    :param search: the decoder's search limits (None: PocketSphinx' defaults)
    """

    def __init__(self, corpus_file: tk.Path, num_workers: int = 1, time_rqmt: float = 4,
                 search: Optional[PocketsphinxSearch] = PocketsphinxSearch()):
        self.corpus_file = corpus_file
        self.search = search
        self.num_workers = num_workers
        self.time_rqmt = time_rqmt
        self.out_words = self.output_path("search_out.py")

    @classmethod
    def hash(cls, parsed_args):
        return super().hash({k: v for k, v in parsed_args.items() if k not in ("num_workers", "time_rqmt")})

    def tasks(self):
        yield Task("run", rqmt={"cpu": self.num_workers, "mem": 2 + self.num_workers, "time": self.time_rqmt})

    def run(self) -> None:
        entries = _load_corpus(self.corpus_file.get_path())
        jobs = [(e.seq_tag, e.audio) for e in entries]
        if self.num_workers > 1:
            with ProcessPoolExecutor(self.num_workers, initializer=_init_decoder, initargs=(self.search,)) as pool:
                results = dict(pool.map(recognize_file, *zip(*jobs), chunksize=4))
        else:
            _init_decoder(self.search)
            results = dict(recognize_file(tag, path) for tag, path in jobs)
        with open(self.out_words.get_path(), "w", encoding="utf8") as f:
            f.write("{\n")
            for tag, _ in jobs:
                f.write(f"{tag!r}: {results[tag]!r},\n")
            f.write("}\n")


# ---------------------------------------------------------------------------------------------------------- DNSMOS

DNSMOS_FIELDS = ("p808_mos", "sig", "bak", "ovrl")


class DnsmosScorer:
    """speechmos' DNSMOS with the two ONNX models of its wheel (``speechmos/dnsmos_models/sig_bak_ovr.onnx`` for
    SIG/BAK/OVRL, ``model_v8.onnx`` for P.808), sessions limited to ``num_threads`` (onnxruntime would otherwise
    use every core of a shared node)."""

    def __init__(self, num_threads: int = 1):
        import onnxruntime
        from speechmos import dnsmos

        model_dir = os.path.join(os.path.dirname(dnsmos.__file__), "dnsmos_models")
        primary, p808 = os.path.join(model_dir, "sig_bak_ovr.onnx"), os.path.join(model_dir, "model_v8.onnx")
        for path in (primary, p808):
            if not os.path.exists(path):
                raise FileNotFoundError(f"speechmos wheel lacks its bundled DNSMOS model {path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self._model = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)  # the class' __init__ takes no session options
        self._model.primary_model_path = primary
        self._model.onnx_sess = onnxruntime.InferenceSession(primary, options, providers=["CPUExecutionProvider"])
        self._model.p808_onnx_sess = onnxruntime.InferenceSession(p808, options, providers=["CPUExecutionProvider"])

    def __call__(self, audio: np.ndarray) -> Dict[str, float]:
        """Scores of 16 kHz float audio in [-1, 1]; clips shorter than DNSMOS' 9.01 s window are repeated by
        speechmos, longer ones are averaged over windows with a 1 s hop."""
        scores = self._model(audio, JUDGE_SAMPLE_RATE, False)
        return {"p808_mos": float(scores["p808_mos"]), "sig": float(scores["sig_mos"]),
                "bak": float(scores["bak_mos"]), "ovrl": float(scores["ovrl_mos"])}


def first_per_speaker(entries, limit: Optional[int]):
    """The first ``limit`` entries of every speaker, in corpus order (all entries with ``limit=None``)."""
    if limit is None:
        return list(entries)
    taken: collections.Counter = collections.Counter()
    chosen = []
    for e in entries:
        if taken[e.speaker] < limit:
            taken[e.speaker] += 1
            chosen.append(e)
    return chosen


class DnsmosJob(Job):
    """DNSMOS P.808 MOS and P.835 SIG/BAK/OVRL of every utterance of a corpus description (``out_csv``) and their
    means over utterances (``out_p808_mos``, ``out_sig``, ``out_bak``, ``out_ovrl``). A noise-suppression quality
    predictor, not a TTS naturalness judge (see the module docstring and :class:`NisqaJob`).

    :param utterances_per_speaker: judge only each speaker's first this many utterances (corpus order) instead of
        all. DNSMOS costs about 0.25 s of one core per 9 s window, and speechmos repeats a short clip to at least
        9 s and scores it every 1 s, so a 3-4 s utterance costs 3-7 windows; with None (all, unhashed, the ids of
        earlier graphs) every utterance is judged.
    """

    def __init__(self, corpus_file: tk.Path, utterances_per_speaker: Optional[int] = None):
        if utterances_per_speaker is not None and utterances_per_speaker < 1:
            raise ValueError(f"DnsmosJob: utterances_per_speaker must be >= 1 or None, got {utterances_per_speaker}")
        self.corpus_file = corpus_file
        self.utterances_per_speaker = utterances_per_speaker
        self.out_csv = self.output_path("dnsmos.csv")
        self.out_p808_mos = self.output_var("p808_mos")
        self.out_sig = self.output_var("sig")
        self.out_bak = self.output_var("bak")
        self.out_ovrl = self.output_var("ovrl")

    @classmethod
    def hash(cls, parsed_args):
        if parsed_args["utterances_per_speaker"] is None:
            parsed_args = {k: v for k, v in parsed_args.items() if k != "utterances_per_speaker"}
        return super().hash(parsed_args)

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 4, "time": 4})

    def run(self) -> None:
        scorer = DnsmosScorer(num_threads=1)
        rows = []
        for e in first_per_speaker(_load_corpus(self.corpus_file.get_path()), self.utterances_per_speaker):
            scores = scorer(load_audio_16k(e.audio, e.seq_tag))
            rows.append([e.seq_tag, e.speaker] + [round(scores[k], 4) for k in DNSMOS_FIELDS])
        _write_csv(self.out_csv.get_path(), ["seq_tag", "speaker", *DNSMOS_FIELDS], rows)
        means = np.mean(np.asarray([r[2:] for r in rows], dtype=np.float64), axis=0)
        for var, mean in zip((self.out_p808_mos, self.out_sig, self.out_bak, self.out_ovrl), means):
            var.set(round(float(mean), 4))


# ------------------------------------------------------------------------------------------- speaker similarity

def speaker_embeddings(entries, num_threads: int = 1) -> np.ndarray:
    """``[N, 256]`` L2-normalised Resemblyzer d-vectors, one per corpus entry (VAD-trimmed, volume-normalised by
    ``resemblyzer.preprocess_wav`` as the encoder was trained). An utterance in which the VAD finds no speech (a
    TTS model that has not learnt to speak) is embedded volume-normalised but untrimmed, and named on stderr: it
    scores what it sounds like instead of failing the job, and with it the report of every other model."""
    import warnings

    import torch

    with warnings.catch_warnings():  # webrtcvad (under resemblyzer) imports the deprecated pkg_resources
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        from resemblyzer import VoiceEncoder, preprocess_wav
        from resemblyzer.audio import normalize_volume
        from resemblyzer.hparams import audio_norm_target_dBFS

    torch.set_num_threads(num_threads)
    encoder = VoiceEncoder(device="cpu", verbose=False)
    vectors = []
    for e in entries:
        audio = load_audio_16k(e.audio, e.seq_tag)
        wav = preprocess_wav(audio, source_sr=JUDGE_SAMPLE_RATE)
        if wav.size == 0:
            print(f"no speech found by Resemblyzer's VAD in {e.audio} (sequence {e.seq_tag}): embedded untrimmed",
                  file=sys.stderr)
            wav = normalize_volume(audio, audio_norm_target_dBFS, increase_only=True)
        vectors.append(encoder.embed_utterance(wav))
    return np.stack(vectors).astype(np.float64)


def same_vs_different_speaker(judged_tags: Sequence[str], judged_speakers: Sequence[str], judged: np.ndarray,
                              real_tags: Sequence[str], real_speakers: Sequence[str], real: np.ndarray):
    """Per judged utterance: mean cosine to the real utterances of its own speaker (the real recording of the same
    seq tag left out, so the shared text cannot help) and mean cosine to those of all other speakers.
    Returns ``(same [N], different [N], num_same [N], num_different [N])``."""
    cosine = judged @ real.T  # both L2-normalised
    real_speakers_arr = np.asarray(real_speakers)
    real_tags_arr = np.asarray(real_tags)
    same, different, num_same, num_different = [], [], [], []
    for i, (tag, speaker) in enumerate(zip(judged_tags, judged_speakers)):
        same_mask = (real_speakers_arr == speaker) & (real_tags_arr != tag)
        different_mask = real_speakers_arr != speaker
        if not same_mask.any():
            raise KeyError(f"sequence {tag}: the real corpus has no other utterance of speaker {speaker}")
        if not different_mask.any():
            raise ValueError(f"sequence {tag}: the real corpus has no speaker other than {speaker}; "
                             f"different-speaker similarity needs at least two speakers")
        same.append(cosine[i, same_mask].mean())
        different.append(cosine[i, different_mask].mean())
        num_same.append(int(same_mask.sum()))
        num_different.append(int(different_mask.sum()))
    return np.asarray(same), np.asarray(different), num_same, num_different


class SpeakerSimilarityJob(Job):
    """Resemblyzer speaker similarity of judged audio (e.g. synthesised) to real audio: per judged utterance the mean
    cosine to real utterances of the same speaker (excluding the real recording of the same seq tag) and to those of
    other speakers (``out_csv``); ``out_same_speaker`` / ``out_different_speaker`` are means over judged utterances,
    ``out_difference`` their difference (how much more the audio sounds like its speaker than like anyone).
    Judging the real corpus itself gives the real-audio ceiling."""

    def __init__(self, corpus_file: tk.Path, real_corpus_file: tk.Path):
        self.corpus_file = corpus_file
        self.real_corpus_file = real_corpus_file
        self.out_csv = self.output_path("speaker_similarity.csv")
        self.out_same_speaker = self.output_var("same_speaker")
        self.out_different_speaker = self.output_var("different_speaker")
        self.out_difference = self.output_var("difference")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 4, "time": 4})

    def run(self) -> None:
        judged = _load_corpus(self.corpus_file.get_path())
        real = _load_corpus(self.real_corpus_file.get_path())
        judged_vectors = speaker_embeddings(judged)
        real_vectors = (judged_vectors if self.corpus_file.get_path() == self.real_corpus_file.get_path()
                        else speaker_embeddings(real))
        same, different, num_same, num_different = same_vs_different_speaker(
            [e.seq_tag for e in judged], [e.speaker for e in judged], judged_vectors,
            [e.seq_tag for e in real], [e.speaker for e in real], real_vectors)
        rows = [[e.seq_tag, e.speaker, round(float(s), 4), round(float(d), 4), ns, nd]
                for e, s, d, ns, nd in zip(judged, same, different, num_same, num_different)]
        _write_csv(self.out_csv.get_path(), ["seq_tag", "speaker", "same_speaker_cosine", "different_speaker_cosine",
                                             "num_same", "num_different"], rows)
        self.out_same_speaker.set(round(float(same.mean()), 4))
        self.out_different_speaker.set(round(float(different.mean()), 4))
        self.out_difference.set(round(float(same.mean() - different.mean()), 4))


# ------------------------------------------------------------------------------------------------------------ NISQA

class NisqaJob(Job):
    """NISQA (Mittag et al.) MOS of every utterance of a corpus description, for users who have NISQA's code and
    weights (e.g. ``weights/nisqa_tts.tar`` for TTS naturalness, as the original used). No package ships them and
    the weights are licensed non-commercially, so this job never runs unless a user passes both paths.

    It calls NISQA's public command line exactly as its README documents,
    ``python run_predict.py --mode predict_csv --pretrained_model W --csv_file F --csv_deg deg --output_dir D``,
    with ``python`` (default: the interpreter running the job; NISQA needs pandas, PyYAML, tqdm and a torch that
    loads its checkpoints, so a separate environment is often easier), and reads ``D/NISQA_results.csv``:
    every ``*_pred`` column per utterance goes to ``out_csv``, the mean of ``mos_pred`` to ``out_mos``.

    :param nisqa_code: the NISQA checkout (the folder holding ``run_predict.py``)
    :param nisqa_weights: a NISQA checkpoint (``.tar``)
    """

    def __init__(self, corpus_file: tk.Path, nisqa_code: tk.Path, nisqa_weights: tk.Path,
                 python: Optional[tk.Path] = None):
        self.corpus_file = corpus_file
        self.nisqa_code = nisqa_code
        self.nisqa_weights = nisqa_weights
        self.python = python
        self.out_nisqa_dir = self.output_path("nisqa", directory=True)
        self.out_csv = self.output_path("nisqa.csv")
        self.out_mos = self.output_var("mos")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 4, "time": 4})

    def run(self) -> None:
        script = os.path.join(self.nisqa_code.get_path(), "run_predict.py")
        weights = os.path.abspath(self.nisqa_weights.get_path())
        if not os.path.isfile(script):
            raise FileNotFoundError(f"nisqa_code={self.nisqa_code.get_path()} has no run_predict.py "
                                    f"(expected a checkout of NISQA)")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"nisqa_weights={weights} does not exist")
        entries = _load_corpus(self.corpus_file.get_path())
        by_file: Dict[str, object] = {}
        for e in entries:
            path = os.path.abspath(e.audio)
            if path in by_file:
                raise ValueError(f"sequences {by_file[path].seq_tag} and {e.seq_tag} share the audio file {path}")
            by_file[path] = e
        input_csv = os.path.abspath(os.path.join(self.out_nisqa_dir.get_path(), "input.csv"))
        _write_csv(input_csv, ["deg"], [[p] for p in by_file])
        python = self.python.get_path() if self.python is not None else sys.executable
        cmd = [python, script, "--mode", "predict_csv", "--pretrained_model", weights, "--csv_file", input_csv,
               "--csv_deg", "deg", "--num_workers", "0", "--bs", "1",
               "--output_dir", os.path.abspath(self.out_nisqa_dir.get_path())]
        subprocess.check_call(cmd, cwd=self.nisqa_code.get_path())
        results_csv = os.path.join(self.out_nisqa_dir.get_path(), "NISQA_results.csv")
        with open(results_csv, newline="", encoding="utf8") as f:
            results = list(csv.DictReader(f))
        if not results or "mos_pred" not in results[0]:
            raise ValueError(f"{results_csv} has no mos_pred column (columns: {list(results[0]) if results else []})")
        pred_columns = [c for c in results[0] if c.endswith("_pred")]
        by_result = {os.path.abspath(r["deg"]): r for r in results}
        missing = [e.seq_tag for p, e in by_file.items() if p not in by_result]
        if missing:
            raise KeyError(f"{results_csv} has no prediction for {len(missing)} sequence(s), e.g. {missing[:5]}")
        rows = [[e.seq_tag, e.speaker] + [round(float(by_result[p][c]), 4) for c in pred_columns]
                for p, e in by_file.items()]
        _write_csv(self.out_csv.get_path(), ["seq_tag", "speaker", *pred_columns], rows)
        mos_index = 2 + pred_columns.index("mos_pred")
        self.out_mos.set(round(float(np.mean([r[mos_index] for r in rows])), 4))
