"""Spec validation: good/bad fixtures, JSON-path errors, cross-checked with pyhf."""

from __future__ import annotations

import copy
import json
import pathlib
import re

import pyhf
import pytest

from hepprob.errors import SpecError
from hepprob.histfactory.spec import (
    MODIFIER_TYPES,
    format_path,
    load_schema,
    validate_jsonpatch,
    validate_model_spec,
    validate_patchset,
    validate_workspace,
)

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def load(name: str) -> dict:
    with (DATA / name).open() as f:
        return json.load(f)


# file -> (JSON path in the error, words of the message, does pyhf's Model reject it?)
# Files named bad_schema_* break the JSON schema itself: pyhf's schema must
# reject them too. The others pass the schema and are caught by hepprob's
# further checks; the last column records whether pyhf notices at all.
BAD = {
    "bad_schema_missing_version.json": (
        "<root>",
        "missing required key.*version",
        True,
    ),
    "bad_schema_wrong_version.json": ("version", "expected '1.0.0', got '2.0.0'", True),
    "bad_schema_unknown_modifier.json": (
        "channels[0].samples[0].modifiers[0].type",
        "expected one of .*histosys.*staterror.*got 'normfactr'",
        True,
    ),
    "bad_schema_data_not_number.json": (
        "channels[0].samples[1].data[1]",
        "expected a number, got '52'",
        True,
    ),
    "bad_schema_normsys_missing_lo.json": (
        "channels[0].samples[0].modifiers[2].data",
        r"missing required key\(s\) \['lo'\]",
        True,
    ),
    "bad_schema_extra_key.json": (
        "channels[0]",
        r"unexpected key\(s\) \['bins'\]",
        True,
    ),
    "bad_schema_no_samples.json": ("channels[0].samples", "at least 1 item", True),
    "bad_schema_normfactor_data.json": (
        "channels[0].samples[0].modifiers[0].data",
        r"expected null, got \[1.0\]",
        True,
    ),
    "bad_schema_missing_poi.json": ("measurements[0].config", "missing.*poi", True),
    "bad_schema_empty_observation.json": ("observations[0].data", "at least 1", True),
    "bad_bounds_shape.json": (
        "measurements[0].config.parameters[1].bounds[0]",
        "at most 2 item",
        False,
    ),
    "bad_bin_mismatch.json": (
        "channels[0].samples[1].data",
        "'background' has 2 bins but sample 'signal'.* has 3",
        True,
    ),
    "bad_histosys_length.json": (
        "channels[0].samples[1].modifiers[1].data.hi_data",
        "histosys template must have one entry per bin: expected 3, got 2",
        True,
    ),
    "bad_staterror_length.json": (
        "channels[0].samples[1].modifiers[2].data",
        "staterror .*expected 3, got 4",
        True,
    ),
    "bad_shapesys_length.json": (
        "channels[0].samples[1].modifiers[3].data",
        "shapesys .*expected 3, got 1",
        True,
    ),
    "bad_observation_length.json": (
        "observations[0].data",
        "3 bins but .* has 2",
        False,
    ),
    "bad_negative_observation.json": (
        "observations[0].data[1]",
        "non-negative, got -4.0",
        False,
    ),
    "bad_nan_observation.json": ("observations[0].data[2]", "finite, got nan", False),
    "bad_duplicate_sample.json": (
        "channels[0].samples[1].name",
        "duplicate sample name 'signal'",
        True,
    ),
    "bad_duplicate_channel.json": (
        "channels[1].name",
        "duplicate channel name 'SR'",
        True,
    ),
    "bad_duplicate_measurement.json": (
        "measurements[1].name",
        "duplicate measurement name 'meas'",
        False,
    ),
    "bad_poi_undefined.json": (
        "measurements[0].config.poi",
        "poi 'mu_signal' .* not defined by any modifier",
        True,
    ),
    "bad_channel_without_observation.json": (
        "observations",
        r"\['CR'\] have no observations",
        False,
    ),
    "bad_lumi_without_settings.json": (
        "measurements[0].config.parameters",
        "lumi parameter 'lumi' .* auxdata and sigmas",
        True,
    ),
    "bad_incompatible_shared_parameter.json": (
        "channels[0].samples[1].modifiers[3].type",
        "'mu' is used by a 'shapesys' modifier here but by an incompatible",
        True,
    ),
    "bad_inits_length.json": (
        "measurements[0].config.parameters[1].inits",
        "'mu' has 1 component.* inits has 2",
        True,
    ),
}

GOOD = [
    "good_workspace_simple.json",
    "good_workspace_twochannel.json",
]


def test_every_bad_fixture_is_in_the_table():
    on_disk = {p.name for p in DATA.glob("bad_*.json")}
    assert on_disk == set(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_fixture_names_its_json_path(name):
    path, words, _ = BAD[name]
    with pytest.raises(SpecError, match=re.escape(path) + ": .*" + words) as info:
        validate_workspace(load(name))
    assert info.value.path == path


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_fixture_agrees_with_pyhf(name):
    _, _, pyhf_rejects_model = BAD[name]
    spec = load(name)
    if name.startswith("bad_schema_"):
        with pytest.raises(
            (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.SchemaNotFound)
        ):
            pyhf.schema.validate(spec, "workspace.json")
        return
    # beyond the schema: pyhf's schema lets it through ...
    pyhf.schema.validate(spec, "workspace.json")
    # ... and pyhf's model either fails too or (where noted) accepts it silently
    if pyhf_rejects_model:
        with pytest.raises(Exception):  # noqa: B017 - pyhf raises various types
            pyhf.Workspace(spec).model()
    else:
        pyhf.Workspace(spec).model()


@pytest.mark.parametrize("name", GOOD)
def test_good_fixture_accepted_by_both(name):
    spec = load(name)
    validate_workspace(spec)
    pyhf.schema.validate(spec, "workspace.json")
    model_spec = {
        "channels": spec["channels"],
        "parameters": spec["measurements"][0]["config"]["parameters"],
    }
    validate_model_spec(model_spec)
    pyhf.schema.validate(model_spec, "model.json")


def test_background_only_workspace_poi_check_is_optional():
    spec = load("good_workspace_bkgonly.json")
    validate_workspace(spec, require_poi=False)
    with pytest.raises(SpecError, match=r"measurements\[0\]\.config\.poi: poi 'mu'"):
        validate_workspace(spec)


def test_pyhf_validation_workspaces_are_valid(validation_dir):
    # the validation inputs are 'bindata' files; a workspace built from one
    source = json.loads(
        (validation_dir / "pyhf_json" / "2bin_histosys.json").read_text()
    )
    bindata = source["bindata"]
    spec = {
        "channels": [
            {
                "name": "singlechannel",
                "samples": [
                    {
                        "name": "signal",
                        "data": bindata["sig"],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "background",
                        "data": bindata["bkg"],
                        "modifiers": [
                            {
                                "name": "bkg_norm",
                                "type": "histosys",
                                "data": {
                                    "lo_data": bindata["bkgsys_dn"],
                                    "hi_data": bindata["bkgsys_up"],
                                },
                            }
                        ],
                    },
                ],
            }
        ]
    }
    validate_model_spec(spec)
    pyhf.schema.validate(spec, "model.json")


def test_model_spec_errors():
    spec = load("good_workspace_simple.json")
    model_spec = {"channels": spec["channels"], "parameters": []}
    with pytest.raises(SpecError, match=r"^parameters: lumi parameter 'lumi'"):
        validate_model_spec(model_spec)
    with pytest.raises(
        SpecError, match=r"<root>: unexpected key\(s\) \['observations'\]"
    ):
        validate_model_spec({**model_spec, "observations": spec["observations"]})
    with pytest.raises(SpecError, match=r"model spec must be a JSON object.*got list"):
        validate_model_spec([1, 2])
    with pytest.raises(
        SpecError, match=r"<root>: missing required key\(s\) \['channels'\]"
    ):
        validate_model_spec({"parameters": []})
    bad = copy.deepcopy(model_spec)
    bad["parameters"] = [
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.0]},
    ]
    with pytest.raises(
        SpecError, match=r"parameters\[0\]\.sigmas\[0\]: sigmas must be positive"
    ):
        validate_model_spec(bad)
    bad["parameters"] = [
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.1]},
        {"name": "mu", "bounds": [[2.0, 1.0]]},
    ]
    with pytest.raises(
        SpecError, match=r"parameters\[1\]\.bounds\[0\]: .*lower <= upper"
    ):
        validate_model_spec(bad)
    bad["parameters"][1] = {"name": "bkg_uncorr", "inits": [1.0]}
    with pytest.raises(SpecError, match="'bkg_uncorr' has 3 component"):
        validate_model_spec(bad)
    # sample yields must be finite
    bad = copy.deepcopy(model_spec)
    bad["parameters"] = [{"name": "lumi", "auxdata": [1.0], "sigmas": [0.1]}]
    bad["channels"][0]["samples"][0]["data"][0] = float("inf")
    with pytest.raises(
        SpecError, match=r"samples\[0\]\.data\[0\]: sample yields must be finite"
    ):
        validate_model_spec(bad)


def test_duplicate_modifier_in_one_sample_is_refused():
    # pyhf silently merges the two into one factor (mu, not mu**2)
    spec = load("good_workspace_simple.json")
    mods = spec["channels"][0]["samples"][0]["modifiers"]
    mods.append(dict(mods[0]))
    with pytest.raises(
        SpecError, match=r"modifiers\[3\]\.name: duplicate modifier 'mu'"
    ):
        validate_workspace(spec)


def test_per_bin_parameter_shared_across_channels_needs_same_bins():
    spec = load("good_workspace_twochannel.json")
    # wjets_unc (2 bins in CR) reused in SR with a different binning
    spec["channels"][0]["samples"][0]["data"] = [4.0, 8.0, 1.0]
    with pytest.raises(SpecError, match=r"channels\[0\]\.samples\[1\]\.data"):
        validate_workspace(spec)
    spec = load("good_workspace_twochannel.json")
    spec["channels"].append(
        {
            "name": "VR",
            "samples": [
                {
                    "name": "wjets",
                    "data": [1.0, 2.0, 3.0],
                    "modifiers": [
                        {"name": "wjets_unc", "type": "shapesys", "data": [1, 1, 1]}
                    ],
                }
            ],
        }
    )
    spec["observations"].append({"name": "VR", "data": [1.0, 2.0, 3.0]})
    with pytest.raises(
        SpecError, match=r"channels\[2\]\.samples\[0\]\.modifiers\[0\]\.name: per-bin"
    ):
        validate_workspace(spec)


def test_observation_for_unknown_channel():
    spec = load("good_workspace_simple.json")
    spec["observations"].append({"name": "VR", "data": [1.0]})
    with pytest.raises(
        SpecError, match=r"observations\[1\]\.name: observation 'VR' matches no channel"
    ):
        validate_workspace(spec)


def _patchset(labels=("m1", "m2"), values=((100, 50), (200, 50))):
    return {
        "metadata": {
            "description": "test",
            "digests": {"sha256": "0" * 64},
            "labels": list(labels),
            "references": {"hepdata": "ins1234567"},
        },
        "patches": [
            {
                "metadata": {"name": f"p{i}", "values": list(v)},
                "patch": [{"op": "add", "path": "/channels/0/samples/-", "value": {}}],
            }
            for i, v in enumerate(values)
        ],
        "version": "1.0.0",
    }


def test_patchset_validation_matches_pyhf():
    good = _patchset()
    validate_patchset(good)
    pyhf.schema.validate(good, "patchset.json")

    bad_digest = copy.deepcopy(good)
    bad_digest["metadata"]["digests"] = {"sha256": "xyz"}
    with pytest.raises(
        SpecError, match=r"metadata\.digests\.sha256: expected a string matching"
    ):
        validate_patchset(bad_digest)
    with pytest.raises(pyhf.exceptions.InvalidSpecification):
        pyhf.schema.validate(bad_digest, "patchset.json")

    bad_op = copy.deepcopy(good)
    bad_op["patches"][1]["patch"][0]["op"] = "append"
    with pytest.raises(
        SpecError, match=r"patches\[1\]\.patch\[0\]\.op: expected one of"
    ):
        validate_patchset(bad_op)
    with pytest.raises(pyhf.exceptions.InvalidSpecification):
        pyhf.schema.validate(bad_op, "patchset.json")

    # beyond the schema
    with pytest.raises(
        SpecError, match=r"patches\[0\]\.metadata\.values: expected 2 values"
    ):
        validate_patchset(_patchset(values=((100,), (200, 50))))
    with pytest.raises(
        SpecError, match=r"patches\[1\]\.metadata\.values: duplicate patch values"
    ):
        validate_patchset(_patchset(values=((100, 50), (100, 50))))
    dup = copy.deepcopy(good)
    dup["patches"][1]["metadata"]["name"] = "p0"
    with pytest.raises(
        SpecError, match=r"patches\[1\]\.metadata\.name: duplicate patch name 'p0'"
    ):
        validate_patchset(dup)


def test_jsonpatch_operations():
    validate_jsonpatch(
        [{"op": "remove", "path": "/a"}, {"op": "copy", "from": "/a", "path": "/b"}]
    )
    with pytest.raises(
        SpecError, match=r"patch\[0\]: missing required key\(s\) \['value'\]"
    ):
        validate_jsonpatch([{"op": "add", "path": "/a"}])
    with pytest.raises(SpecError, match=r"patch: expected a list, got"):
        validate_jsonpatch({"op": "add"})


def test_schema_document_and_helpers():
    schema = load_schema()
    assert set(schema["definitions"]["modifier"]["properties"]["type"]["enum"]) == set(
        MODIFIER_TYPES
    )
    # the same modifier types as the published spec (pyhf's schema enumerates them)
    pyhf_defs = pyhf.schema.load_schema("1.0.0/defs.json")["definitions"]
    published = {
        entry["properties"]["type"]["const"] for entry in pyhf_defs["modifier"].values()
    }
    assert published == set(MODIFIER_TYPES)
    assert (
        format_path(["channels", 0, "samples", 1, "data"])
        == "channels[0].samples[1].data"
    )
    assert format_path([]) == "<root>"
    with pytest.raises(
        SpecError, match=r"unknown HistFactory schema version '9\.9\.9'"
    ):
        load_schema("9.9.9")


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.json")))
def test_fast_schema_path_agrees_with_full_validation(name):
    """The reduced-copy schema check says 'valid' exactly when jsonschema does."""
    from hepprob.histfactory import spec as spec_module

    doc = load(name)
    for entry, what in (
        ("workspace", doc),
        ("model", {"channels": doc.get("channels")}),
    ):
        validator = spec_module._validator(entry)
        assert spec_module._fast_valid(validator, entry, what) == validator.is_valid(
            what
        )


def test_large_workspace_modifier_errors_keep_their_path():
    spec = load("good_workspace_twochannel.json")
    for _ in range(3):
        spec["channels"].append(copy.deepcopy(spec["channels"][1]))
    for i, ch in enumerate(spec["channels"][2:], start=2):
        ch["name"] = f"CR{i}"
        spec["observations"].append({"name": ch["name"], "data": [1.0, 2.0]})
    validate_workspace(spec)
    spec["channels"][4]["samples"][1]["modifiers"][0]["data"][1] = True
    with pytest.raises(
        SpecError,
        match=r"channels\[4\]\.samples\[1\]\.modifiers\[0\]\.data\[1\]: expected a number, got True",
    ):
        validate_workspace(spec)
