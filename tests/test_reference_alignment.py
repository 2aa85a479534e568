"""The flite reference alignment (phone segments → TTS tokens → frames), its HDF, and the alignment-quality figures:
hand-made cases with known answers, real flite utterances, and the jobs on a tiny synthesised corpus."""
import json
import subprocess

import h5py
import numpy as np
import pytest
import soundfile

from librispeech_joint_training_given_alignments import data
from librispeech_joint_training_given_alignments.data_prep import alignment_quality as aq
from librispeech_joint_training_given_alignments.data_prep import durations, hdf, label_hdfs
from librispeech_joint_training_given_alignments.data_prep import lexicon as lexmod
from librispeech_joint_training_given_alignments.data_prep import reference_alignment as ra
from librispeech_joint_training_given_alignments.data_prep import synthesis
from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, load_corpus_json
from librispeech_joint_training_given_alignments.data_prep.duration_jobs import AlignmentQualityJob
from librispeech_joint_training_given_alignments.data_prep.features import LogMelExtractor, LogMelSettings
from librispeech_joint_training_given_alignments.data_prep.synthesis import SubsetSpec
from librispeech_joint_training_given_alignments.data_prep.testing import JobFailed, experiment_dir, run_graph
from librispeech_joint_training_given_alignments.sisyphus_api import tk

HOP = 0.0125
S, SP, E = lexmod.START, lexmod.SPACE, lexmod.END
A_DOG = [S, SP, "AH", SP, "D", "AO", "G", SP, E]  # tts_tokens("A DOG")


def _tokens(text):
    return lexmod.tts_tokens(text, {w: lexmod.lookup(w) for w in text.split()})


def _pairs(tokens, phones):
    path = ra.align_tokens(tokens, [ra.cmudict_phone(p) for p in phones])
    return [(None if t is None else tokens[t], None if s is None else phones[s]) for t, s in path]


# ------------------------------------------------------------------------------------------ mapping, hand-made

def test_phone_mapping():
    assert [ra.cmudict_phone(p) for p in ("ax", "eh", "ng", "pau")] == ["AH", "EH", "NG", "pau"]
    with pytest.raises(ra.ReferenceAlignmentError, match="sequence x: flite phone 'xq'"):
        ra.cmudict_phone("xq", "sequence x")
    assert _tokens("A DOG") == A_DOG


def test_alignment_pairs_pauses_substitutions_and_spaces():
    # flite says "A" as EY (CMUdict: AH); no pause between the words -> the [space]s stay unpaired
    assert _pairs(A_DOG, ["pau", "ey", "d", "ao", "g", "pau"]) == [
        (S, "pau"), (SP, None), ("AH", "ey"), (SP, None), ("D", "d"), ("AO", "ao"), ("G", "g"), (SP, None),
        (E, "pau")]
    # a pause between the words is the [space] there
    assert _pairs(A_DOG, ["pau", "ax", "pau", "d", "ao", "g", "pau"])[3] == (SP, "pau")
    # a vowel substitutes a vowel (cost 0.5) rather than being deleted + inserted (cost 2)
    assert ("AO", "aa") in _pairs(A_DOG, ["pau", "ax", "d", "aa", "g", "pau"])


def test_token_times_for_deletions_and_insertions():
    def ends(tokens, segments):
        phones = [ra.cmudict_phone(p) for p, _ in segments]
        path = ra.align_tokens(tokens, phones)
        return ra.token_end_times(tokens, phones, [t for _, t in segments], path).round(6).tolist()

    and_tokens = [S, SP, "AH", "N", "D", SP, E]
    # D not spoken: a deleted phoneme has length 0 where it belongs
    assert ends(and_tokens, [("pau", .1), ("ae", .2), ("n", .3), ("pau", .4)]) == [.1, .1, .2, .3, .3, .3, .4]
    dog = [S, SP, "D", "AO", "G", SP, E]
    # an inserted phone goes to the preceding phoneme
    assert ends(dog, [("pau", .1), ("d", .2), ("ao", .3), ("r", .35), ("g", .4), ("pau", .5)]) == \
        [.1, .1, .2, .35, .4, .4, .5]
    # an inserted pause inside a word (no silence token next to it) goes to the preceding phoneme as well
    assert ends(dog, [("pau", .1), ("d", .2), ("pau", .25), ("ao", .3), ("g", .4), ("pau", .5)]) == \
        [.1, .1, .25, .3, .4, .4, .5]
    # an inserted phone right after a pause-[space] goes to the following phoneme (its own kind), not the [space]
    assert ends(A_DOG, [("pau", .1), ("ey", .2), ("pau", .3), ("hh", .35), ("d", .4), ("ao", .5), ("g", .6),
                        ("pau", .7)]) == [.1, .1, .2, .3, .4, .5, .6, .6, .7]


def test_frame_durations_known_answers():
    # frames centred at i*12.5 ms; a token ending at e covers the frames with centre < e: ceil(e / hop)
    assert ra.frame_durations([0.2, 0.2, 0.3, 0.5], 41, HOP).tolist() == [16, 0, 8, 17]
    assert ra.frame_durations([0.21, 0.21, 0.3, 0.5], 41, HOP).tolist() == [17, 0, 7, 17]
    # times beyond the audio are clipped, the last token takes the rest
    assert ra.frame_durations([0.1, 0.6, 0.7], 41, HOP).tolist() == [8, 33, 0]
    # training variant: every token at least one frame, boundaries moved as little as possible
    assert ra.frame_durations([0.2, 0.2, 0.3, 0.5], 41, HOP, 1).tolist() == [16, 1, 7, 17]
    assert ra.frame_durations([0.5, 0.5, 0.5], 41, HOP, 1).tolist() == [39, 1, 1]
    with pytest.raises(ra.ReferenceAlignmentError, match="3 frames cannot give 4 tokens"):
        ra.frame_durations([0.01, 0.02, 0.03, 0.04], 3, HOP, 1)


def test_align_utterance_known_durations():
    # "A DOG", 0.9 s of audio -> 14400 // 200 + 1 = 73 frames; a pause between the words
    segments = [("pau", .2), ("ey", .3), ("pau", .45), ("d", .5), ("ao", .62), ("g", .7), ("pau", .9)]
    ali = ra.align_utterance(A_DOG, segments, LogMelSettings().num_frames(14400), HOP)
    assert ali.durations.tolist() == [16, 0, 8, 12, 4, 10, 6, 0, 17]
    assert ali.durations.dtype == np.int32
    assert ali.counts == {"tokens": 9, "segments": 7, "substitutions": 1, "deleted_phonemes": 0,
                          "inserted_segments": 0, "pauses_on_space": 1}


# ------------------------------------------------------------------------------------------ real flite utterances

@pytest.mark.parametrize("speaker_id,speed_factor", [("1001", 0.8), ("1003", 1.0), ("2001", 1.1)])
def test_real_flite_utterance_reference_matches_the_audio(tmp_path, speaker_id, speed_factor):
    """On real flite audio, every boundary between speech and pause in the reference (speech start, the pause
    flite makes at the comma -> the [space] after RAN, speech end) is where the audio's energy rises or falls: for
    clustergen voices with a strong duration stretch (slt, rms) and the 8 kHz diphone voice kal (resampled)."""
    voice = next(v for v in synthesis.DEFAULT_VOICES if v.speaker_id == speaker_id)
    flac = str(tmp_path / "u.flac")
    seg = synthesis.synthesize_to_flac(voice, "A MAN RAN, AND A WOMAN SANG", speed_factor, flac)
    assert seg.phones.count("pau") == 3
    audio, sr = soundfile.read(flac, dtype="float32")
    feats = LogMelExtractor(LogMelSettings())(audio)
    tokens = _tokens("A MAN RAN AND A WOMAN SANG")
    ali = ra.align_utterance(tokens, list(zip(seg.phones, seg.ends)), len(feats), HOP)
    assert ali.durations.sum() == len(feats) and len(ali.durations) == len(tokens)
    assert ali.counts["deleted_phonemes"] == ali.counts["inserted_segments"] == 0
    assert ali.counts["pauses_on_space"] == 1 and tokens[11] == SP and tokens[8:11] == ["R", "AE", "N"]
    ends = np.cumsum(ali.durations)
    starts = ends - ali.durations
    assert ali.durations[11] > 5  # the pause: more than 60 ms
    boundaries = [ends[0], starts[11], ends[11], ends[-2]]  # speech start, pause start / end, speech end
    energy = feats.max(axis=1)
    loud = energy > np.median(energy[ends[0]:ends[-2]]) - 30.0  # pauses are 60-100 dB below speech
    edges = np.flatnonzero(np.diff(loud.astype(int))) + 1
    # the 50 ms analysis window reaches 2 frames (25 ms) into the neighbouring segment
    assert all(np.abs(edges - b).min() <= 2 for b in boundaries), (boundaries, edges)


def test_psdur_does_not_change_flite_audio(tmp_path):
    base = ["flite", "-voice", "kal", "-t", "THE OLD MAN SLEPT"]
    subprocess.run(base + ["-o", str(tmp_path / "a.wav")], check=True, capture_output=True)
    subprocess.run(base[:3] + ["-psdur"] + base[3:] + ["-o", str(tmp_path / "b.wav")], check=True,
                   capture_output=True)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_flite_segments_are_checked_against_the_wav():
    seg = synthesis.FliteSegments(("pau", "d", "pau"), (0.2, 0.3, 0.5), 0.5)
    synthesis.check_flite_segments(seg)  # clustergen: wav ends with the final pause
    synthesis.check_flite_segments(synthesis.FliteSegments(seg.phones, seg.ends, 0.39))  # diphone: in its middle
    with pytest.raises(ValueError, match="utt 7: flite's wav lasts 0.6000 s, but its segments end at 0.500 s"):
        synthesis.check_flite_segments(synthesis.FliteSegments(seg.phones, seg.ends, 0.6), "utt 7")
    with pytest.raises(ValueError, match="not increasing"):
        synthesis.check_flite_segments(synthesis.FliteSegments(seg.phones, (0.2, 0.1, 0.5), 0.5))
    with pytest.raises(ValueError, match="unexpected item 'oops'"):
        synthesis.parse_flite_psdur("pau:0.1 oops")


# ------------------------------------------------------------------------------------------ reference HDF file

def _hand_made_corpus(tmp_path):
    """Two flite utterances and one espeak-ng utterance (no segments): phoneme + feature HDFs, corpus entries."""
    texts = {"1001-100-0000": "A DOG", "1001-100-0001": "THE DOG", "1005-100-0000": "A DOG"}
    entries = [CorpusEntry(f"train-clean-100/{u}/{u}", f"/nowhere/{u}.flac", 0.9, 14400, t, u[:4], "100")
               for u, t in texts.items()]
    lex = {w: lexmod.lookup(w) for t in texts.values() for w in t.split()}
    phon = str(tmp_path / "phonemes.hdf")
    label_hdfs.write_phoneme_hdf(entries, lex, "tts", phon, str(tmp_path / "phonemes.json"))
    feats = str(tmp_path / "features.hdf")
    with hdf.open_writer(feats, dim=80, ndim=2) as w:
        for e in entries:
            hdf.write_seq(w, e.seq_tag, np.zeros((73, 80), dtype=np.float32))
    seg = {"subset": "train-clean-100", "speaker": "1001", "voice": "flite:slt", "duration_stretch": 1.0,
           "wav_seconds": 0.9}
    segments = {
        "1001-100-0000": dict(seg, text="A DOG", segments=[("pau", .2), ("ey", .3), ("pau", .45), ("d", .5),
                                                             ("ao", .62), ("g", .7), ("pau", .9)]),
        "1001-100-0001": dict(seg, text="THE DOG", segments=[("pau", .1), ("dh", .15), ("ax", .2), ("d", .3),
                                                               ("ao", .4), ("g", .5), ("pau", .9)]),
    }
    return entries, segments, phon, feats


def test_reference_hdf_has_the_given_durations_format(tmp_path):
    entries, segments, phon, feats = _hand_made_corpus(tmp_path)
    out = str(tmp_path / "reference.hdf")
    totals = ra.write_reference_durations(segments, entries, phon, feats, out, str(tmp_path / "ali.json"),
                                          LogMelSettings())
    assert totals["utterances"] == 2 and totals["without_reference"] == 1
    ref = hdf.read_all(out)
    assert sorted(ref) == ["train-clean-100/1001-100-0000/1001-100-0000", "train-clean-100/1001-100-0001/1001-100-0001"]
    assert ref["train-clean-100/1001-100-0000/1001-100-0000"].tolist() == [16, 0, 8, 12, 4, 10, 6, 0, 17]
    assert ref["train-clean-100/1001-100-0001/1001-100-0001"].tolist() == [8, 0, 4, 4, 0, 8, 8, 8, 0, 33]
    durations.validate_durations(ref, hdf.read_seq_lengths(phon), hdf.read_seq_lengths(feats), tags=sorted(ref),
                                 allow_zero=True)  # min_frames_per_token=0: flite gives some tokens no frame
    # the same HDF layout as the proportional placeholder / the Viterbi forward (sparse int32 [N], dim 1)
    prop = str(tmp_path / "prop.hdf")
    durations.write_proportional_durations(phon, feats, prop, durations.ProportionalAlignmentSettings())
    with h5py.File(out, "r") as a, h5py.File(prop, "r") as b:
        counts = ("numSeqs", "numTimesteps")
        assert sorted(a.keys()) == sorted(b.keys()) and a.attrs["numSeqs"] == 2
        assert {k: v for k, v in a.attrs.items() if k not in counts} == \
            {k: v for k, v in b.attrs.items() if k not in counts}
        assert a["inputs"].dtype == b["inputs"].dtype == np.int32 and a["inputs"].ndim == b["inputs"].ndim == 1
    report = json.load(open(tmp_path / "ali.json"))
    assert report["utterances"]["train-clean-100/1001-100-0000/1001-100-0000"]["pairs"][3] == [SP, "pau"]


def test_reference_errors_name_the_sequence(tmp_path):
    entries, segments, phon, feats = _hand_made_corpus(tmp_path)
    tag = "train-clean-100/1001-100-0001/1001-100-0001"
    bad = dict(segments, **{"1001-100-0001": dict(segments["1001-100-0001"], text="THE CAT")})
    with pytest.raises(ra.ReferenceAlignmentError, match=f"sequence {tag}: corpus text 'THE DOG' but flite spoke"):
        ra.write_reference_durations(bad, entries, phon, feats, str(tmp_path / "r.hdf"), str(tmp_path / "a.json"),
                                     LogMelSettings())
    bad = dict(segments, **{"1001-100-0001": dict(segments["1001-100-0001"], wav_seconds=1.2)})
    with pytest.raises(ra.ReferenceAlignmentError, match=f"sequence {tag}: audio has 14400 samples"):
        ra.write_reference_durations(bad, entries, phon, feats, str(tmp_path / "r.hdf"), str(tmp_path / "a.json"),
                                     LogMelSettings())
    with pytest.raises(ra.ReferenceAlignmentError, match="73 feature frames, but the feature settings give 37"):
        ra.write_reference_durations(segments, entries, phon, feats, str(tmp_path / "r.hdf"),
                                     str(tmp_path / "a.json"), LogMelSettings(hop_size=0.025))


# ------------------------------------------------------------------------------------------ quality, hand-made

T1, T2 = "train-clean-100/1001-100-0000/1001-100-0000", "train-clean-100/2001-100-0000/2001-100-0000"
DOG = [S, SP, "D", "AO", "G", SP, E]
REF = {T1: np.array([10, 0, 4, 6, 5, 0, 15]), T2: np.array([16, 0, 8, 12, 4, 10, 6, 0, 17])}
HYP = {T1: np.array([8, 1, 4, 4, 8, 1, 14]), T2: np.array([10, 1, 14, 1, 15, 10, 6, 1, 15]),
       "train-clean-100/1005-100-0000/1005-100-0000": np.array([5, 5])}  # no reference: ignored
TOKENS = {T1: DOG, T2: A_DOG}


def test_boundaries_are_phoneme_starts_and_ends():
    assert aq.boundary_positions(DOG).tolist() == [1, 2, 3, 4]
    assert aq.boundary_positions(A_DOG).tolist() == [1, 2, 3, 4, 5, 6]
    # errors in frames: T1 cumulative ends at the boundaries 10 14 20 25 (ref) vs 9 13 17 25 (hyp)
    assert aq.boundary_errors_frames(HYP[T1], REF[T1], DOG).tolist() == [1, 1, 3, 0]
    assert aq.boundary_errors_frames(HYP[T2], REF[T2], A_DOG).tolist() == [5, 1, 10, 1, 1, 1]
    with pytest.raises(durations.DurationError, match="sequence x: durations sum to 41 frames, the reference to 40"):
        aq.boundary_errors_frames(HYP[T1] + np.eye(7, dtype=int)[0], REF[T1], DOG, "x")


def test_quality_known_answers():
    report = aq.alignment_quality(HYP, REF, TOKENS, {T1: "1001", T2: "2001"}, 12.5, {"1001": "flite:slt"})
    # errors (ms): T1 12.5 12.5 37.5 0; T2 62.5 12.5 125 12.5 12.5 12.5 -> 300 ms over 10 boundaries
    assert report["overall"] == {"num_utterances": 2, "num_boundaries": 10, "mean_abs_error_ms": 30.0,
                                 "percent_within_20ms": 70.0, "percent_within_50ms": 80.0}
    assert report["per_speaker"]["1001"] == {"voice": "flite:slt", "num_utterances": 1, "num_boundaries": 4,
                                             "mean_abs_error_ms": 15.625, "percent_within_20ms": 75.0,
                                             "percent_within_50ms": 100.0}
    assert report["per_speaker"]["2001"]["mean_abs_error_ms"] == 39.583
    assert report["per_speaker"]["2001"]["percent_within_20ms"] == 66.667
    assert [u["seq_tag"] for u in report["worst_utterances"]] == [T2, T1]
    # the reference against itself is perfect; 50 ms (4 frames) still counts as "within 50 ms"
    assert aq.alignment_quality(REF, REF, TOKENS, {T1: "a", T2: "b"}, 12.5)["overall"]["mean_abs_error_ms"] == 0.0
    assert aq.summarize(np.array([50.0, 20.0, 25.0]), 1)["percent_within_50ms"] == 100.0
    assert aq.summarize(np.array([50.0, 20.0, 25.0]), 1)["percent_within_20ms"] == 33.333
    with pytest.raises(durations.DurationError, match=f"sequence {T2} has a reference but is missing"):
        aq.alignment_quality({T1: HYP[T1]}, REF, TOKENS, {T1: "a", T2: "b"}, 12.5)


def _write(path, seqs, labels=None):
    with hdf.open_writer(str(path), dim=len(labels) if labels else 1, ndim=1, labels=labels) as w:
        for tag, v in seqs.items():
            hdf.write_seq(w, tag, np.asarray(v, dtype=np.int32))
    return tk.Path(str(path))


def test_quality_job_outputs(tmp_path):
    inventory = lexmod.tts_inventory()
    with experiment_dir(str(tmp_path)):
        phon = _write(tmp_path / "phon.hdf", {t: [inventory.index(x) for x in TOKENS[t]] for t in TOKENS}, inventory)
        job = AlignmentQualityJob(_write(tmp_path / "hyp.hdf", HYP), _write(tmp_path / "ref.hdf", REF), phon,
                                  voice_names=(("1001", "flite:slt"), ("2001", "flite:kal")))
        run_graph([job.out_report, job.out_mean_abs_error_ms])
        assert (job.out_mean_abs_error_ms.get(), job.out_percent_within_20ms.get(),
                job.out_percent_within_50ms.get(), job.out_num_boundaries.get()) == (30.0, 70.0, 80.0, 10)
        rows = open(job.out_report_csv.get_path()).read().splitlines()
        assert rows[0] == ("speaker,voice,num_utterances,num_boundaries,mean_abs_error_ms,percent_within_20ms,"
                           "percent_within_50ms")
        assert rows[1:] == ["1001,flite:slt,1,4,15.625,75.0,100.0", "2001,flite:kal,1,6,39.583,66.667,66.667",
                            "overall,,2,10,30.0,70.0,80.0"]


# ---------------------------------------------------------------------------------- jobs on a synthesised corpus

SUBSETS = (SubsetSpec("train-clean-100", ("1001", "2001", "1005"), 3),)  # slt, kal (8 kHz diphone), espeak-ng


def test_reference_oracle_and_quality_jobs_on_a_synthesised_corpus(tmp_path):
    with experiment_dir(str(tmp_path)):
        root = data.get_embedded_librispeech_root(subsets=SUBSETS, seed=5)
        segments = data.get_embedded_flite_segments(subsets=SUBSETS, seed=5)
        reference = data.get_reference_durations(root, segments)
        phonemes = data.get_tts_phonemes(root)
        feature_hdf = data.get_log_mel_hdf([data.get_corpus(root, "train-clean-100")])
        proportional = data.get_proportional_durations(phonemes, feature_hdf)
        oracle = data.get_validated_durations(data.get_oracle_durations(root, segments, proportional), phonemes,
                                              feature_hdf)
        perfect = data.get_alignment_quality(reference, reference, root)
        baseline = data.get_alignment_quality(proportional, reference, root)
        run_graph([oracle, perfect.report, baseline.report])

        seg = json.load(open(segments.get_path()))["utterances"]
        assert len(seg) == 6 and {u.split("-")[0] for u in seg} == {"1001", "2001"}  # espeak-ng 1005: none
        assert {e["voice"] for e in seg.values()} == {"flite:slt", "flite:kal"}
        ref = hdf.read_all(reference.get_path())
        corpus = {e.seq_tag: e for e in load_corpus_json(data.get_corpus(root, "train-clean-100").get_path())}
        assert sorted(ref) == sorted(t for t, e in corpus.items() if e.speaker in ("1001", "2001"))
        frames = hdf.read_seq_lengths(feature_hdf.get_path())
        assert all(ref[t].sum() == frames[t] for t in ref)

        assert (perfect.mean_abs_error_ms.get(), perfect.percent_within_20ms.get()) == (0.0, 100.0)
        report = json.load(open(baseline.report.get_path()))
        assert set(report["per_speaker"]) == {"1001", "2001"} and report["per_speaker"]["2001"]["voice"] == "flite:kal"
        assert report["overall"]["num_utterances"] == 6 and baseline.mean_abs_error_ms.get() > 0

        oracle_durs = hdf.read_all(oracle.get_path())
        assert sorted(oracle_durs) == sorted(corpus)
        prop = hdf.read_all(proportional.get_path())
        for tag, d in oracle_durs.items():
            if tag in ref:  # the reference with at least one frame per token
                assert d.min() >= 1 and np.abs(np.cumsum(d) - np.cumsum(ref[tag])).max() <= 2
            else:
                assert d.tolist() == prop[tag].tolist()

        # a durations HDF without a referenced sequence fails the quality job, naming it
        missing = sorted(ref)[0]
        partial = _write(tmp_path / "partial.hdf", {t: v for t, v in prop.items() if t != missing})
        with pytest.raises(JobFailed, match=missing):
            run_graph([data.get_alignment_quality(partial, reference, root).report])
