import json

import pytest

from radsynth.errors import InvalidInput
from radsynth.models import GANConfig, NoiseConfig, UNetConfig, VAEConfig

CONFIGS = [
    VAEConfig(),
    VAEConfig(spatial_dims=3, channels=(16, 32), attention_levels=(False, False), norm_num_groups=16),
    UNetConfig(),
    UNetConfig(cross_attention_dim=None),
    GANConfig(),
    GANConfig(spatial_dims=3, image_size=(32, 32, 32)),
    NoiseConfig(),
    NoiseConfig(kind="rflow"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_config_round_trips_through_json(config):
    data = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(data) == config


@pytest.mark.parametrize("cls", [VAEConfig, UNetConfig, GANConfig, NoiseConfig])
def test_unknown_key_is_rejected_by_name(cls):
    with pytest.raises(InvalidInput, match="'chanels'"):
        cls.from_dict({"chanels": (1, 2)})


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (VAEConfig, {"spatial_dims": 4}, "spatial_dims"),
        (VAEConfig, {"attention_levels": (False,)}, "attention_levels"),
        (VAEConfig, {"channels": (30, 64, 64)}, "channels"),
        (UNetConfig, {"num_head_channels": 48}, "num_head_channels"),
        (GANConfig, {"image_size": (60, 60)}, "image_size"),
        (GANConfig, {"image_size": (64, 64, 64)}, "image_size"),
        (NoiseConfig, {"prediction": "x0"}, "prediction"),
        (NoiseConfig, {"kind": "ve"}, "kind"),
    ],
)
def test_bad_value_fails_in_init_naming_the_field(cls, kwargs, field):
    with pytest.raises(InvalidInput, match=rf"{cls.__name__}\.{field}"):
        cls(**kwargs)


def test_latent_shape_follows_downsampling():
    assert VAEConfig().latent_shape((64, 64)) == (4, 16, 16)
    with pytest.raises(InvalidInput, match="divisible by 4"):
        VAEConfig().latent_shape((62, 64))
