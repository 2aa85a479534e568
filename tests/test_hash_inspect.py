"""``sis-local hash``: the readable tree of what went into a job's hash, and the diff of two jobs of one class."""
import os

import pytest

from librispeech_joint_training_given_alignments.data_prep.lexicon_jobs import CmuLexiconJob, PhonemeHdfJob
from librispeech_joint_training_given_alignments.embedded_sisyphus import cli, hash_inspect, tk
from librispeech_joint_training_given_alignments.embedded_sisyphus.job_dir import setup_job_directory
from librispeech_joint_training_given_alignments.jobs.returnn_config import ReturnnConfig
from librispeech_joint_training_given_alignments.jobs.returnn_training import ReturnnTrainingJob


@pytest.fixture
def jobs(sis_setup):
    lexicon = CmuLexiconJob([tk.Path("/corpora/train.json.gz")])
    tts = PhonemeHdfJob([tk.Path("/corpora/train.json.gz")], lexicon.out_lexicon, "tts")
    asr = PhonemeHdfJob([tk.Path("/corpora/train.json.gz")], lexicon.out_lexicon, "asr_eow")
    return lexicon, tts, asr


def test_tree_shows_hashed_arguments_with_inputs_as_job_ids(jobs):
    lexicon, tts, _ = jobs
    text = hash_inspect.format_tree(tts)
    assert text.splitlines()[0] == tts.job_id()
    assert f"  lexicon_file: Path {lexicon.job_id()}/output/lexicon.json" in text.splitlines()
    assert "  kind: 'tts'" in text.splitlines()
    assert "    [0]: Path input /corpora/train.json.gz" in text.splitlines()


def test_tree_shows_what_hash_hashed_not_the_constructor_arguments(sis_setup):
    job = ReturnnTrainingJob(ReturnnConfig(config={"batch_size": 10}), num_epochs=3, device="cpu")
    lines = hash_inspect.format_tree(job).splitlines()
    assert any(line.startswith("  not hashed") and "num_epochs" in line and "device" in line for line in lines)
    assert "  returnn_config: <ReturnnConfig>" in lines
    assert "      batch_size: 10" in lines  # ReturnnConfig hashes {"returnn_config": config, ...}


def test_diff_names_exactly_the_differing_values(jobs):
    lexicon, tts, asr = jobs
    assert hash_inspect.diff(tts, asr) == ["kind:\n  - 'tts'\n  + 'asr_eow'"]
    assert hash_inspect.diff(tts, tts) == []
    with pytest.raises(ValueError, match="different classes"):
        hash_inspect.diff(tts, lexicon)


def test_cli_reads_job_save_files_and_job_dirs(jobs, capsys):
    lexicon, tts, asr = jobs
    for job in jobs:
        setup_job_directory(job)
    assert cli.main(["hash", os.path.join("work", tts.job_id()), asr.work_path()]) == 0
    out = capsys.readouterr().out
    assert out == f"--- {tts.job_id()}\n+++ {asr.job_id()}\nkind:\n  - 'tts'\n  + 'asr_eow'\n"
    # from job.save the input paths lost their creator (as in Sisyphus): still shown as the creating job's id
    tk.sis_graph.clear()
    from librispeech_joint_training_given_alignments.embedded_sisyphus.job import created_jobs

    created_jobs.clear()
    assert cli.main(["hash", tts.job_id()]) == 0
    assert f"  lexicon_file: Path {lexicon.job_id()}/output/lexicon.json" in capsys.readouterr().out.splitlines()

