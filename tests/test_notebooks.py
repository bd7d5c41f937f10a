"""Every notebook of the manifest runs in its smoke profile and records sane numbers."""
import pytest

pytestmark = pytest.mark.notebook


def test_00_embedded_world(run_notebook):
    records = run_notebook("00")
    chance = records["chance"]
    assert chance == pytest.approx(1 / 46)
    # the shipped model is a working zero-shot classifier: photo is far above chance, and every
    # shifted domain is below photo (smoke profile: 64 images per domain, so loose bounds)
    assert records["zeroshot_photo_accuracy"] > 5 * chance
    for d in ("painting", "clipart", "sketch", "infograph"):
        assert records[f"zeroshot_{d}_accuracy"] < records["zeroshot_photo_accuracy"]
