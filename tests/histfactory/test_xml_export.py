"""HistFactory XML export: pyhf.readxml and hepprob's reader give back the same likelihood.

References: pyhf's XML reader (``pyhf.readxml.parse``) and pyhf's ``logpdf`` on
what it reads, for workspaces from pyhf JSON fixtures and from the ROOT-written
XML inputs in ../shared/validation/xml (read in place).
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pyhf
import pyhf.readxml
import pytest

from hepprob.errors import HepprobWarning, SpecError
from hepprob.histfactory import Workspace, xml
from hepprob.histfactory.xml_export import write_xml

DATA = pathlib.Path(__file__).parents[1] / "data"


def _workspaces(validation_dir):
    out = [Workspace.from_file(DATA / "good_workspace_simple.json")]
    for top in sorted(validation_dir.glob("xml/*/config/example.xml")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(Workspace(xml.parse(top, top.parent.parent)))
    return out


def test_pyhf_and_hepprob_read_back_the_same_likelihood(validation_dir, tmp_path):
    rng = np.random.default_rng(2)
    for k, ws in enumerate(_workspaces(validation_dir)):
        folder = tmp_path / f"ws{k}"
        top = ws.to_xml(folder)
        assert top == folder / "FitConfig.xml"
        ref_ws = pyhf.Workspace(pyhf.readxml.parse(str(top), str(folder)))
        back = Workspace(xml.parse(top, folder))
        assert back.measurement_names == ws.measurement_names
        for meas in ws.measurement_names:
            model = ws.model(measurement_name=meas)
            ref = ref_ws.model(measurement_name=meas)
            again = back.model(measurement_name=meas)
            assert ref.config.par_names == model.config.par_names
            assert again.config.par_names == model.config.par_names
            assert again.config.suggested_fixed() == model.config.suggested_fixed()
            assert again.config.auxdata == model.config.auxdata
            data = ws.data(model)
            np.testing.assert_allclose(ref_ws.data(ref), data, rtol=1e-12)
            for _ in range(3):
                pars = np.array(model.config.suggested_init()) + 0.05 * rng.normal(
                    size=model.config.npars
                )
                want = model.logpdf(pars, data)
                np.testing.assert_allclose(
                    ref.logpdf(pars, ref_ws.data(ref)), want, rtol=1e-10
                )
                np.testing.assert_allclose(
                    again.logpdf(pars, back.data(again)), want, rtol=1e-12
                )


def test_second_measurement_normfactor_bounds_warn(tmp_path):
    ws = Workspace.from_file(DATA / "good_workspace_twochannel.json")
    with pytest.warns(HepprobWarning, match="ttbar_xsec.*cannot record bounds of"):
        write_xml(ws, tmp_path)


def test_shared_staterror_is_refused(tmp_path):
    spec = {
        "channels": [
            {"name": c, "samples": [{"name": "b", "data": [5.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "stat", "type": "staterror", "data": [1.0]}]}]}
            for c in ("a", "b")
        ],
        "observations": [{"name": "a", "data": [5.0]}, {"name": "b", "data": [5.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }  # fmt: skip
    with pytest.raises(
        SpecError, match="staterror 'stat' is shared by channels 'a' and 'b'"
    ):
        Workspace(spec).to_xml(tmp_path)
