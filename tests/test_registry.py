import pytest

from clipstudy.registry import Registry, UnknownNameError


def test_register_get_list():
    r = Registry("widget")

    @r.register("b")
    def b():
        return 2

    r.register("a", obj=1, flavor="x")
    assert r.get("b") is b and r.get("a") == 1
    assert r.list() == ["a", "b"] and "a" in r and len(r) == 2
    assert r.meta("a") == {"flavor": "x"}


def test_unknown_name_lists_valid_names():
    r = Registry("scorer")
    r.register("mcm", obj=1)
    r.register("msp", obj=2)
    with pytest.raises(UnknownNameError) as e:
        r.get("mpc")
    assert str(e.value) == "unknown scorer 'mpc'; valid scorers: mcm, msp"


def test_duplicate_and_type_errors():
    r = Registry("method")
    r.register("x", obj=1)
    with pytest.raises(ValueError):
        r.register("x", obj=2)
    with pytest.raises(TypeError):
        r.get(3)


# --------------------------------------------------------------------------- registries filled from a package

def _write_package(root, name):
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        '"""A package whose modules register themselves."""\n'
        "from clipstudy.registry import Registry\n\n"
        "WIDGETS = Registry('widget', package=__name__)\n")
    (pkg / "alpha.py").write_text(
        "from . import WIDGETS\n\n\n"
        "@WIDGETS.register('alpha', description='the first widget')\n"
        "def alpha():\n    return 1\n")
    return pkg


def test_package_registry_imports_every_submodule_on_first_lookup(tmp_path, monkeypatch):
    """A module dropped into the package is registered without being listed anywhere, and nothing is
    imported before the first lookup."""
    import importlib
    import sys

    pkg = _write_package(tmp_path, "clipstudy_tmp_widgets")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("clipstudy_tmp_widgets")
    try:
        assert "clipstudy_tmp_widgets.alpha" not in sys.modules  # lazy: importing the package registers nothing
        (pkg / "beta.py").write_text(
            "from . import WIDGETS\n\n\n@WIDGETS.register('beta')\ndef beta():\n"
            '    """The second widget.\n\n    More text."""\n    return 2\n')
        (pkg / "_private.py").write_text("raise RuntimeError('modules starting with _ are not imported')\n")
        importlib.invalidate_caches()
        assert mod.WIDGETS.list() == ["alpha", "beta"]
        assert mod.WIDGETS.descriptions() == {"alpha": "the first widget", "beta": "The second widget."}
        with pytest.raises(UnknownNameError, match="valid widgets: alpha, beta"):
            mod.WIDGETS.get("gamma")
    finally:
        for name in [m for m in sys.modules if m.startswith("clipstudy_tmp_widgets")]:
            del sys.modules[name]


def _registered_in_source(package_dir, registry: str) -> set[str]:
    import re

    pattern = re.compile(rf'^@{registry}\.register\(\s*"([^"]+)"', re.MULTILINE)  # decorators, not docstrings
    return {m for f in package_dir.glob("*.py") for m in pattern.findall(f.read_text())}


def test_every_method_module_is_registered():
    """The registered methods are exactly the ``@METHODS.register`` names of clipstudy/methods/*.py."""
    from pathlib import Path

    import clipstudy.methods as methods

    found = _registered_in_source(Path(methods.__file__).parent, "METHODS")
    assert {"zeroshot", "coop", "finetune", "flyp", "maple"} <= found
    assert set(methods.METHODS.list()) == found


def test_every_regularizer_module_is_registered():
    from pathlib import Path

    import clipstudy.regularizers as regularizers

    found = _registered_in_source(Path(regularizers.__file__).parent, "REGULARIZERS")
    assert set(regularizers.REGULARIZERS.list()) == found == {"dor", "kgcoop", "l2sp", "kd", "car_ft", "lipsum"}
    assert all(regularizers.REGULARIZERS.describe(n) for n in found)


def test_every_dataset_module_is_imported_by_a_lookup():
    import pkgutil
    import sys

    import clipstudy.data as data

    names = data.list_datasets()
    assert {"world", "imagefolder", "imagenet", "domainnet", "imagenet_c"} <= set(names)
    modules = {f"clipstudy.data.{m.name}" for m in pkgutil.iter_modules(data.__path__) if not m.name.startswith("_")}
    assert modules and modules <= set(sys.modules)


def test_describe_uses_metadata_then_docstring():
    from clipstudy.registry import first_doc_line

    r = Registry("thing")

    @r.register("doc")
    class Documented:
        """First sentence, e.g. with et al. 2021 inside. Second sentence.

        Second paragraph."""

    r.register("meta", obj=Documented, description="from the metadata")
    r.register("plain", obj=(1, 2))  # not a class or function: no docstring to read
    assert r.describe("doc") == "First sentence, e.g. with et al. 2021 inside."
    assert r.describe("meta") == "from the metadata" and r.describe("plain") == ""
    assert first_doc_line(first_doc_line).startswith("The first sentence of")
