"""Table 2 and Fig. 7 reports, built from real (tiny) runs."""
import subprocess
import sys

import pytest

from dni_repro.config import REPO_ROOT
from dni_repro.reports.recurrent import fig7_reports, runs_kept_in, setting, table2_markdown, with_kept_runs
from dni_repro.reports.figures import load_runs, seeds_per
from tests.conftest import CLI_ENV, run_in_process
from tests.fake_datasets import write_ptb_char

RUNS = {
    "table2_repeat_copy/a": ["experiment=table2_repeat_copy", "interface=bptt", "trainer.bptt_length=2"],
    "table2_repeat_copy/b": ["experiment=table2_repeat_copy", "interface=dni_aux", "trainer.bptt_length=2"],
    "table2_lm/a": ["experiment=table2_lm", "interface=dni_aux", "trainer.bptt_length=5"],
    "table2_lm/b": ["experiment=table2_lm", "interface=bptt", "trainer.bptt_length=20"],
}

COPY_CURRICULUM = ["dataset.copy_task.window_steps=1", "dataset.copy_task.threshold_bits=100"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    write_ptb_char(root / "data" / "ptb_char")
    for folder, overrides in RUNS.items():
        # The curriculum settings exist for the copy tasks only: a language-model run's schema has no copy_task.
        curriculum = COPY_CURRICULUM if folder.startswith("table2_repeat_copy") else []
        run_in_process([*overrides, f"paths.data_dir={root / 'data'}", "trainer.max_steps=6", *curriculum],
                       root / folder)
    return root


def test_table2_puts_reproduced_and_paper_numbers_in_separate_columns(logs):
    runs = load_runs(logs)
    markdown = table2_markdown(runs)
    lines = markdown.splitlines()
    repeat_row = next(line for line in lines[lines.index("## Repeat Copy"):] if line.startswith("| 2 |"))
    solved = {r.config["interface"]["name"]: r.summary["max_task_length_solved"] for r in runs
              if r.config["dataset"]["name"] == "repeat_copy"}
    # | T | BPTT ours | BPTT paper | DNI ours | DNI paper | Aux ours | Aux paper |
    cells = [c.strip() for c in repeat_row.strip("|").split("|")]
    assert cells == ["2", str(solved["bptt"]), "7", "—", "39", str(solved["dni_aux"]), "39"]
    lm_bpc = next(r.summary["test_bpc"] for r in runs if r.config["trainer"]["bptt_length"] == 20)
    assert f"| 20 | {lm_bpc:.3f} | 1.35 | — | — | — | — |" in markdown
    assert "(corpus: ptb_char)" in markdown and "profile: smoke" in markdown and "LSTM units: 16" in markdown


def test_fig7_reports_time_to_target_and_writes_both_figures(logs, tmp_path):
    markdown, curriculum, bpc = fig7_reports(load_runs(logs))
    assert "DNI + Aux T=5 against BPTT T=20" in markdown and "| 0.58 |" in markdown and "2.0x" in markdown
    curriculum(tmp_path / "curriculum.png")
    bpc(tmp_path / "bpc.png")
    assert (tmp_path / "curriculum.png").stat().st_size > 10_000 and (tmp_path / "bpc.png").stat().st_size > 10_000


def test_longer_runs_each_get_a_time_to_target_section_against_bptt_t20(logs, tmp_path):
    from scripts.make_fig7 import long_run_sections

    sections = long_run_sections(load_runs(logs), logs / "table2_lm")
    assert "# Longer run: dni_aux T=5 for 6 steps" in sections and "Longer run: bptt" not in sections
    assert "| dni_aux T=5 |" in sections and "| bptt T=20 |" in sections
    with pytest.raises(SystemExit, match="no completed language-model runs"):
        long_run_sections(load_runs(logs), tmp_path)


def test_report_scripts_fail_clearly_without_runs(tmp_path):
    for script in ("make_table2.py", "make_fig7.py"):
        result = subprocess.run([sys.executable, f"scripts/{script}", "--logs", str(tmp_path)], cwd=REPO_ROOT,
                                env=CLI_ENV, capture_output=True, text=True)
        assert result.returncode == 1 and "make table2" in result.stderr
    missing = subprocess.run([sys.executable, "scripts/make_table2.py", "--logs", str(tmp_path), "--keep-from",
                              str(tmp_path / "table2.md")], cwd=REPO_ROOT, env=CLI_ENV, capture_output=True, text=True)
    assert missing.returncode == 1 and "--keep-from" in missing.stderr and "is not a file" in missing.stderr
    broken = tmp_path / "table2.md"
    broken.write_text("## Provenance\n\n| copy | dni | 3 | 0 | 5 |\n")
    result = subprocess.run([sys.executable, "scripts/make_table2.py", "--logs", str(tmp_path), "--keep-from", str(broken)],
                            cwd=REPO_ROOT, env=CLI_ENV, capture_output=True, text=True)
    assert result.returncode == 1 and "has 5 cells, not 11" in result.stderr and len(result.stderr.splitlines()) == 1


def test_table2_shows_every_seed_of_a_setting(logs, tmp_path):
    second = tmp_path / "table2_repeat_copy" / "seed1"
    run_in_process([*RUNS["table2_repeat_copy/b"], "seed=1", "trainer.max_steps=6",
                    "dataset.copy_task.window_steps=1", "dataset.copy_task.threshold_bits=100"], second)
    runs = load_runs(logs) + load_runs(tmp_path)
    solved = sorted((r.config["seed"], r.summary["max_task_length_solved"]) for r in runs
                    if r.config["interface"]["name"] == "dni_aux" and r.config["dataset"]["name"] == "repeat_copy")
    markdown = table2_markdown(runs)
    mean = sum(value for _, value in solved) / 2
    assert f"| {mean:.1f} ({solved[0][1]}, {solved[1][1]}) | 39 |" in markdown


def test_an_earlier_table_keeps_its_runs_until_newer_folders_replace_them(logs):
    runs = load_runs(logs)
    table = table2_markdown(runs)
    assert table2_markdown(runs_kept_in(table)) == table  # what the table prints is enough to rebuild it
    # A run both in a folder and in the table's lines is taken from its folder (its result unrounded).
    chosen = [run for group in seeds_per(with_kept_runs(runs, table), setting).values() for run in group]
    assert sorted(map(id, chosen)) == sorted(map(id, runs))

    # An earlier table: the same settings, older and with other results, plus a Copy run only it has.
    earlier_lines = table.splitlines()
    for i, line in enumerate(earlier_lines):
        if line.startswith("| repeat_copy |") or line.startswith("| lm |"):
            cells = line.split("|")
            cells[5], cells[9] = " 99 ", " 2000-01-01T00:00:00+00:00 "
            earlier_lines[i] = "|".join(cells)
    earlier_lines.append("| copy | dni | 3 | 0 | 11 | quick | 30000 | cpu (1 thread) | 2000-01-02T00:00:00+00:00 "
                         "| abc123 | runs/kept_copy |")
    merged = table2_markdown(runs + runs_kept_in("\n".join(earlier_lines)))
    assert "2000-01-01" not in merged and "| 99 |" not in merged  # every older run of a setting the folders have was replaced
    assert "| copy | dni | 3 | 0 | 11 | quick | 30000 |" in merged and "runs/kept_copy" in merged
    assert "| 3 | — | 8 | 11 | 14 | — | 17 |" in merged
    for row in ("## Repeat Copy", "## Character language model"):  # the rows the folders have are unchanged
        assert merged.split(row)[1].split("## ")[0] == table.split(row)[1].split("## ")[0]
