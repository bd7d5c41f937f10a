"""The notebook harness: manifest, parameter checks, run_all.py on fixture notebooks (~25 s)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from clipstudy import paths
from clipstudy.errors import ConfigError
from clipstudy.manifest import PROFILES, check_records, load_manifest, notebook_params
from clipstudy.notebook import (
    Job, NotebookRunError, check_parameters, coerce_value, declared_parameters, execute, load_records,
    plan, record, run_manifest_notebook,
)
from clipstudy.registry import UnknownNameError

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_MANIFEST = FIXTURES / "manifest.yaml"
REPO_MANIFEST = load_manifest()


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", Path(__file__).parents[1] / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


# ----------------------------------------------------------------- manifest

def test_fixture_manifest_merges_profiles_and_overrides():
    manifest = load_manifest(FIXTURE_MANIFEST)
    good = manifest.get("good")
    assert manifest.get("good.ipynb") is good and good.figures == ("good_line",)
    assert notebook_params(good, "smoke") == {"label": "fixture", "n_points": 4}
    assert notebook_params(good, "paper") == {"label": "fixture"}  # no paper entry: notebook defaults
    assert notebook_params(good, "smoke", {"n_points": 2, "scale": 3.0}) == {
        "label": "fixture", "n_points": 2, "scale": 3.0}
    with pytest.raises(UnknownNameError, match="valid profiles: smoke, default, paper"):
        notebook_params(good, "huge")
    with pytest.raises(UnknownNameError, match="valid notebooks: good, bad"):
        manifest.get("nope")


def test_repo_manifest_entry_00():
    spec = REPO_MANIFEST.get("00")
    assert REPO_MANIFEST.get("00_embedded_world.ipynb") is spec
    assert {"00_world_gallery", "00_zeroshot_by_domain", "00_zeroshot_by_factor"} <= set(spec.figures)
    assert [notebook_params(spec, p)["n_per_domain"] for p in PROFILES] == [64, 500, 500]
    assert notebook_params(spec, "smoke")["model"] == "embedded"
    assert {"zeroshot_photo_accuracy", "chance"} <= {r.key for r in spec.records}


@pytest.mark.parametrize("spec", REPO_MANIFEST.notebooks, ids=REPO_MANIFEST.names())
def test_repo_notebooks_fit_the_harness(spec, tmp_path):
    """Every manifest notebook declares what the manifest passes, with the right types, in every profile."""
    if not spec.path.exists():
        pytest.skip(f"{spec.path.name} is not written yet")
    for profile in PROFILES:
        [job] = plan(REPO_MANIFEST, [spec.name], profile, {}, tmp_path, tmp_path)
        assert job.params["out_dir"] == str(tmp_path.resolve() / spec.name)


ALL_NOTEBOOKS = sorted(FIXTURES.glob("*.ipynb")) + sorted(paths.notebooks_dir().glob("*.ipynb"))


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_clean(path):
    """Outputs cleared, and papermill parses every parameter (it fails on a comment holding '=')."""
    import nbformat
    import papermill

    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear outputs before committing"
    assert list(papermill.inspect_notebook(str(path))) == list(declared_parameters(path))


def test_record_ranges():
    spec = load_manifest(FIXTURE_MANIFEST).get("good")
    assert check_records(spec, {"total": 4.0}) == []
    assert check_records(spec, {}) == ["record 'total' was not written"]
    assert check_records(spec, {"total": 101}) == ["record 'total' = 101 is outside [0, 100]"]
    assert check_records(spec, {"total": "4"}) == ["record 'total' = '4' is not a number"]


# ----------------------------------------------------------------- parameter types

def test_check_parameters_names_the_parameter_and_types():
    defaults = {"n_per_domain": 64, "lr": 0.1, "model": "embedded", "flag": False, "seeds": [0], "x": None}
    fine = {"n_per_domain": 3, "lr": 1, "model": "m", "flag": True, "seeds": (1, 2), "x": 5}
    check_parameters(fine, defaults)  # int for float, tuple for list, anything for None
    with pytest.raises(ConfigError) as err:
        check_parameters({"n_per_domain": "many"}, defaults, where="00_embedded_world.ipynb")
    assert str(err.value) == ("parameter 'n_per_domain' of 00_embedded_world.ipynb must be int (default 64), "
                              "got str 'many'")
    for bad in ({"n_per_domain": True}, {"n_per_domain": 2.5}, {"lr": "0.1"}, {"flag": 1}, {"seeds": 3}):
        with pytest.raises(ConfigError, match=repr(next(iter(bad)))):
            check_parameters(bad, defaults)
    with pytest.raises(ConfigError, match="'typo' is not a parameter"):
        check_parameters({"typo": 1}, defaults)


def test_declared_parameters_and_cli_coercion():
    defaults = declared_parameters(FIXTURES / "good.ipynb")
    assert defaults == {"n_points": 8, "scale": 1.0, "label": "demo", "out_dir": "", "figures_dir": ""}
    assert coerce_value("64", 8) == 64 and coerce_value("1e-3", 1.0) == 0.001
    assert coerce_value("true", False) is True and coerce_value("[1, 2]", [0]) == [1, 2]
    assert coerce_value("123", "label") == "123" and coerce_value("many", 8) == "many"


def test_run_all_rejects_bad_parameter_before_launching(tmp_path, capsys):
    main = _run_all()
    out = tmp_path / "runs"
    assert main(["--manifest", str(FIXTURE_MANIFEST), "--param", "n_points=many", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: parameter 'n_points' of good.ipynb must be int (default 8), got str 'many'"
    assert not out.exists()  # nothing was launched
    assert main(["--manifest", str(FIXTURE_MANIFEST), "--param", "nope=1", "--out", str(out)]) == 2
    assert "'nope' is not declared by any selected notebook" in capsys.readouterr().err


def test_run_all_unknown_only_lists_valid_names(capsys):
    assert _run_all()(["--manifest", str(FIXTURE_MANIFEST), "--only", "zz"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown notebook 'zz'; valid notebooks: good, bad"


def test_run_all_list(capsys):
    assert _run_all()(["--manifest", str(FIXTURE_MANIFEST), "--list", "--profile", "smoke"]) == 0
    assert "{'label': 'fixture', 'n_points': 4}" in capsys.readouterr().out


def test_record_merges_atomically(tmp_path, capsys):
    record("a", 1.5, tmp_path)
    record("b", 2, tmp_path)
    record("a", 3.0, tmp_path)
    assert load_records(tmp_path) == {"a": 3.0, "b": 2}
    assert "record  a = 3" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["records.json"]
    with pytest.raises(ValueError):
        record("not a key", 1, tmp_path)


# ----------------------------------------------------------------- executing notebooks

@pytest.mark.notebook
def test_run_all_runs_every_notebook_and_reports_failure(tmp_path, capsys):
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    code = _run_all()(["--manifest", str(FIXTURE_MANIFEST), "--profile", "smoke", "--out", str(runs),
                       "--figures-dir", str(figures), "--no-progress"])
    assert code == 1  # bad.ipynb raised
    assert (runs / "good" / "good.ipynb").exists() and (runs / "bad" / "bad.ipynb").exists()
    assert sorted(p.name for p in figures.iterdir()) == ["good_line.pdf", "good_line.png"]
    records = load_records(runs / "good")
    assert records["total"] == 4.0  # smoke profile: n_points=4, scale=1.0
    assert records["kernel_python"] == sys.executable  # kernel "python3" is this interpreter
    summary = {s["notebook"]: s for s in json.loads((runs / "summary.json").read_text())["notebooks"]}
    assert summary["good"]["status"] == "ok" and summary["good"]["figures_written"] == ["good_line"]
    assert summary["bad"]["status"] == "failed"
    assert "RuntimeError: boom from the bad fixture" in summary["bad"]["problems"][0]
    table = capsys.readouterr().out
    assert "good      ok" in table and "bad       failed" in table and "total=4" in table


@pytest.mark.notebook
def test_wrong_type_from_papermill_fails_inside_the_notebook(tmp_path):
    """Bypassing run_all's check (as `papermill -p n_points many` would), setup_notebook raises."""
    spec = load_manifest(FIXTURE_MANIFEST).get("good")
    params = {"n_points": "many", "out_dir": str(tmp_path), "figures_dir": str(tmp_path)}
    run = execute(Job(spec, params, tmp_path), progress_bar=False)
    assert run.status == "failed"
    assert run.problems == ["ConfigError: parameter 'n_points' of good.ipynb must be int (default 8), "
                            "got str 'many'"]


@pytest.mark.notebook
def test_run_manifest_notebook_helper(tmp_path):
    records = run_manifest_notebook("good", tmp_path, manifest=FIXTURE_MANIFEST, overrides={"scale": 2})
    assert records["total"] == 8.0
    assert (tmp_path / "figures" / "good_line.png").exists()
    with pytest.raises(NotebookRunError, match="boom from the bad fixture"):
        run_manifest_notebook("bad", tmp_path, manifest=FIXTURE_MANIFEST)


def test_repo_paths_point_at_this_checkout(monkeypatch):
    monkeypatch.delenv("CLIPSTUDY_NOTEBOOKS", raising=False)
    assert paths.notebooks_dir() == Path(__file__).parents[1] / "notebooks"


def test_summary_wraps_records_under_their_column(tmp_path):
    from clipstudy.notebook import NotebookRun, format_summary

    records = {f"number_{i:02d}": i / 7 for i in range(30)}
    run = NotebookRun("01_long", "ok", 12.0, tmp_path / "x.ipynb", ["a"], [], records, [])
    lines = format_summary([run], records_width=60).splitlines()
    start = lines[0].index("records")
    body = lines[2:]
    assert len(body) > 3 and all(len(line) <= start + 60 for line in body)
    assert all(line[:start].strip() == "" for line in body[1:])  # continuation lines stay in the column
    shown = " ".join(line[start:] for line in body)
    assert all(f"number_{i:02d}=" in shown for i in range(30))


@pytest.mark.notebook
def test_smoke_run_leaves_the_committed_gallery_alone(tmp_path, monkeypatch):
    """`run_all.py --profile smoke` writes its figures under <out>/figures, never into figures/ (the
    committed default-profile gallery); CLIPSTUDY_FIGURES still decides where they go when set."""
    monkeypatch.delenv("CLIPSTUDY_FIGURES", raising=False)
    gallery = paths.figures_dir()
    before = {p.name: p.stat().st_mtime_ns for p in gallery.iterdir()} if gallery.exists() else {}
    runs = tmp_path / "runs"
    _run_all()(["--manifest", str(FIXTURE_MANIFEST), "--profile", "smoke", "--only", "good", "--out", str(runs),
                "--no-progress"])
    after = {p.name: p.stat().st_mtime_ns for p in gallery.iterdir()} if gallery.exists() else {}
    assert after == before
    assert (runs / "figures" / "good_line.png").exists()
    default_figures_dir = _run_all().__globals__["default_figures_dir"]
    assert default_figures_dir("default", runs) == gallery and default_figures_dir("paper", runs) == gallery
    monkeypatch.setenv("CLIPSTUDY_FIGURES", str(tmp_path / "elsewhere"))
    assert default_figures_dir("smoke", runs) == tmp_path / "elsewhere"
