"""Registry of HistFactory modifier types: JSON ``type`` -> implementation."""

from __future__ import annotations

from hepprob.histfactory.modifiers._base import AbstractModifier, Requirement
from hepprob.histfactory.modifiers.histosys import HistoSys
from hepprob.histfactory.modifiers.lumi import Lumi
from hepprob.histfactory.modifiers.normfactor import NormFactor
from hepprob.histfactory.modifiers.normsys import NormSys
from hepprob.histfactory.modifiers.shapefactor import ShapeFactor
from hepprob.histfactory.modifiers.shapesys import ShapeSys
from hepprob.histfactory.modifiers.staterror import StatError

__all__ = [
    "MODIFIERS",
    "AbstractModifier",
    "HistoSys",
    "Lumi",
    "NormFactor",
    "NormSys",
    "Requirement",
    "ShapeFactor",
    "ShapeSys",
    "StatError",
]

#: JSON modifier type -> implementation. The order is pyhf 0.7's, which fixes
#: the order of parameter sets in ``config.par_order``.
MODIFIERS: dict[str, type[AbstractModifier]] = {
    "histosys": HistoSys,
    "lumi": Lumi,
    "normfactor": NormFactor,
    "normsys": NormSys,
    "shapefactor": ShapeFactor,
    "shapesys": ShapeSys,
    "staterror": StatError,
}


def __dir__() -> list[str]:
    return __all__
