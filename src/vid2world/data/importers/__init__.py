"""Importers: RT-1 (npz, RLDS), CS:GO (DIAMOND's HDF5), RECON (NoMaD folders) and LeRobot v3 datasets into the
dataset format."""

from .common import DataImportError, ImportReport, read_split_file
from .csgo import import_csgo
from .lerobot import import_lerobot
from .recon import import_recon, recon_actions
from .rt1 import import_rlds, import_rt1, rlds_to_npz

FORMATS = {"rt1": import_rt1, "rlds": import_rlds, "csgo": import_csgo, "recon": import_recon,
           "lerobot": import_lerobot}

__all__ = ["DataImportError", "FORMATS", "ImportReport", "import_csgo", "import_lerobot", "import_recon",
           "import_rlds", "import_rt1", "read_split_file", "recon_actions", "rlds_to_npz"]
