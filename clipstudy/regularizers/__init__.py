"""Regularizers that attach to any method's loss (see :class:`clipstudy.methods.base.Regularizer`).

Each submodule registers its regularizers in :data:`clipstudy.losses.LOSSES` with
``kind="regularizer"``; importing this package registers them all.
"""

from . import robust_ft  # noqa: F401,E402  (l2sp, kd, car_ft, lipsum)
from . import dor, kgcoop  # noqa: F401,E402  (dor, kgcoop)
