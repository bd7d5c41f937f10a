"""run_all.py and the notebook harness under bad input and Ctrl-C: one line and a non-zero exit before
any notebook starts, a summary of what finished when interrupted (issue 15, item 5)."""
import importlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipstudy.errors import ConfigError
from clipstudy.manifest import load_manifest
from clipstudy.notebook import (
    Job, NotebookRun, check_device, check_model_name, execute, injected_parameters, setup_notebook,
)

ROOT = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_MANIFEST = FIXTURES / "manifest.yaml"
INTERRUPTED = "clipstudy: interrupted (finished work is saved; rerun to resume)"


def _run_all():
    """A fresh copy of the run_all module (so a test may replace its ``execute``)."""
    spec = importlib.util.spec_from_file_location("run_all_under_test", ROOT / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manifest(folder: Path, names, extra_cells: dict | None = None) -> Path:
    """A manifest of copies of the good fixture named ``names`` (each may get extra code cells after its
    setup cell), next to good.ipynb itself (their setup cell reads its parameter types)."""
    import nbformat
    from nbformat.v4 import new_code_cell

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "good.ipynb", folder / "good.ipynb")
    entries = []
    for name in names:
        nb = nbformat.read(FIXTURES / "good.ipynb", as_version=4)
        for i, source in enumerate((extra_cells or {}).get(name, [])):
            nb.cells.insert(3 + i, new_code_cell(source))
        nbformat.write(nb, folder / f"{name}.ipynb")
        entries.append(f"  {name}.ipynb:\n    title: {name}\n    figures: [good_line]\n")
    path = folder / "manifest.yaml"
    path.write_text("notebooks:\n" + "".join(entries))
    return path


def _rows(table: str, names) -> dict:
    """``{notebook: status}`` from run_all's printed summary table."""
    rows = {}
    for line in table.splitlines():
        words = line.split()
        if words and words[0] in names:
            rows[words[0]] = "not run" if words[1:3] == ["not", "run"] else words[1]
    return rows


# ----------------------------------------------------------------- Ctrl-C

def test_ctrl_c_prints_what_finished_and_exits_130(tmp_path, capsys):
    names = ["first", "second", "third"]
    manifest = _manifest(tmp_path / "nb", names)
    run_all = _run_all()
    started = []

    def execute_then_interrupt(job, progress_bar=True):
        started.append(job.spec.name)
        if len(started) == 2:
            raise KeyboardInterrupt
        return NotebookRun(job.spec.name, "ok", 0.5, job.out_dir / "x.ipynb", ["good_line"], [], {"total": 4.0})

    run_all.execute = execute_then_interrupt
    out = tmp_path / "runs"
    code = run_all.main(["--manifest", str(manifest), "--out", str(out), "--figures-dir", str(tmp_path / "fig"),
                         "--no-progress"])
    assert code == 130
    captured = capsys.readouterr()
    assert captured.err.strip() == INTERRUPTED
    assert "Traceback" not in captured.out + captured.err
    assert _rows(captured.out, names) == {"first": "ok", "second": "interrupted", "third": "not run"}
    assert started == ["first", "second"]  # nothing ran after Ctrl-C
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert [(n["notebook"], n["status"]) for n in summary["notebooks"]] == [
        ("first", "ok"), ("second", "interrupted"), ("third", "not run")]
    assert summary["notebooks"][0]["records"] == {"total": 4.0}


def test_ctrl_c_before_any_notebook_is_one_line(tmp_path, capsys):
    run_all = _run_all()

    def interrupted_plan(*args, **kwargs):
        raise KeyboardInterrupt

    run_all.plan = interrupted_plan
    assert run_all.main(["--manifest", str(FIXTURE_MANIFEST), "--out", str(tmp_path / "runs")]) == 130
    assert capsys.readouterr().err.strip() == INTERRUPTED


@pytest.mark.notebook
def test_ctrl_c_of_a_real_run_interrupts_the_kernel_and_summarises(tmp_path):
    """SIGINT to run_all.py while a notebook's cell runs: exit 130 within seconds, no traceback, the
    summary names the interrupted notebook and the one not run, and the kernel is gone."""
    slow_cell = ("import os, pathlib, time\n"
                 "pathlib.Path(out_dir, 'kernel.pid').write_text(str(os.getpid()))\n"
                 "for _ in range(1200):\n    time.sleep(0.05)")
    manifest = _manifest(tmp_path / "nb", ["slow", "after"], {"slow": [slow_cell]})
    out = tmp_path / "runs"
    env = {**os.environ, "CLIPSTUDY_HOME": str(tmp_path / "home"), "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_all.py"), "--manifest", str(manifest), "--out", str(out),
         "--figures-dir", str(tmp_path / "fig"), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, even if we ignore it
    )
    pid_file = out / "slow" / "kernel.pid"
    deadline = time.time() + 90
    while not (pid_file.exists() and pid_file.read_text()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    kernel_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert INTERRUPTED in stderr
    assert "Traceback" not in stdout + stderr
    assert _rows(stdout, ["slow", "after"]) == {"slow": "interrupted", "after": "not run"}
    assert not (out / "after").exists()
    for _ in range(50):  # the kernel was shut down, not left running
        try:
            os.kill(kernel_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"kernel {kernel_pid} still runs after run_all.py exited")


# ----------------------------------------------------------------- options checked before launching

def _where(tmp_path) -> list[str]:
    """Options keeping a run that should not start (smoke profile) out of the repository's folders."""
    return ["--profile", "smoke", "--out", str(tmp_path / "runs"), "--figures-dir", str(tmp_path / "fig")]


def test_unknown_model_fails_before_any_notebook_starts(tmp_path, capsys):
    main, out = _run_all().main, tmp_path / "runs"
    for args in (["--model", "embeded"], ["--param", "model=embeded"]):
        assert main(["--only", "00", *_where(tmp_path), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: unknown model 'embeded' (did you mean 'embedded'?); valid: ")
        assert "\n" not in err
    assert not out.exists()
    assert main(["--only", "00", "--model", "vit-b-16", "--list"]) == 2
    assert "did you mean 'ViT-B-16'" in capsys.readouterr().err  # case is forgiven in the hint


def test_known_models_pass_the_check():
    for name in ("embedded", "clipstudy-micro", "ViT-B-16", "RN50", "local-dir:/some/folder"):
        check_model_name(name)
    for bad in ("", None, 3):
        with pytest.raises(ConfigError, match="model must be a model name"):
            check_model_name(bad)


def test_bad_device_fails_before_any_notebook_starts(tmp_path, capsys):
    main, out = _run_all().main, tmp_path / "runs"
    assert main(["--only", "00", *_where(tmp_path), "--device", "gpu"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown device 'gpu'; valid: auto, cpu, cuda, cuda:N, mps"
    assert main(["--only", "00", *_where(tmp_path), "--device", "cuda:99"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: device 'cuda:99' asked for, but ") and "\n" not in err
    assert not out.exists()
    for fine in ("cpu", "auto"):
        assert main(["--only", "00", "--device", fine, "--list"]) == 0
        assert f"'device': '{fine}'" in capsys.readouterr().out


def test_check_device():
    check_device("cpu")
    check_device("auto")
    for bad in ("gpu", "cuda:x", "cpu:", None, 0):
        with pytest.raises(ConfigError, match="unknown device"):
            check_device(bad)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
            check_device("cuda")


def test_list_shows_the_overridden_values(capsys):
    assert _run_all().main(["--manifest", str(FIXTURE_MANIFEST), "--list", "--profile", "smoke", "--only", "good",
                            "--param", "n_points=2", "label=mine"]) == 0
    out = capsys.readouterr().out
    assert "smoke: {'label': 'mine', 'n_points': 2}" in out
    assert "out_dir" not in out


def test_misspelled_param_names_the_close_match(tmp_path, capsys):
    out = tmp_path / "runs"
    assert _run_all().main(["--manifest", str(FIXTURE_MANIFEST), "--param", "n_pionts=3", *_where(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: parameter 'n_pionts' is not declared by any selected notebook "
                          "(did you mean 'n_points'?); declared: ")
    assert not out.exists()


# ----------------------------------------------------------------- parameters injected by papermill

def test_injected_parameters_reads_papermills_cell():
    history = ["", 'n_points = 8\nlabel = "demo"', '# Parameters\nn_pionts = 3\nout_dir = "/tmp/x"\n', "import sys"]
    assert injected_parameters({"In": history}) == ["n_pionts", "out_dir"]
    assert injected_parameters({}) == []
    assert injected_parameters({"In": ["", "x = 1"]}) == []


def test_setup_notebook_names_a_misspelled_injected_parameter(tmp_path):
    namespace = {"n_points": 8, "scale": 1.0, "label": "demo", "out_dir": str(tmp_path), "figures_dir": str(tmp_path),
                 "n_pionts": 3, "In": ["", "n_points = 8", "# Parameters\nn_pionts = 3\n", "setup"]}
    with pytest.raises(ConfigError, match=re.escape(
            "'n_pionts' is not a parameter of good.ipynb (did you mean 'n_points'?); parameters: n_points")):
        setup_notebook(str(FIXTURES / "good.ipynb"), namespace, style=False, verbose=False)
    del namespace["In"]  # the user's own variables (no papermill cell) are not parameters
    session = setup_notebook(str(FIXTURES / "good.ipynb"), namespace, style=False, verbose=False)
    assert "n_pionts" not in session.params


@pytest.mark.notebook
def test_misspelled_papermill_parameter_fails_inside_the_notebook(tmp_path):
    """As `papermill -p n_pionts 3` would: papermill only warns, the notebook's setup cell fails."""
    spec = load_manifest(FIXTURE_MANIFEST).get("good")
    params = {"n_pionts": 3, "out_dir": str(tmp_path), "figures_dir": str(tmp_path)}
    run = execute(Job(spec, params, tmp_path), progress_bar=False)
    assert run.status == "failed"
    assert run.problems[0].startswith(
        "ConfigError: 'n_pionts' is not a parameter of good.ipynb (did you mean 'n_points'?)")


# ----------------------------------------------------------------- study parameter values

@pytest.mark.parametrize("module, params, message", [
    ("ood", {"seeds": []}, "seeds must be a non-empty list of integers >= 0, e.g. [1], got []"),
    ("ood", {"seeds": ["1"]}, "seeds must be a non-empty list of integers >= 0"),
    ("ood", {"seeds": 3}, "seeds must be a non-empty list of integers >= 0"),
    ("ood", {"shots": []}, "shots must be positive integers (a non-empty list, e.g. [1, 2, 4]), got []"),
    ("ood", {"shots": [0, 2]}, "shots must be positive integers"),
    ("ood", {"shots": [1.5]}, "shots must be positive integers"),
    ("ood", {"methods": []}, "methods must be a non-empty list of recipe names, got []"),
    ("ood", {"scorers": []}, "scorers must be a non-empty list of scorer names, got []"),
    ("ood", {"max_steps": -1}, "max_steps must be an integer >= 0"),
    ("ood", {"model": ""}, "model must be a model name"),
    ("calibration", {"seeds": []}, "seeds must be a non-empty list of integers >= 0"),
    ("calibration", {"shots": 0}, "shots must be positive integers"),
    ("robust_ft", {"seeds": []}, "seeds must be a non-empty list of integers >= 0"),
    ("robust_ft", {"seeds": [True]}, "seeds must be a non-empty list of integers >= 0"),
    ("robust_ft", {"max_steps": -5}, "max_steps must be an integer >= 0"),
])
def test_study_parameter_values_are_checked(module, params, message):
    study = importlib.import_module(f"clipstudy.studies.{module}")
    with pytest.raises(ConfigError, match=re.escape(message)):
        study.make_study(**params)


@pytest.mark.parametrize("module", ["ood", "calibration", "robust_ft"])
def test_default_study_parameters_pass(module):
    importlib.import_module(f"clipstudy.studies.{module}").make_study()
