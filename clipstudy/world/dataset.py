"""``WorldDataset``: a map-style dataset over a :class:`WorldConfig`, without torch.

It deliberately does not subclass ``torch.utils.data.Dataset``: a ``DataLoader`` accepts any
object with ``__len__`` and ``__getitem__``, and keeping torch out lets ``clipstudy.world`` be
imported in light processes (data inspection, notebooks, workers). Images are rendered on
demand; nothing is cached, so each worker process renders its own indices deterministically.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .captions import caption_scene
from .config import WorldConfig
from .render import render_scene
from .corruptions import corrupt
from .sampling import STREAM_CAPTION, STREAM_CORRUPT, STREAM_RENDER, sample_scene, stream


class WorldDataset:
    """``cfg.n`` images; item ``i`` is ``dict(image, label, caption, factors)``.

    ``image`` is a PIL image, or ``transform(image)`` if a transform is given. ``factors`` maps
    every factor name (and ``class_name``, plus ``shape_class``/``texture_class`` for cue-conflict
    images) to a string. ``label`` is an index into :attr:`classnames` (-1 for texture-only).
    """

    def __init__(self, cfg: WorldConfig, transform: Callable | None = None):
        if not isinstance(cfg, WorldConfig):
            raise TypeError(f"cfg must be a WorldConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.transform = transform
        self._targets: np.ndarray | None = None

    def __len__(self) -> int:
        return self.cfg.n

    def __repr__(self) -> str:
        return f"WorldDataset({self.cfg!r})"

    @property
    def classnames(self) -> tuple[str, ...]:
        return self.cfg.classnames

    @property
    def domains(self) -> tuple[str, ...]:
        """Domains this dataset samples from (after the ``kind`` and ``fixed`` filters)."""
        return tuple(d for d, _ in self.cfg.mixture)

    def _index(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} images")
        return i

    def _scene_factors(self, sc) -> dict[str, str]:
        out = {"class_name": sc.class_name, **sc.factors}
        if self.cfg.kind == "cue_conflict":
            out["shape_class"], out["texture_class"] = sc.class_name, sc.texture_class
        return out

    def _render(self, sc) -> np.ndarray:
        cfg = self.cfg
        img = render_scene(sc, cfg.image_size, stream(cfg, sc.index, STREAM_RENDER))
        if cfg.corruption is not None:
            img = corrupt(img, cfg.corruption, cfg.severity, stream(cfg, sc.index, STREAM_CORRUPT))
        return img

    def __getitem__(self, i: int) -> dict:
        sc = sample_scene(self.cfg, self._index(i))
        image = Image.fromarray(self._render(sc))
        text = caption_scene(sc, stream(self.cfg, sc.index, STREAM_CAPTION),
                             self.cfg.simple_caption_prob, self.cfg.caption_names)
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": sc.label, "caption": text,
                "factors": self._scene_factors(sc)}

    def get_array(self, i: int) -> np.ndarray:
        """Image ``i`` as a uint8 ``(H, W, 3)`` array (no transform, no caption)."""
        return self._render(sample_scene(self.cfg, self._index(i)))

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Images ``indices`` as one uint8 ``(B, H, W, 3)`` array: the fast path for training."""
        s = self.cfg.image_size
        out = np.empty((len(indices), s, s, 3), np.uint8)
        for k, i in enumerate(indices):
            out[k] = self.get_array(i)
        return out

    def get_captions(self, indices: Sequence[int]) -> list[str]:
        """Captions of ``indices`` without rendering."""
        out = []
        for i in indices:
            sc = sample_scene(self.cfg, self._index(i))
            out.append(caption_scene(sc, stream(self.cfg, sc.index, STREAM_CAPTION),
                                     self.cfg.simple_caption_prob, self.cfg.caption_names))
        return out

    @property
    def targets(self) -> np.ndarray:
        """Labels of every image (int64), computed without rendering (~20 us per image)."""
        if self._targets is None:
            self._targets = np.array([sample_scene(self.cfg, i).label for i in range(len(self))],
                                     dtype=np.int64)
        return self._targets

    def factor_table(self, as_frame: bool = False):
        """Per-image labels: ``index``, ``label``, ``class_name`` and every factor.

        A list of dicts, or a ``pandas.DataFrame`` with ``as_frame=True`` (pandas imported then).
        Built on each call (not cached) so that huge training sets do not hold it in memory.
        """
        rows = []
        for i in range(len(self)):
            sc = sample_scene(self.cfg, i)
            rows.append({"index": i, "label": sc.label, **self._scene_factors(sc)})
        if as_frame:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows
