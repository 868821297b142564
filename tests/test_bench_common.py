"""The benchmark scripts' shared runner: constants tried in place of the shipped ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# benchmarks/ is on the path only for this import: its script names must not shadow other imports
BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
sys.path.insert(0, BENCHMARKS)
try:
    from _common import parse_constant, run_inpaint
finally:
    sys.path.remove(BENCHMARKS)


def test_parse_constant_reads_module_name_and_value():
    assert parse_constant("tsam_cli.flow.pair:FLOW_MARGIN=3") == ("tsam_cli.flow.pair:FLOW_MARGIN", 3.0)
    assert parse_constant("tsam_cli.core.propagate:FORWARD_WEIGHT=0.25") == ("tsam_cli.core.propagate:FORWARD_WEIGHT", 0.25)


@pytest.mark.parametrize("spec", ["FLOW_MARGIN=3", "tsam_cli.flow.pair:FLOW_MARGIN", "tsam_cli.flow.pair:FLOW_MARGIN=x"])
def test_parse_constant_refuses_what_it_cannot_read(spec):
    with pytest.raises((SystemExit, ValueError)):
        parse_constant(spec)


def test_runner_refuses_a_constant_the_module_lacks(tmp_path):
    # checked before anything is read, so no video is needed to see it refused by name
    with pytest.raises(RuntimeError, match="tsam_cli.flow.pair has no constant NO_SUCH_NAME"):
        run_inpaint(tmp_path / "in.mp4", tmp_path / "mask", tmp_path / "out.mkv",
                    constants={"tsam_cli.flow.pair:NO_SUCH_NAME": 1.0})


def test_runner_refuses_a_value_an_int_constant_cannot_hold(tmp_path):
    with pytest.raises(RuntimeError, match="FLOW_MARGIN is int: 3.5 is not one"):
        run_inpaint(tmp_path / "in.mp4", tmp_path / "mask", tmp_path / "out.mkv",
                    constants={"tsam_cli.flow.pair:FLOW_MARGIN": 3.5})
