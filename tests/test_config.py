import dataclasses
from typing import Literal

import pytest

from clipstudy.config import ConfigError, field_help, from_dict
from clipstudy.optim import lr_at
from clipstudy.train import TrainConfig


@dataclasses.dataclass
class Toy:
    n: int = 3  # how many
    rate: float = 0.5  # a rate
    mode: Literal["a", "b"] = "a"  # which mode
    names: tuple[str, ...] = ("x",)  # some names
    flag: bool = False  # on or off


def test_unknown_key_names_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown Toy key\(s\) \['nn'\]; valid keys: \['n', 'rate'"):
        from_dict(Toy, {"nn": 1})


def test_strings_are_coerced_to_field_types():
    t = from_dict(Toy, {"n": "1e3", "rate": "0.25", "mode": "b", "names": "p,q", "flag": "true"})
    assert (t.n, t.rate, t.mode, t.names, t.flag) == (1000, 0.25, "b", ("p", "q"), True)


@pytest.mark.parametrize("values, match", [
    ({"n": "2.5"}, "n='2.5' is not a valid int"),
    ({"mode": "c"}, r"mode='c' is not valid; choose one of \['a', 'b'\]"),
    ({"flag": "maybe"}, "not a boolean"),
])
def test_bad_values_name_the_value(values, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Toy, values)


def test_field_help_reads_same_line_comments():
    assert field_help(Toy) == {"n": "how many", "rate": "a rate", "mode": "which mode",
                               "names": "some names", "flag": "on or off"}


def test_train_config_checks():
    with pytest.raises(ConfigError, match="valid models"):
        from_dict(TrainConfig, {"model": "vit-huge"})
    with pytest.raises(ConfigError, match="less than one batch"):
        from_dict(TrainConfig, {"samples": 10, "batch_size": 256})


def test_lr_schedule_warms_up_then_decays_to_min():
    cfg = TrainConfig(samples=1000, warmup=100, lr=1.0, min_lr=0.1)
    assert lr_at(cfg, 0) == 0.0
    assert lr_at(cfg, 50) == pytest.approx(0.5)
    assert lr_at(cfg, 100) == pytest.approx(1.0)
    assert lr_at(cfg, 550) == pytest.approx(0.55)
    assert lr_at(cfg, 1000) == pytest.approx(0.1)
    values = [lr_at(cfg, s) for s in range(100, 1001, 50)]
    assert values == sorted(values, reverse=True)
