"""The results report: tables with pending values, figures from hand-made RETURNN/HDF/audio inputs, and the page
as a browser shows it (headless Chromium from file://)."""
import csv
import io
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from librispeech_joint_training_given_alignments.data_prep import hdf
from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, write_corpus_json
from librispeech_joint_training_given_alignments.jobs.learning_rates import (
    LearningRatesError, parse_learning_rates, read_learning_rates)
from librispeech_joint_training_given_alignments.report import ReportSpec, ReportWriter, register_report, report_dir
from librispeech_joint_training_given_alignments.sisyphus_api import tk

import engine_jobs

TEXTS = {"dev/a/a": "the quick brown fox jumps over the lazy dog",
         "dev/b/b": "a tiny corpus for a test of the report",
         "dev/c/c": "speech synthesis with given alignments"}


def _learning_rates_text(epochs):
    """The file exactly as RETURNN writes it (its own EpochData repr and better_repr)."""
    from returnn.learning_rate_control import LearningRateControl
    from returnn.util.basic import better_repr

    return better_repr({ep: LearningRateControl.EpochData(learning_rate=1e-3, error=err)
                        for ep, err in epochs.items()}) + "\n"


def test_learning_rates_parsed_without_eval(tmp_path):
    text = _learning_rates_text({1: {"train_loss_mle": 1.5, "dev_loss_mle": float("nan")},
                                 2: {"train_loss_mle": 1.25, "dev_loss_mle": 1.0, ":meta:effective_lr": 0.5}})
    (tmp_path / "lr").write_text(text)
    scores = read_learning_rates(str(tmp_path / "lr"))
    assert scores[2] == {"train_loss_mle": 1.25, "dev_loss_mle": 1.0}
    assert np.isnan(scores[1]["dev_loss_mle"])
    plain = parse_learning_rates("{3: {'learning_rate': 0.1, 'error': {'dev_score': 2.0}}}")
    assert plain[3].learning_rate == 0.1 and plain[3].scores == {"dev_score": 2.0}
    with pytest.raises(LearningRatesError, match="evil"):
        parse_learning_rates("{1: EpochData(learningRate=__import__('os').system('true'), error={})}", "evil")


def _flite(text, path, sample_rate=16000):
    wav = str(path) + ".flite.wav"
    subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", wav], check=True, capture_output=True)
    audio, sr = soundfile.read(wav, dtype="float32")
    os.remove(wav)
    assert sr == sample_rate
    return audio


def _durations_hdf(path, durations):
    with hdf.open_writer(str(path), dim=1, ndim=1) as writer:
        for tag, dur in durations.items():
            hdf.write_seq(writer, tag, np.asarray(dur, dtype="int32"))
    return tk.Path(str(path))


@pytest.fixture
def inputs(sis_setup):
    """Real audio (a corpus description, FLAC), resynthesis (wav list) and one TTS model (ogg list), a RETURNN
    learning-rates file, two durations HDFs; everything a default run would register, made by hand."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    data = sis_setup / "inputs"
    for sub in ("real", "resynth/audio_files", "tts/audio_files"):
        (data / sub).mkdir(parents=True)
    entries, resynth, tts = [], [], []
    for tag, text in TEXTS.items():
        name = tag.replace("/", "_")
        audio = _flite(text, data / name)
        soundfile.write(data / "real" / f"{name}.flac", audio, 16000)
        soundfile.write(data / "resynth" / "audio_files" / f"{name}.wav", 0.8 * audio, 16000)
        soundfile.write(data / "tts" / "audio_files" / f"{name}.ogg", audio[::-1].copy(), 16000, subtype="VORBIS")
        entries.append(CorpusEntry(tag, str(data / "real" / f"{name}.flac"), len(audio) / 16000, len(audio),
                                   text.upper(), "s1", "c1"))
        resynth.append(f"{tag}\taudio_files/{name}.wav\t{len(audio) / 16000:.4f}\n")
        tts.append(f"{tag}\taudio_files/{name}.ogg\t{len(audio) / 16000:.4f}\n")
    write_corpus_json(str(data / "real" / "corpus.json"), "dev", entries, 16000)
    (data / "resynth" / "audio_files.txt").write_text("".join(resynth))
    (data / "tts" / "audio_files.txt").write_text("".join(tts))
    (data / "learning_rates").write_text(_learning_rates_text(
        {ep: {"train_loss_mle": 2.0 / ep, "train_loss_dp": 1.0 / ep, "dev_loss_mle": 2.5 / ep,
              "dev_loss_dp": 1.2 / ep} for ep in (1, 2, 3)}))
    given = _durations_hdf(data / "given.hdf", {"dev/a/a": [3, 5, 2, 7], "dev/b/b": [4, 4, 4]})
    mas = _durations_hdf(data / "mas.hdf", {"dev/a/a": [2, 6, 3, 6], "dev/b/b": [5, 3, 4]})
    return {"dir": data, "real": tk.Path(str(data / "real" / "corpus.json")),
            "resynth": tk.Path(str(data / "resynth" / "audio_files.txt")),
            "tts": tk.Path(str(data / "tts" / "audio_files.txt")),
            "learning_rates": tk.Path(str(data / "learning_rates")), "given": given, "mas": mas}


def _spec(inputs, finished_job, unfinished_job):
    spec = ReportSpec(title="test report", num_audio=2, notes=["Hand-made inputs."])
    spec.add_row("exp_tts", "model_a", {"sWER": {"wer": finished_job.out_number, "sub": 3, "del": 1, "ins": 0},
                                        "DNSMOS ovr": 3.21, "length ratio": None})
    spec.add_row("exp_tts", "model_b", {"sWER": {"wer": unfinished_job.out_number}, "DNSMOS ovr": 2.5})
    spec.add_row("exp_joint_2step", "asr_baseline", {"WER test": 75.77, "phoneme accuracy": 0.474641})
    spec.curves["model_a"] = inputs["learning_rates"]
    spec.curves["model_b (not started)"] = tk.Path(str(inputs["dir"] / "missing_learning_rates"))
    spec.audio.update({"real": inputs["real"], "resynthesis": inputs["resynth"], "model_a": inputs["tts"],
                       "model_b": tk.Path(str(inputs["dir"] / "missing_audio_files.txt"))})
    spec.alignments.update({"given": inputs["given"], "MAS": inputs["mas"],
                            "reference": tk.Path(str(inputs["dir"] / "missing.hdf"))})
    return spec


def test_partial_results_show_pending_until_their_job_finishes(inputs, sis_setup):
    finished, unfinished = engine_jobs.WriteNumber(42.5), engine_jobs.WriteNumber(7)
    spec = _spec(inputs, finished, unfinished)
    writer = register_report("exp", spec, update_frequency=3600)
    target = tk.sis_graph.targets[-1]
    out = report_dir("exp")
    assert out == str(sis_setup / "output" / "exp" / "report")

    assert target.update() is False  # written although nothing required is finished yet
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert [(r["family"], r["experiment"]) for r in rows] == [
        ("exp_tts", "model_a"), ("exp_tts", "model_b"), ("exp_joint_2step", "asr_baseline")]
    assert rows[0]["sWER wer"] == "pending" and rows[1]["sWER wer"] == "pending"
    assert rows[0]["sWER sub"] == "3" and rows[0]["length ratio"] == "" and rows[1]["sWER sub"] == ""
    assert rows[2]["WER test"] == "75.77" and rows[2]["sWER wer"] == ""
    markdown = open(os.path.join(out, "results.md")).read()
    assert "| model_a | pending | 3 | 1 | 0 | 3.21 |  |" in markdown
    assert "2 value(s) pending" in markdown and "| asr_baseline | 75.77 | 0.4746 |" in markdown

    tk.run([finished.out_number])
    assert target.update() is False  # one value arrived: rewritten at once although the period is an hour
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert rows[0]["sWER wer"] == "42.5" and rows[1]["sWER wer"] == "pending"
    page = open(os.path.join(out, "index.html")).read()
    assert '<td class="value">42.50</td>' in page and '<td class="pending">pending</td>' in page
    assert "model_b (not started): pending" in page and "reference: pending" in page
    assert writer().startswith("# test report")


def test_figures_are_redrawn_only_when_their_inputs_change(inputs, sis_setup):
    spec = _spec(inputs, engine_jobs.WriteNumber(1), engine_jobs.WriteNumber(2))
    ReportWriter(spec, report_dir("exp"), max_draw_seconds=0)()  # no time to draw: figures announced, not drawn
    page = open(os.path.join(report_dir("exp"), "index.html")).read()
    assert page.count("drawn at the next update") == 4 and "<img" not in page
    writer = register_report("exp", spec, max_draw_seconds=600)
    writer()
    plots_dir = os.path.join(report_dir("exp"), "plots")
    pngs = sorted(os.listdir(plots_dir))
    assert len(pngs) == 4  # one training curve, spectrograms, alignment path, duration histogram
    mtimes = {p: os.stat(os.path.join(plots_dir, p)).st_mtime_ns for p in pngs}
    writer()
    ReportWriter(spec, report_dir("exp"), max_draw_seconds=600)()  # a restarted manager: the cache is read back
    assert {p: os.stat(os.path.join(plots_dir, p)).st_mtime_ns for p in pngs} == mtimes
    lr = inputs["learning_rates"].get_path()
    with open(lr, "w") as f:
        f.write(_learning_rates_text({ep: {"train_loss_mle": 1.0 / ep, "dev_loss_mle": 1.1 / ep} for ep in (1, 2)}))
    os.utime(lr, ns=(1, 1))  # a different modification time, whatever the clock resolution
    writer()
    changed = {p for p in pngs if os.stat(os.path.join(plots_dir, p)).st_mtime_ns != mtimes[p]}
    assert len(changed) == 1 and changed.pop().startswith("curves_model_a")


_PAGE_CHECK = """
(async () => {
  const audios = [...document.querySelectorAll("audio")];
  const loaded = await Promise.all(audios.map(a => new Promise(resolve => {
    const done = () => resolve({src: a.getAttribute("src"), ready: a.readyState, duration: a.duration,
                                error: a.error ? a.error.code : null});
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener("loadedmetadata", done);
    a.addEventListener("error", done);
    setTimeout(done, 10000);
  })));
  const images = [...document.images];
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return {
    tables: [...document.querySelectorAll("table.results")].map(t => t.dataset.family),
    rows: document.querySelectorAll("table.results tbody tr").length,
    pending: document.querySelectorAll("table.results td.pending").length,
    images: images.map(i => ({src: i.getAttribute("src"), width: i.naturalWidth})),
    audio: loaded,
    external: [...document.querySelectorAll("[src],[href]")].map(x => x.getAttribute("src") || x.getAttribute("href"))
      .filter(u => /^(https?:)?\\/\\//.test(u) || u.startsWith("/")),
  };
})()
"""


def test_page_renders_in_headless_chromium(inputs, sis_setup):
    from headless_chromium import Chromium, chromium_executable
    from PIL import Image

    if chromium_executable() is None:
        pytest.skip("chromium is not installed (scripts/setup_env.sh installs it)")
    finished, unfinished = engine_jobs.WriteNumber(42.5), engine_jobs.WriteNumber(7)
    writer = register_report("exp", _spec(inputs, finished, unfinished), max_draw_seconds=600)
    tk.run([finished.out_number])
    writer()
    # the page must not depend on the inputs' locations: move the report away from the experiment directory
    moved = sis_setup / "elsewhere" / "report"
    shutil.copytree(report_dir("exp"), moved)
    shutil.rmtree(inputs["dir"])
    with Chromium(width=1300, height=900) as browser:
        browser.open((moved / "index.html").as_uri())
        state = browser.evaluate(_PAGE_CHECK)
        screenshot = Image.open(io.BytesIO(browser.screenshot())).convert("RGB")
    assert state["tables"] == ["exp_tts", "exp_joint_2step"] and state["rows"] == 3 and state["pending"] == 1
    assert state["external"] == []
    assert len(state["images"]) == 4 and all(i["width"] > 100 for i in state["images"]), state["images"]
    # 2 utterances x (real FLAC, resynthesised WAV, TTS Ogg Vorbis); model_b has no audio yet
    assert len(state["audio"]) == 6, state["audio"]
    for a in state["audio"]:
        assert a["error"] is None and a["ready"] >= 1 and 2.0 < a["duration"] < 6.0, a
    durations = sorted(round(a["duration"], 2) for a in state["audio"])
    assert durations[0] != durations[-1]  # two different utterances
    pixels = np.asarray(screenshot)
    assert pixels.shape[0] > 900  # the whole page, beyond the first screen
    non_white = (pixels.min(axis=2) < 200).mean()
    assert 0.05 < non_white < 0.9, non_white  # text, tables and figures, not a blank or black page
    colourful = (pixels.max(axis=2).astype(int) - pixels.min(axis=2) > 80).mean()
    assert colourful > 0.01  # the spectrogram colour map and curve lines made it onto the screen

