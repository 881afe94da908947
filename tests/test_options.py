"""Named options: one list each (int4rt.options), and an unknown name is an error everywhere."""

from __future__ import annotations

import pytest

from int4rt.cli import main
from int4rt.decode.options import DecodeOptions
from int4rt.errors import ArithmeticSpecError, Int4rtError
from int4rt.ops.profiles import get_profile
from int4rt.ops.requantize.scalar import DOUBLE_ROUNDING, SINGLE_ROUNDING, rounding_code
from int4rt.options import METHODS, PROFILES, ROUNDING_MODES


def test_rounding_code_maps_the_two_modes_and_rejects_others():
    assert [rounding_code(mode) for mode in ROUNDING_MODES] == [DOUBLE_ROUNDING, SINGLE_ROUNDING]
    for bad in ("even", "Double", ""):
        with pytest.raises(ArithmeticSpecError, match=f"unknown rounding mode {bad!r}"):
            rounding_code(bad)


def test_every_profile_resolves_and_an_unknown_one_is_named():
    assert PROFILES == ("int4rt", "tflm")
    assert [get_profile(name).name for name in PROFILES] == list(PROFILES)
    assert [get_profile(name).signed_activations_only for name in PROFILES] == [False, True]
    with pytest.raises(ArithmeticSpecError, match="unknown profile 'cmsis'; expected one of "
                                                  "'int4rt', 'tflm'"):
        get_profile("cmsis")


def test_methods_are_one_list_for_options_and_the_command_line(capsys):
    assert METHODS == ("greedy", "beam", "alsd")
    for method in METHODS:
        DecodeOptions(method=method, nbest=1).validate()
    with pytest.raises(Int4rtError, match="method must be one of greedy, beam, alsd"):
        DecodeOptions(method="viterbi").validate()
    with pytest.raises(SystemExit):
        main(["transcribe", "model.safetensors", "a.wav", "--method", "viterbi"])
    assert "invalid choice: 'viterbi'" in capsys.readouterr().err
