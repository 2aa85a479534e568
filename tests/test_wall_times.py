"""Job wall times from the workers' usage files: known answers, the report section, and a real engine run."""
import os

import pytest

from librispeech_joint_training_given_alignments.embedded_sisyphus import job_dir as jd
from librispeech_joint_training_given_alignments.report import wall_times as wt
from librispeech_joint_training_given_alignments.sisyphus_api import tk

import engine_jobs


def _usage(root, job, task, **values):
    os.makedirs(root / job, exist_ok=True)
    jd.write_usage(str(root / job / f"usage.{task}"), **values)


def test_totals_span_and_order_from_usage_files(tmp_path):
    _usage(tmp_path, "a/Train.abc", "run.1", start=1000.0, used_time_h=0.5, finished=True)  # 1800 s
    _usage(tmp_path, "a/Train.abc", "run.2", start=1100.0, used_time_h=0.25, finished=True)  # 900 s
    _usage(tmp_path, "b/Score.xyz", "run.1", start=4000.0, used_time_h=0.1, finished=True)  # 360 s, ends 4360
    _usage(tmp_path, "c/Running.q", "run.1", start=4100.0, pid=1)  # still running: left out
    wall = wt.summarize(wt.collect_task_times(str(tmp_path)))
    assert wall.total_s == pytest.approx(3060.0)
    assert wall.span_s == pytest.approx(3360.0) and wall.first_start == 1000.0
    assert wall.jobs == (("a/Train.abc", pytest.approx(2700.0), 2), ("b/Score.xyz", pytest.approx(360.0), 1))
    md = wt.markdown_section(wall)
    assert md.startswith("## Job wall times")
    assert md.index("a/Train.abc") < md.index("b/Score.xyz")
    assert "| a/Train.abc | 45 min 00 s | 2700.0 | 88.2 % |" in md
    assert wt.summary_lines(wall, top=1)[1].split() == ["45", "min", "00", "s", "a/Train.abc", "(2", "task", "ids)"]
    assert "51 min 00 s" in wt.summary_lines(wall)[0] and "56 min 00 s" in wt.summary_lines(wall)[0]


def test_unreadable_usage_file_is_named(tmp_path):
    os.makedirs(tmp_path / "j")
    (tmp_path / "j" / "usage.run.1").write_text("{not a dict")
    with pytest.raises(ValueError, match="usage.run.1"):
        wt.collect_task_times(str(tmp_path))


def test_engine_run_records_wall_times(sis_setup):
    numbers = [engine_jobs.WriteNumber(i) for i in range(2)]
    total = engine_jobs.SumNumbers([n.out_number for n in numbers])
    tk.run(total.out_sum)
    wall = wt.summarize(wt.collect_task_times(str(sis_setup / "work")))
    assert {job for job, _, _ in wall.jobs} == {j.job_id() for j in numbers + [total]}
    assert dict((job, n) for job, _, n in wall.jobs)[total.job_id()] == 3  # partial.1, partial.2, finalize.1
    assert 0 < wall.total_s and 0 < wall.span_s < 600
