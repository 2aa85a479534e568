"""Recognition: lexicon-constrained beam search with an n-gram LM, the ARPA estimator, unknown words and homophones
counted as errors, and synthesised audio read through the real-audio front end (issue 7 item 6, issue 8 item 1)."""
import math
import os

import numpy as np
import pytest
import torch

from librispeech_joint_training_given_alignments.data_prep.ngram_lm import estimate_witten_bell, write_arpa
from librispeech_joint_training_given_alignments.pytorch_networks.configs import SearchConfig
from librispeech_joint_training_given_alignments.pytorch_networks.ctc_decoding import (LexiconWordMapper,
                                                                                        greedy_ctc_decode)
from librispeech_joint_training_given_alignments.pytorch_networks.lexicon_search import LexiconBeamSearch

# a tiny ASR inventory (phonemes, [UNKNOWN], end-of-word variants; blank = extra last index) and lexicon
PHONEMES = ["AH", "B", "D", "DH", "EH", "EY", "K", "OW", "R", "S", "T", "UH"]
LABELS = PHONEMES + ["[UNKNOWN]"] + [p + "#" for p in PHONEMES]
BLANK = len(LABELS)
LEXICON = [("A", ["AH"]), ("BOAT", ["B", "OW", "T"]), ("BOOKS", ["B", "UH", "K", "S"]), ("READ", ["R", "EH", "D"]),
           ("RED", ["R", "EH", "D"]), ("THEY", ["DH", "EY"])]


def log_probs(frames, second=None, p_best=0.9):
    """``[T, V+1]`` log-probs: each frame's label ("-" = blank) gets ``p_best``; ``second`` maps frame -> (label,
    prob) for a runner-up; the rest is spread evenly."""
    second = second or {}
    out = np.zeros((len(frames), BLANK + 1), dtype=np.float64)
    for t, label in enumerate(frames):
        probs = {BLANK if label == "-" else LABELS.index(label): p_best}
        if t in second:
            other, p = second[t]
            probs[BLANK if other == "-" else LABELS.index(other)] = p
        rest = (1.0 - sum(probs.values())) / (BLANK + 1 - len(probs))
        out[t] = rest
        for i, p in probs.items():
            out[t, i] = p
    return np.log(out).astype(np.float32)


def spell(*words):
    """Frames spelling the words (eow labels), a blank between labels."""
    lex = dict(LEXICON)
    frames = ["-"]
    for w in words:
        pron = lex[w]
        for i, p in enumerate(pron):
            frames += [p + "#" if i == len(pron) - 1 else p, "-"]
    return frames


@pytest.fixture
def homophone_lm(tmp_path):
    """A trigram on texts where RED follows "A" and READ follows "THEY"."""
    lm = estimate_witten_bell([s.split() for s in ["A RED BOAT", "A RED BOAT", "THEY READ BOOKS", "THEY READ BOOKS"]],
                              order=3, vocabulary=[w for w, _ in LEXICON])
    path = str(tmp_path / "lm.arpa")
    write_arpa(lm, path)
    return path


def test_beam_search_lm_decides_between_homophones(homophone_lm):
    search = LexiconBeamSearch(LABELS, LEXICON, SearchConfig(decoder="beam", lm_file=homophone_lm, lm_weight=1.0))
    assert search(log_probs(spell("A", "READ", "BOAT"))) == ["A", "RED", "BOAT"]
    assert search(log_probs(spell("THEY", "READ", "BOOKS"))) == ["THEY", "READ", "BOOKS"]
    # without an LM the acoustics cannot tell: the lexicon-first homophone, as greedy decoding picks it
    no_lm = LexiconBeamSearch(LABELS, LEXICON, SearchConfig(decoder="beam"))
    assert no_lm.candidates.count("READ") == 1 and "RED" not in no_lm.candidates
    assert no_lm(log_probs(spell("A", "RED", "BOAT"))) == ["A", "READ", "BOAT"]
    frames = spell("A", "RED", "BOAT")
    ids = greedy_ctc_decode(torch.from_numpy(log_probs(frames))[None], torch.tensor([len(frames)]), BLANK)[0]
    assert LexiconWordMapper(LEXICON)([LABELS[i] for i in ids]) == ["A", "READ", "BOAT"]


def test_beam_search_lexicon_fixes_a_greedy_error():
    frames = spell("A", "BOAT")
    t_index = frames.index("T#")
    frames[t_index] = "D#"  # the best label says "B OW D", the runner-up "T#" makes the word
    lp = log_probs(frames, second={t_index: ("T#", 0.35)}, p_best=0.55)
    ids = greedy_ctc_decode(torch.from_numpy(lp)[None], torch.tensor([len(frames)]), BLANK)[0]
    labels = [LABELS[i] for i in ids]
    assert labels == ["AH#", "B", "OW", "D#"]
    assert LexiconWordMapper(LEXICON)(labels) == ["A", "<unk>"]
    assert LexiconBeamSearch(LABELS, LEXICON, SearchConfig(decoder="beam"))(lp) == ["A", "BOAT"]


def test_beam_search_with_word_separator_and_non_lexical_labels():
    """TTS-style labels: bare phonemes, "[space]" between words, "[start]"/"[end]" markers spell no word."""
    labels = PHONEMES + ["[end]", "[space]", "[start]"]
    blank = len(labels)
    frames = ["[start]", "[space]", "AH", "[space]", "-", "B", "OW", "T", "[space]", "[end]"]
    lp = np.full((len(frames), blank + 1), math.log(0.01), dtype=np.float32)
    for t, label in enumerate(frames):
        lp[t, blank if label == "-" else labels.index(label)] = math.log(0.9)
    search = LexiconBeamSearch(labels, LEXICON, SearchConfig(decoder="beam"), eow_suffix=None,
                               word_separator="[space]")
    assert search(lp) == ["A", "BOAT"]
    mapper = LexiconWordMapper(LEXICON, eow_suffix=None, word_separator="[space]")
    assert mapper(["[start]", "[space]", "AH", "[space]", "B", "OW", "T", "[end]"]) == ["A", "BOAT"]
    assert mapper(["[start]", "AH", "T", "[space]", "B", "OW", "T"]) == ["<unk>", "BOAT"]


def test_search_config_validates():
    with pytest.raises(ValueError, match="decoder"):
        SearchConfig(decoder="viterbi")
    with pytest.raises(ValueError, match="lm_file"):
        SearchConfig(lm_file="x.arpa")
    with pytest.raises(ValueError, match="not in the recogniser's vocabulary"):
        LexiconBeamSearch(LABELS, [("ZOO", ["Z", "UW"])], SearchConfig(decoder="beam"))


# ------------------------------------------------------------------------------------------- n-gram LM

def test_witten_bell_known_probabilities_and_kenlm_loads_it(tmp_path):
    """"A B" and "A" with vocabulary {A, B, C}; hand-computed interpolated Witten-Bell bigram:
    unigrams N=5 tokens (A 2, B 1, </s> 2), T0=3 types, |V|=5 (A B C </s> <unk>): P(w) = (c + 3/5) / 8;
    P(A|<s>) = (2 + 1 P(A)) / 3; P(B|A) = (1 + 2 P(B)) / 4; unseen P(C|A) = bow(A) P(C) = 2/4 * 0.6/8."""
    lm = estimate_witten_bell([["A", "B"], ["A"]], order=2, vocabulary=["A", "B", "C"])
    expected = {("A",): 0.325, ("B",): 0.2, ("C",): 0.075, ("</s>",): 0.325, ("<unk>",): 0.075}
    assert lm.probs[1] == pytest.approx(expected)
    assert lm.probs[2] == pytest.approx({("<s>", "A"): 2.325 / 3, ("A", "B"): 0.35, ("A", "</s>"): 0.4125,
                                         ("B", "</s>"): 0.6625})
    assert lm.backoffs == pytest.approx({("<s>",): 1 / 3, ("A",): 0.5, ("B",): 0.5})
    assert lm.prob("C", ["A"]) == pytest.approx(0.0375)
    assert lm.prob("ZEBRA", ["A"]) == pytest.approx(0.0375)  # unknown words are <unk>
    path = str(tmp_path / "wb.arpa")
    write_arpa(lm, path)
    text = open(path).read()
    assert "ngram 1=6\nngram 2=4\n" in text and f"{math.log10(0.35):.7f}\tA B\n" in text
    assert f"{math.log10(0.325):.7f}\tA\t{math.log10(0.5):.7f}\n" in text

    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    words = ["A", "B", "C", "</s>", "<unk>"]
    kenlm = KenLM(path, Dictionary(words))
    state, score = kenlm.score(kenlm.start(False), words.index("A"))
    assert score == pytest.approx(math.log10(2.325 / 3), abs=1e-5)
    assert kenlm.score(state, words.index("C"))[1] == pytest.approx(math.log10(0.0375), abs=1e-5)
    assert kenlm.finish(state)[1] == pytest.approx(math.log10(0.4125), abs=1e-5)


def test_witten_bell_trigram_is_a_distribution():
    rng = np.random.default_rng(0)
    vocab = [f"W{i}" for i in range(8)]
    sentences = [list(rng.choice(vocab[:6], size=rng.integers(1, 7))) for _ in range(40)]
    lm = estimate_witten_bell(sentences, order=3, vocabulary=vocab)
    for context in [(), ("<s>",), ("W0",), ("<s>", "W1"), ("W2", "W3"), ("W7", "W7"), ("W1", "W0")]:
        total = sum(lm.prob(w, context) for w in lm.vocabulary)
        assert total == pytest.approx(1.0, abs=1e-9), context
    assert lm.prob("W7") > 0  # a lexicon word the texts never contain still has a probability


def test_ngram_lm_job(sis_setup):
    from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, write_corpus_json
    from librispeech_joint_training_given_alignments.data_prep.lexicon import write_lexicon
    from librispeech_joint_training_given_alignments.data_prep.lm_jobs import NgramLmFromCorpusJob
    from librispeech_joint_training_given_alignments.data_prep.testing import run_graph
    from librispeech_joint_training_given_alignments.sisyphus_api import tk

    entries = [CorpusEntry("train/1-2-0001/1-2-0001", "/x/a.flac", 1.0, 16000, "A B", "1", "2"),
               CorpusEntry("train/1-2-0002/1-2-0002", "/x/b.flac", 1.0, 16000, "A", "1", "2")]
    write_corpus_json(str(sis_setup / "corpus.json"), "train", entries, 16000)
    write_lexicon(str(sis_setup / "lexicon.json"), {"A": ["AH"], "B": ["B", "IY"], "C": ["S", "IY"]})
    job = NgramLmFromCorpusJob([tk.Path(str(sis_setup / "corpus.json"))], tk.Path(str(sis_setup / "lexicon.json")),
                               order=2)
    run_graph([job.out_arpa])
    assert job.out_num_sentences.get() == 2 and job.out_num_words.get() == 3
    assert f"{math.log10(0.35):.7f}\tA B\n" in open(job.out_arpa.get_path()).read()


# ------------------------------------------------------------------------------------------- errors count

def test_greedy_unknown_word_is_a_substitution_for_sclite(sis_setup):
    from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, write_corpus_json
    from librispeech_joint_training_given_alignments.jobs.scoring import (CorpusToStmJob, ScliteJob,
                                                                          SearchWordsToCtmJob)
    from librispeech_joint_training_given_alignments.sisyphus_api import tk

    mapper = LexiconWordMapper(LEXICON)
    hyp_unknown = mapper(["AH#", "B", "OW", "D#"])  # "B OW D" is no word
    hyp_homophone = mapper(["DH", "EY#", "R", "EH", "D#"])  # READ/RED: READ comes first
    assert hyp_unknown == ["A", "<unk>"] and hyp_homophone == ["THEY", "READ"]
    entries = [CorpusEntry("dev/1-2-0001/1-2-0001", "/x/a.flac", 1.0, 16000, "A BOAT", "1", "2"),
               CorpusEntry("dev/1-2-0002/1-2-0002", "/x/b.flac", 1.0, 16000, "THEY RED", "1", "2")]
    write_corpus_json(str(sis_setup / "corpus.json"), "dev", entries, 16000)
    (sis_setup / "search_out.py").write_text(repr({entries[0].seq_tag: " ".join(hyp_unknown),
                                                   entries[1].seq_tag: " ".join(hyp_homophone)}))
    corpus = tk.Path(str(sis_setup / "corpus.json"))
    ctm = SearchWordsToCtmJob(tk.Path(str(sis_setup / "search_out.py")), corpus).out_ctm
    sclite = ScliteJob(CorpusToStmJob(corpus).out_stm, ctm, precision_ndigit=2)
    tk.run(sclite.out_wer)
    assert (sclite.out_num_substitutions.get(), sclite.out_num_deletions.get(), sclite.out_num_insertions.get(),
            sclite.out_num_words.get()) == (2, 0, 0, 4)
    assert sclite.out_wer.get() == 50.0


# ------------------------------------------------------------------------------------------- front end

def test_synthesis_output_reads_back_as_the_real_front_end(tmp_path):
    """A real utterance as the model sees it (pre-emphasised, what Griffin-Lim reconstructs), written by the synthesis
    output path and read back through the OggZip front end, gives the features of the original recording."""
    import soundfile
    from returnn.datasets.basic import init_dataset

    from librispeech_joint_training_given_alignments.data_prep import datasets as ds
    from librispeech_joint_training_given_alignments.data_prep.audio_containers import write_ogg_zip
    from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry
    from librispeech_joint_training_given_alignments.data_prep.features import preemphasize
    from librispeech_joint_training_given_alignments.data_prep.synthesis import DEFAULT_VOICES, synthesize_to_flac
    from librispeech_joint_training_given_alignments.jobs.evaluation import read_audio_list
    from librispeech_joint_training_given_alignments.pytorch_networks.configs import FeatureExtractionConfig
    from librispeech_joint_training_given_alignments.pytorch_networks.feature_extraction import DbMelFeatureExtraction
    from librispeech_joint_training_given_alignments.pytorch_networks.vocoder import write_synthesis_audio

    options = ds.raw_audio_options(0.97)  # the training front end
    for d in ("real", "synth"):
        os.makedirs(tmp_path / d)
    real_file = str(tmp_path / "real" / "u.flac")
    synthesize_to_flac(DEFAULT_VOICES[0], "EVERY RED BOAT STOOD", 1.0, real_file)
    wave, sr = soundfile.read(real_file, dtype="float32")
    model_view = preemphasize(wave, options["preemphasis"])
    synth_file = str(tmp_path / "synth" / "u.flac")
    assert write_synthesis_audio(synth_file, model_view, sr, options["preemphasis"]) == 1.0  # no gain change
    (tmp_path / "synth" / "audio_files.txt").write_text(f"t/u/u\tu.flac\t{len(wave) / sr:.4f}\n")
    assert read_audio_list(str(tmp_path / "synth" / "audio_files.txt"))["t/u/u"][0] == synth_file

    fe = DbMelFeatureExtraction(FeatureExtractionConfig(norm=(-60.0, 20.0)))

    def front_end(audio_file: str, name: str) -> np.ndarray:
        entry = CorpusEntry("t/u/u", audio_file, len(wave) / sr, len(wave), "EVERY RED BOAT STOOD", "1", "1")
        zip_file = str(tmp_path / f"{name}.ogg.zip")
        write_ogg_zip([entry], zip_file)
        dataset = init_dataset(ds.ogg_zip_dataset([zip_file], audio=options))
        dataset.init_seq_order(epoch=1)
        dataset.load_seqs(0, 1)
        audio = dataset.get_data(0, "data").reshape(1, -1)
        feats, _ = fe(torch.from_numpy(audio), torch.tensor([audio.shape[1]]))
        return feats[0].numpy()

    real, synth = front_end(real_file, "real"), front_end(synth_file, "synth")
    assert real.shape == synth.shape
    assert np.abs(real - synth).max() < 1e-3  # 16-bit FLAC of the de-emphasised waveform: the same samples
    # the old path (pre-emphasised waveform, peak-normalised) is far off: the test can tell
    soundfile.write(synth_file, model_view / np.abs(model_view).max(), sr, subtype="PCM_16")
    assert np.abs(real - front_end(synth_file, "old")).mean() > 0.3


def test_synthesis_output_scales_only_to_avoid_clipping():
    from librispeech_joint_training_given_alignments.pytorch_networks.vocoder import (deemphasize,
                                                                                        synthesis_output_waveform)

    rng = np.random.default_rng(0)
    quiet = (0.05 * rng.standard_normal(4000)).astype(np.float32)
    out, gain = synthesis_output_waveform(quiet, 0.97)
    assert gain == 1.0 and np.allclose(out, deemphasize(quiet, 0.97))  # not normalised up
    loud = 20 * quiet
    out, gain = synthesis_output_waveform(loud, 0.97)
    assert gain < 1.0 and np.abs(out).max() <= 1.0
    assert np.allclose(out / gain, deemphasize(loud, 0.97), rtol=1e-4, atol=1e-4)


def test_length_ratio_job(sis_setup):
    from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, write_corpus_json
    from librispeech_joint_training_given_alignments.jobs.evaluation import SynthesisLengthRatioJob
    from librispeech_joint_training_given_alignments.sisyphus_api import tk

    entries = [CorpusEntry("cv/1-2-0001/1-2-0001", "/x/a.flac", 2.0, 32000, "A", "1", "2"),
               CorpusEntry("cv/1-2-0002/1-2-0002", "/x/b.flac", 4.0, 64000, "B", "1", "2")]
    write_corpus_json(str(sis_setup / "corpus.json"), "cv", entries, 16000)
    (sis_setup / "audio_files.txt").write_text("cv/1-2-0001/1-2-0001\ta.flac\t1.0000\n"
                                               "cv/1-2-0002/1-2-0002\tb.flac\t5.0000\n")
    job = SynthesisLengthRatioJob(tk.Path(str(sis_setup / "audio_files.txt")), tk.Path(str(sis_setup / "corpus.json")))
    tk.run([job.out_length_ratio])
    assert job.out_length_ratio.get() == 1.0  # 6 s / 6 s
    assert job.out_mean_length_ratio.get() == 0.875  # (0.5 + 1.25) / 2
