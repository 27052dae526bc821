"""An inverse-dynamics model (frames t, t+1 -> action t) for action-accuracy scores that need no outside weights
(docs/idm.md): `model.py` (`IDM`, `IDMConfig`), `data.py` (held-out split, frame-pair sampling), `scores.py` (pure
score functions and the majority-label chance), `fit.py` (`fit_idm`), `store.py` (`save_idm`, `load_idm`), `cli.py`
(`vid2world idm train`)."""

from .fit import FitConfig, fit_idm
from .model import IDM, IDMConfig
from .store import load_idm, save_idm

__all__ = ["FitConfig", "IDM", "IDMConfig", "fit_idm", "load_idm", "save_idm"]
