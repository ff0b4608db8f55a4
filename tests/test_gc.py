"""The collector is off inside a hepprob call and as it was after, errors too."""

from __future__ import annotations

import gc

import pytest

from hepprob._gc import gc_paused


@gc_paused
def _state(fail: bool = False) -> bool:
    if fail:
        raise ValueError("inside")
    return gc.isenabled()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_collector_paused_and_restored(enabled_before: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        assert _state() is False
        assert gc.isenabled() is enabled_before
        with pytest.raises(ValueError, match="inside"):
            _state(fail=True)
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()
