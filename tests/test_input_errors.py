"""Bad input files are caught and named (file, role, sequence tag), never read as code (issue 11)."""
import os

import numpy as np
import pytest
import soundfile

from librispeech_joint_training_given_alignments.data_prep import corpus, durations, hdf, xvectors
from librispeech_joint_training_given_alignments.embedded_sisyphus.job_path import Variable
from librispeech_joint_training_given_alignments.jobs.scoring import read_search_output

SR = 16000


def _tree(tmp_path, audio=None, trans_lines=None):
    """A LibriSpeech subset ``dev-clean`` of one chapter with two 0.5 s noise utterances (``audio`` overrides)."""
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "11" / "22"
    chapter.mkdir(parents=True)
    rng = np.random.default_rng(0)
    utts = {"11-22-0000": "HELLO WORLD", "11-22-0001": "GOOD MORNING"}
    for utt in utts:
        soundfile.write(str(chapter / f"{utt}.flac"), 0.1 * rng.standard_normal(SR // 2), SR)
    for utt, (data, kwargs) in (audio or {}).items():
        soundfile.write(str(chapter / f"{utt}.flac"), data, SR, **kwargs)
    lines = trans_lines if trans_lines is not None else [f"{u} {t}".encode() for u, t in utts.items()]
    (chapter / "11-22.trans.txt").write_bytes(b"\n".join(lines) + b"\n")
    return str(tmp_path / "LibriSpeech"), str(chapter)


def test_clean_tree_reads(tmp_path):
    root, _ = _tree(tmp_path)
    assert [e.text for e in corpus.read_librispeech_subset(root, "dev-clean")] == ["HELLO WORLD", "GOOD MORNING"]


def test_non_utf8_transcript_is_named(tmp_path):
    root, chapter = _tree(tmp_path, trans_lines=[b"11-22-0000 HELLO WORLD", b"11-22-0001 GOOD MORN\xe9NG"])
    with pytest.raises(corpus.CorpusError, match=f"transcript {chapter}/11-22.trans.txt:2 is not UTF-8"):
        corpus.read_librispeech_subset(root, "dev-clean")


def test_duplicate_utterance_lines_are_named(tmp_path):
    root, chapter = _tree(tmp_path, trans_lines=[b"11-22-0000 HELLO WORLD", b"11-22-0001 GOOD MORNING",
                                                 b"11-22-0000 HELLO AGAIN"])
    with pytest.raises(corpus.CorpusError, match="sequence dev-clean/11-22-0000/11-22-0000 has two transcript "
                                                 f"lines: {chapter}/11-22.trans.txt:1 and .*:3"):
        corpus.read_librispeech_subset(root, "dev-clean")


def test_nan_and_inf_audio_are_named(tmp_path):
    bad = np.zeros(SR // 2, dtype=np.float32)
    bad[100], bad[200] = np.nan, np.inf
    root, chapter = _tree(tmp_path, audio={"11-22-0001": (bad, dict(format="WAV", subtype="FLOAT"))})
    with pytest.raises(corpus.CorpusError, match=f"{chapter}/11-22-0001.flac \\(sequence dev-clean/11-22-0001/"
                                                 "11-22-0001\\) has 2 NaN/Inf samples"):
        corpus.read_librispeech_subset(root, "dev-clean")


def test_one_sample_audio_is_too_short(tmp_path):
    root, chapter = _tree(tmp_path, audio={"11-22-0000": (np.array([0.1]), {})})
    with pytest.raises(corpus.CorpusError, match="11-22-0000.flac .*is too short: 1 samples"):
        corpus.read_librispeech_subset(root, "dev-clean")


def _write(path, seqs, dim=1, ndim=1):
    with hdf.open_writer(str(path), dim=dim, ndim=ndim) as w:
        for tag, data in seqs.items():
            hdf.write_seq(w, tag, data)
    return str(path)


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


@pytest.mark.parametrize("role", ["durations", "phonemes", "features"])
def test_truncated_hdf_is_named_with_its_role(tmp_path, role):
    files = {"durations": _write(tmp_path / "dur.hdf", {"a": np.array([2, 3], dtype=np.int32)}),
             "phonemes": _write(tmp_path / "phon.hdf", {"a": np.array([4, 5], dtype=np.int32)}),
             "features": _write(tmp_path / "feat.hdf", {"a": np.ones((5, 3), np.float32)}, dim=3, ndim=2)}
    _truncate(files[role])
    with pytest.raises(hdf.HdfReadError, match=f"{role} HDF {files[role]} cannot be read"):
        durations.validate_duration_hdf(files["durations"], files["phonemes"], files["features"])


def test_zero_and_too_few_frame_durations_are_errors_unless_allowed(tmp_path):
    dur = _write(tmp_path / "dur.hdf", {"a": np.array([5, 0], dtype=np.int32), "b": np.array([1, 1], np.int32)})
    phon = _write(tmp_path / "phon.hdf", {"a": np.array([4, 5], np.int32), "b": np.array([4, 5], np.int32)})
    feat = _write(tmp_path / "feat.hdf", {"a": np.ones((5, 3), np.float32), "b": np.ones((2, 3), np.float32)},
                  dim=3, ndim=2)
    with pytest.raises(durations.DurationError, match=f"durations HDF {dur}: sequence a: 1 phoneme\\(s\\) have zero "
                                                      "duration \\(positions \\[1\\]\\)"):
        durations.validate_duration_hdf(dur, phon, feat)
    assert durations.validate_duration_hdf(dur, phon, feat, allow_zero=True) == 2
    with pytest.raises(durations.DurationError, match="sequence c: 1 frames are too few for 2 phonemes"):
        durations.validate_durations({"c": np.array([1, 0])}, {"c": 2}, {"c": 1})


def test_nan_xvectors_are_named(tmp_path):
    vec = {"dev/1-2-3/1-2-3": np.ones((1, 4), np.float32), "dev/1-2-4/1-2-4": np.full((1, 4), np.nan, np.float32)}
    path = _write(tmp_path / "x.hdf", vec, dim=4, ndim=2)
    with pytest.raises(ValueError, match=f"x-vector HDF {path}: 1 sequence\\(s\\) have NaN/Inf x-vectors, "
                                         "e.g. \\['dev/1-2-4/1-2-4'\\]"):
        xvectors.check_embedding_hdf(path, sorted(vec))
    with pytest.raises(ValueError, match="NaN/Inf x-vectors"):
        xvectors.average_per_speaker(path, str(tmp_path / "avg.hdf"))


def test_given_xvector_dim_is_checked_against_the_config(tmp_path):
    vec = {"dev/1-2-3/1-2-3": np.ones((1, 4), np.float32)}
    path = _write(tmp_path / "x.hdf", vec, dim=4, ndim=2)
    assert xvectors.check_embedding_hdf(path, sorted(vec)) == 4
    with pytest.raises(ValueError, match=f"x-vector HDF {path}: sequence dev/1-2-3/1-2-3: x-vector dim 4, but the "
                                         "models are configured for 64"):
        xvectors.check_embedding_hdf(path, sorted(vec), dim=64)


def test_given_xvectors_get_the_configured_dim_at_graph_build(sis_setup):
    from librispeech_joint_training_given_alignments import data
    from librispeech_joint_training_given_alignments.data_prep.xvector_jobs import CheckGivenXVectorsJob
    from librispeech_joint_training_given_alignments.data_prep.xvectors import XVectorTrainingSettings
    from librispeech_joint_training_given_alignments.sisyphus_api import tk

    given = tk.Path(str(sis_setup / "given.hdf"))
    result = data.build_tts_training_datasets(tk.Path("/data/LibriSpeech"), xvectors_file=given,
                                              xvector_settings=XVectorTrainingSettings(embedding_dim=48))
    check = result.xvectors.creator
    assert isinstance(check, CheckGivenXVectorsJob) and check.expected_dim == 48
    assert result.extern_data["xvectors"]["dim"] == 48


def test_variables_and_search_outputs_are_data_not_code(tmp_path):
    victim = tmp_path / "executed"
    code = f"__import__('os').system('touch {victim}')\n"
    var_file = tmp_path / "var"
    var_file.write_text(code)
    with pytest.raises(ValueError, match=f"Variable {var_file} does not hold a Python literal"):
        Variable(str(var_file)).get()
    search = tmp_path / "search_out.py"
    search.write_text(code)
    with pytest.raises(ValueError, match=f"search output {search} is not a Python dict literal"):
        read_search_output(str(search))
    assert not victim.exists()
    var_file.write_text("{'wer': nan, 'x': [inf, -inf, 1.5], 't': ('a', None)}\n")
    value = Variable(str(var_file)).get()
    assert np.isnan(value["wer"]) and value["x"] == [float("inf"), float("-inf"), 1.5] and value["t"] == ("a", None)
    search.write_text("{'dev/1-2-3/1-2-3': 'HELLO WORLD',\n}\n")
    assert read_search_output(str(search)) == {"dev/1-2-3/1-2-3": "HELLO WORLD"}


def test_data_cache_is_keyed_by_the_durations_source(sis_setup):
    from librispeech_joint_training_given_alignments.experiment_setup import EMBEDDED, clear_data_cache, get_data
    from librispeech_joint_training_given_alignments.sisyphus_api import tk

    clear_data_cache()
    try:
        first = get_data(EMBEDDED, durations_from=lambda setup, base, per_token=False: tk.Path("/given/a.hdf"))
        second = get_data(EMBEDDED, durations_from=lambda setup, base, per_token=False: tk.Path("/given/b.hdf"))
        assert first.durations.creator.durations_hdf.get_path() == "/given/a.hdf"
        assert second.durations.creator.durations_hdf.get_path() == "/given/b.hdf"
    finally:
        clear_data_cache()


def test_predictor_durations_are_not_measured_against_flite(sis_setup):
    """Predictor durations need not add up to the frames: on the embedded corpus they get no boundary comparison
    (which would fail on the sums) and no oracle dataset; the Viterbi source keeps both."""
    import dataclasses

    from librispeech_joint_training_given_alignments.experiment_setup import EMBEDDED, clear_data_cache, get_data

    clear_data_cache()
    try:
        viterbi = get_data(EMBEDDED)
        assert set(viterbi.alignment_quality) == {"viterbi", "proportional"} and viterbi.tts_oracle is not None
        # a duration predictor places no blank in the audio: no whole Viterbi path for the given-alignment models
        with pytest.raises(ValueError, match="tts_given_token_durations needs .* durations_source='predictor'"):
            get_data(dataclasses.replace(EMBEDDED, durations_source="predictor"))
        predictor = get_data(dataclasses.replace(EMBEDDED, durations_source="predictor",
                                                 tts_given_token_durations=False))
        assert set(predictor.alignment_quality) == {"proportional"} and predictor.tts_oracle is None
        assert predictor.durations.creator is not viterbi.durations.creator  # validated without the sum check
        assert predictor.given_token_durations is None and "token_durations" not in predictor.tts.extern_data
        assert viterbi.given_token_durations is not None and "token_durations" in viterbi.tts.extern_data
    finally:
        clear_data_cache()
