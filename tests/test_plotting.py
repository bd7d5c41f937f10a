"""One figure style, atomic PNG + PDF figures, stable method colours."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from clipstudy.plotting import method_palette, save_figure, set_style, title_figure  # noqa: E402


@pytest.fixture
def fig():
    with matplotlib.rc_context():
        set_style()
        f, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot([0, 1], [1, 0])
        yield f
        plt.close(f)


def test_save_figure_writes_png_and_pdf_atomically(fig, tmp_path):
    written = save_figure(fig, "00_demo", tmp_path / "figs")
    assert written == [tmp_path / "figs" / "00_demo.png", tmp_path / "figs" / "00_demo.pdf"]
    files = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert files == ["00_demo.pdf", "00_demo.png"]  # no temp files left
    assert written[0].read_bytes()[:4] == b"\x89PNG" and written[1].read_bytes()[:4] == b"%PDF"
    pdf = written[1].read_bytes()
    save_figure(fig, "00_demo", tmp_path / "figs")
    assert written[1].read_bytes() == pdf  # no timestamp: reruns rewrite the same bytes


def test_save_figure_default_folder_and_bad_names(fig, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_FIGURES", str(tmp_path))
    assert save_figure(fig, "x", "")[0] == tmp_path / "x.png"  # "" = the notebook parameter's default
    for bad in ("a/b", "x.png", "", "../up"):
        with pytest.raises(ValueError, match="file stem"):
            save_figure(fig, bad, tmp_path)


def test_set_style_is_readable_and_despined(fig):
    rc = matplotlib.rcParams
    assert rc["savefig.dpi"] == 300 and rc["pdf.fonttype"] == 42
    assert not rc["axes.spines.top"] and not rc["axes.spines.right"]
    assert rc["font.size"] >= 10


def test_method_palette_is_stable_across_figures():
    one = method_palette(["zeroshot", "WiSE-FT", "my new method"])
    two = method_palette(["my new method", "wise_ft", "lipsum-ft"])
    assert one["WiSE-FT"] == two["wise_ft"] and one["my new method"] == two["my new method"]
    known = method_palette(["zeroshot", "linear_probe", "wise_ft", "flyp"])
    assert len({tuple(c) for c in known.values()}) == 4


def test_title_figure(fig):
    title_figure(fig, "Zero-shot accuracy", "embedded model, smoke profile")
    assert fig._suptitle.get_text() == "Zero-shot accuracy"
