"""One module per paper's study: the protocol as a frozen dataclass, a ``run_*`` function that fills a
:class:`~clipstudy.results.ResultStore` cell by cell (resumable), and loaders that turn the cells into
tidy DataFrames for the notebook's figures.

* :mod:`clipstudy.studies.ood` — Ming & Li, how fine-tuning changes OOD detection (notebook 01).
"""
