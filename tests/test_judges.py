"""The independent judges (PocketSphinx WER, DNSMOS, Resemblyzer speaker similarity, the NISQA hook) on real speech
synthesised here with flite, through the embedded Sisyphus engine. Each check has a known direction and a control
that must come out the other way, so a judge that ignores its input fails."""
import csv
import os

import numpy as np
import pytest
import soundfile

from librispeech_joint_training_given_alignments import evaluation_judges as ej
from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, write_corpus_json
from librispeech_joint_training_given_alignments.data_prep.synthesis import SyntheticVoice, synthesize_to_flac
from librispeech_joint_training_given_alignments.data_prep.testing import run_graph
from librispeech_joint_training_given_alignments.jobs import judges
from librispeech_joint_training_given_alignments.jobs.scoring import CorpusToStmJob, ScliteJob, SearchWordsToCtmJob
from librispeech_joint_training_given_alignments.sisyphus_api import tk

TEXTS = (
    "THE CHILDREN WERE PLAYING IN THE GARDEN WHEN IT BEGAN TO RAIN",
    "WE WILL MEET AT THE STATION TOMORROW MORNING AT NINE",
    "HE WROTE A LONG LETTER TO HIS MOTHER ABOUT THE JOURNEY",
)
VOICES = {
    "slt": SyntheticVoice("1001", "flite", "slt", gender="F"),
    "awb": SyntheticVoice("1002", "flite", "awb"),
    "rms": SyntheticVoice("1003", "flite", "rms"),
    "kal16": SyntheticVoice("1004", "flite", "kal16"),
}


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """``{(voice, text index, speed factor): flac path}`` of flite speech, 16 kHz."""
    out = tmp_path_factory.mktemp("judges_speech")
    files = {}
    for name, voice in VOICES.items():
        for i, text in enumerate(TEXTS):
            for speed in (1.0, 0.9):
                path = str(out / f"{name}_{i}_{speed}.flac")
                synthesize_to_flac(voice, text.lower(), speed, path)
                files[(name, i, speed)] = path
    return files


def _tag(speaker: str, i: int) -> str:
    return f"dev-clean/{speaker}-7-{i:04d}/{speaker}-7-{i:04d}"


def _corpus(path, items):
    """Corpus JSON of ``(tag, speaker, audio, text)`` items."""
    entries = []
    for tag, speaker, audio, text in items:
        n = soundfile.info(audio).frames
        entries.append(CorpusEntry(tag, audio, n / 16000, n, text, speaker, "7"))
    write_corpus_json(str(path), "dev-clean", entries, 16000)
    return tk.Path(str(path))


def _audio_list(directory, items):
    """A Griffin-Lim-style ``audio_files.txt`` (``tag<TAB>file<TAB>seconds``, files relative to it, 16 kHz ogg)."""
    os.makedirs(directory / "audio_files", exist_ok=True)
    lines = []
    for tag, flac in items:
        audio, sr = soundfile.read(flac, dtype="float32")
        name = f"audio_files/{tag.replace('/', '_')}.ogg"
        soundfile.write(str(directory / name), audio, sr, format="OGG", subtype="VORBIS")
        lines.append(f"{tag}\t{name}\t{len(audio) / sr:.4f}\n")
    (directory / "audio_files.txt").write_text("".join(lines))
    return tk.Path(str(directory / "audio_files.txt"))


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_normalize_words():
    assert judges.normalize_words("<s> the read(2) <sil> [NOISE] don't  </s>") == "THE READ DON'T"
    for text in TEXTS:  # the identity on corpus texts
        assert judges.normalize_words(text) == text


def test_pocketsphinx_recognises_flite_speech(sis_setup, speech):
    """Reference audio: rms; "synthesised" audio (ogg list): kal16. Both far below the WER of the same words
    scored against the wrong texts (the chance level of this recogniser on these sentences)."""
    reference = _corpus(sis_setup / "ref.json", [(_tag("1003", i), "1003", speech[("rms", i, 1.0)], t)
                                                  for i, t in enumerate(TEXTS)])
    audio_list = _audio_list(sis_setup / "synth", [(_tag("1003", i), speech[("kal16", i, 1.0)])
                                                   for i in range(len(TEXTS))])
    result = ej.pocketsphinx_wer("judges", reference, audio_list)
    rotated = _corpus(sis_setup / "rotated.json", [(_tag("1003", i), "1003", speech[("rms", i, 1.0)],
                                                    TEXTS[(i + 1) % len(TEXTS)]) for i in range(len(TEXTS))])
    words = judges.PocketsphinxRecognitionJob(reference).out_words
    chance = ScliteJob(CorpusToStmJob(rotated).out_stm, SearchWordsToCtmJob(words, rotated).out_ctm)
    run_graph(list(result.values()) + [chance.out_wer])

    assert result["ref_words"].get() == sum(len(t.split()) for t in TEXTS)
    assert chance.out_wer.get() > 75
    assert result["real_wer"].get() < 30, result["real_wer"].get()
    assert result["wer"].get() < 30, result["wer"].get()
    sub, dele, ins = (result[k].get() for k in ("sub", "del", "ins"))
    assert sub + dele + ins == pytest.approx(result["wer"].get(), abs=0.02)
    with open(words.get_path()) as f:
        hyps = eval(f.read(), {})
    assert set(hyps) == {_tag("1003", i) for i in range(len(TEXTS))}
    assert hyps[_tag("1003", 0)] == TEXTS[0]  # plain, well-known words are recognised exactly


def test_dnsmos_ranks_clean_above_noisy(sis_setup, speech):
    """The same utterances with white noise at 5 dB SNR score lower in P.808 MOS, BAK and OVRL."""
    rng = np.random.default_rng(0)
    items = []
    for n, name in enumerate(("slt", "awb")):
        clean = speech[(name, 0, 1.0)]
        audio, sr = soundfile.read(clean, dtype="float32")
        noise = rng.standard_normal(audio.shape).astype(np.float32)
        noise *= np.sqrt(np.mean(audio ** 2) / np.mean(noise ** 2) / 10 ** (5 / 10))
        noisy = str(sis_setup / f"{name}_noisy.flac")
        soundfile.write(noisy, np.clip(audio + noise, -1, 1), sr)
        speaker = VOICES[name].speaker_id
        items += [(_tag(speaker, 0), speaker, clean, TEXTS[0]), (_tag(speaker, 100), speaker, noisy, TEXTS[0])]
    corpus = _corpus(sis_setup / "corpus.json", items)
    result = ej.dnsmos("judges", corpus)
    run_graph(list(result.values()))

    rows = {r["seq_tag"]: r for r in _read_csv(judges.DnsmosJob(corpus).out_csv.get_path())}
    assert len(rows) == 4
    for name in ("slt", "awb"):
        speaker = VOICES[name].speaker_id
        clean, noisy = rows[_tag(speaker, 0)], rows[_tag(speaker, 100)]
        for key, margin in (("p808_mos", 0.4), ("bak", 1.0), ("ovrl", 0.3)):
            assert float(clean[key]) > float(noisy[key]) + margin, (name, key, clean, noisy)
        assert 1.0 <= float(noisy["p808_mos"]) < float(clean["p808_mos"]) <= 5.0
    for key in judges.DNSMOS_FIELDS:
        assert result[key].get() == pytest.approx(np.mean([float(r[key]) for r in rows.values()]), abs=1e-3)

    # each speaker's first utterance only (the clean one: listed first), with the same scores; another job
    first = ej.dnsmos("judges_first", corpus, utterances_per_speaker=1)
    run_graph(list(first.values()))
    subset_job = judges.DnsmosJob(corpus, utterances_per_speaker=1)
    assert subset_job is not judges.DnsmosJob(corpus)
    subset = _read_csv(subset_job.out_csv.get_path())
    assert [r["seq_tag"] for r in subset] == [_tag(VOICES[name].speaker_id, 0) for name in ("slt", "awb")]
    assert all(r == rows[r["seq_tag"]] for r in subset)
    assert first["p808_mos"].get() == pytest.approx(np.mean([float(r["p808_mos"]) for r in subset]), abs=1e-3)


def test_dnsmos_subset_choice_and_unhashed_default(sis_setup):
    """``first_per_speaker`` keeps corpus order and each speaker's first N; the default (all) is not hashed, so the
    job ids of graphs built before the option existed stay as they were."""
    entries = [CorpusEntry(_tag(s, i), f"{s}_{i}.flac", 1.0, 16000, "A", s, "7")
               for i, s in enumerate(("1001", "1002", "1001", "1001", "1002", "1003"))]
    assert [e.seq_tag for e in judges.first_per_speaker(entries, 2)] == [
        _tag("1001", 0), _tag("1002", 1), _tag("1001", 2), _tag("1002", 4), _tag("1003", 5)]
    assert judges.first_per_speaker(entries, None) == entries
    corpus = tk.Path(str(sis_setup / "c.json"))
    assert judges.DnsmosJob(corpus, utterances_per_speaker=None) is judges.DnsmosJob(corpus)
    assert judges.DnsmosJob.hash({"corpus_file": corpus, "utterances_per_speaker": None}) == \
        super(judges.DnsmosJob, judges.DnsmosJob).hash({"corpus_file": corpus})
    with pytest.raises(ValueError, match="utterances_per_speaker"):
        judges.DnsmosJob(corpus, utterances_per_speaker=0)


def test_speaker_similarity_same_above_different(sis_setup, speech):
    """Real audio: slt (1001) and awb (1002) at normal speed. "Synthesised": the same sentences at another speed by
    the right voice (high same-speaker similarity) and, as the control, by the other voice (the order flips)."""
    real_items = [(_tag(VOICES[n].speaker_id, i), VOICES[n].speaker_id, speech[(n, i, 1.0)], t)
                  for n in ("slt", "awb") for i, t in enumerate(TEXTS)]
    real = _corpus(sis_setup / "real.json", real_items)
    right = _audio_list(sis_setup / "right", [(_tag(VOICES[n].speaker_id, i), speech[(n, i, 0.9)])
                                              for n in ("slt", "awb") for i in range(len(TEXTS))])
    swapped = _audio_list(sis_setup / "swapped", [(_tag(VOICES[n].speaker_id, i), speech[(other, i, 0.9)])
                                                  for n, other in (("slt", "awb"), ("awb", "slt"))
                                                  for i in range(len(TEXTS))])
    good = ej.speaker_similarity("judges/right", real, right)
    bad = ej.speaker_similarity("judges/swapped", real, swapped)
    run_graph(list(good.values()) + list(bad.values()))

    assert good["same_speaker"].get() > good["different_speaker"].get() + 0.2, {k: v.get() for k, v in good.items()}
    assert bad["same_speaker"].get() < bad["different_speaker"].get() - 0.2, {k: v.get() for k, v in bad.items()}
    assert good["difference"].get() == pytest.approx(
        good["same_speaker"].get() - good["different_speaker"].get(), abs=2e-4)
    rows = _read_csv(judges.SpeakerSimilarityJob(ej.judged_corpus(real, right), real).out_csv.get_path())
    assert len(rows) == 6
    assert all(int(r["num_same"]) == 2 and int(r["num_different"]) == 3 for r in rows)  # own recording left out
    assert all(float(r["same_speaker_cosine"]) > float(r["different_speaker_cosine"]) for r in rows)


def test_speaker_embedding_of_audio_without_speech(tmp_path, speech):
    """Audio in which the VAD finds no speech (an untrained TTS) gets an embedding of the untrimmed audio, far from
    a real voice's, instead of failing the job."""
    silent = str(tmp_path / "silent.flac")
    soundfile.write(silent, np.random.default_rng(0).normal(0.0, 1e-4, 32000), 16000)
    entries = [CorpusEntry(f"a/1-1-{i}/1-1-{i}", path, 2.0, 32000, "X", "1", "1")
               for i, path in enumerate([silent, speech[("slt", 0, 1.0)], speech[("slt", 1, 1.0)]])]
    vectors = judges.speaker_embeddings(entries)
    assert np.all(np.isfinite(vectors)) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] < vectors[1] @ vectors[2]


def test_same_vs_different_speaker_known_answer():
    real = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    judged = np.array([[1.0, 0.0]])
    same, diff, n_same, n_diff = judges.same_vs_different_speaker(["t1"], ["a"], judged, ["t1", "t2", "t3"],
                                                                  ["a", "a", "b"], real)
    assert same.tolist() == [0.6] and diff.tolist() == [0.0] and n_same == [1] and n_diff == [1]
    with pytest.raises(KeyError, match="sequence t3: the real corpus has no other utterance of speaker b"):
        judges.same_vs_different_speaker(["t3"], ["b"], judged, ["t1", "t2", "t3"], ["a", "a", "b"], real)


NISQA_STAND_IN = '''
"""Stand-in with NISQA's documented run_predict.py command line (predict_csv); it predicts MOS = duration / s."""
import argparse, csv, os
import soundfile
p = argparse.ArgumentParser()
for a in ("--mode", "--pretrained_model", "--csv_file", "--csv_deg", "--output_dir", "--num_workers", "--bs"):
    p.add_argument(a, required=True)
args = p.parse_args()
assert args.mode == "predict_csv" and os.path.isfile(args.pretrained_model)
rows = list(csv.DictReader(open(args.csv_file)))
with open(os.path.join(args.output_dir, "NISQA_results.csv"), "w") as f:
    f.write("deg,mos_pred,model\\n")
    for r in rows:
        f.write(f"{r[args.csv_deg]},{soundfile.info(r[args.csv_deg]).duration},nisqa_tts\\n")
'''


def test_nisqa_only_with_user_weights(sis_setup, speech):
    """Without a NisqaSetup nothing enters the graph; with one, NisqaJob drives NISQA's command line (here a
    stand-in with the same interface: NISQA itself is not shipped) and maps its results back to seq tags."""
    corpus = _corpus(sis_setup / "c.json", [(_tag("1001", i), "1001", speech[("slt", i, 1.0)], t)
                                           for i, t in enumerate(TEXTS)])
    assert ej.nisqa_mos("judges", corpus, nisqa=None) == {}
    code = sis_setup / "NISQA"
    code.mkdir()
    (code / "run_predict.py").write_text(NISQA_STAND_IN)
    (code / "nisqa_tts.tar").write_bytes(b"weights")
    setup = ej.NisqaSetup(tk.Path(str(code)), tk.Path(str(code / "nisqa_tts.tar")))
    result = ej.nisqa_mos("judges", corpus, nisqa=setup)
    run_graph([result["mos"]])
    durations = [soundfile.info(speech[("slt", i, 1.0)]).duration for i in range(len(TEXTS))]
    assert result["mos"].get() == pytest.approx(np.mean(durations), abs=1e-3)
    rows = _read_csv(judges.NisqaJob(corpus, setup.code_dir, setup.weights).out_csv.get_path())
    assert [r["seq_tag"] for r in rows] == [_tag("1001", i) for i in range(len(TEXTS))]
    assert [float(r["mos_pred"]) for r in rows] == pytest.approx(durations, abs=1e-4)


def test_pocketsphinx_workers_not_hashed(sis_setup):
    """Results do not depend on the number of decoder processes (batch CMN), so it is not part of the job id."""
    corpus = tk.Path(str(sis_setup / "c.json"))
    assert judges.PocketsphinxRecognitionJob(corpus, num_workers=4) is judges.PocketsphinxRecognitionJob(corpus)
    assert judges.PocketsphinxRecognitionJob(corpus) is not judges.PocketsphinxRecognitionJob(
        tk.Path(str(sis_setup / "d.json")))


def test_judge_audio_keys(sis_setup):
    """The flat dict the report reads; the real-audio recognition is one job shared by every judged audio set."""
    ref = tk.Path(str(sis_setup / "ref.json"))
    a = ej.judge_audio("m1", ref, tk.Path(str(sis_setup / "a/audio_files.txt")))
    b = ej.judge_audio("m2", ref, tk.Path(str(sis_setup / "b/audio_files.txt")), speakers=False)
    assert set(a) == {f"pocketsphinx_{k}" for k in ("wer", "sub", "del", "ins", "ref_words")} | {
        f"pocketsphinx_real_{k}" for k in ("wer", "sub", "del", "ins", "ref_words")} | {
        f"dnsmos_{k}" for k in judges.DNSMOS_FIELDS} | {
        f"speaker_{k}" for k in ("same_speaker", "different_speaker", "difference")}
    assert set(b) == {k for k in a if not k.startswith("speaker_")}
    assert a["pocketsphinx_real_wer"] is b["pocketsphinx_real_wer"]
    assert a["pocketsphinx_wer"] is not b["pocketsphinx_wer"]
