"""The default model's network config and sampler: data normalization and the clip of clean predictions."""

from __future__ import annotations

import pytest
import torch
from loopbridge.engine.models.default.model import (
    CLIP_UNIT,
    MelUNet,
    ModelConfig,
    from_network,
    sample,
    to_network,
)

SMALL = ModelConfig(channels=(16, 32), embed_dim=32, attention_heads=2, data_mean=-0.75, data_std=0.4)


def test_normalization_travels_in_the_config_and_older_configs_mean_none() -> None:
    data = SMALL.to_json()
    assert (data["data_mean"], data["data_std"]) == (-0.75, 0.4)
    assert ModelConfig.from_json(data) == SMALL
    del data["data_mean"], data["data_std"]
    older = ModelConfig.from_json(data)
    assert (older.data_mean, older.data_std) == (0.0, 1.0)
    with pytest.raises(ValueError, match="data_std"):
        ModelConfig.from_json({**SMALL.to_json(), "data_std": 0.0})
    # a key older files carry that the decoder never read: the file still loads, and new ones leave it out
    assert "griffin_lim_iterations" not in SMALL.to_json()
    assert ModelConfig.from_json({**SMALL.to_json(), "griffin_lim_iterations": 32}) == SMALL
    unit = torch.linspace(-1, 1, 11)
    torch.testing.assert_close(from_network(to_network(unit, SMALL), SMALL), unit)
    torch.testing.assert_close(to_network(torch.tensor(-0.75), SMALL), torch.tensor(0.0))


def test_samples_come_back_as_scaled_log_mels_inside_the_clip() -> None:
    torch.manual_seed(0)
    network = MelUNet(SMALL).eval()
    # a random network predicts wildly; every clean prediction, and so the result, is clipped
    with torch.no_grad():
        for p in network.conv_out.parameters():
            p.mul_(50.0)
    noise = torch.randn(3, SMALL.n_mels, SMALL.frames, generator=torch.Generator().manual_seed(1))
    out = sample(network, SMALL, [0, 4, SMALL.null_class], noise, steps=4, guidance=2.0)
    assert out.shape == noise.shape
    low, high = CLIP_UNIT
    assert out.min() >= low - 1e-4 and out.max() <= high + 1e-4
    assert out.std() > 0.05  # not collapsed onto a bound
    # an audio prompt at strength 0 comes back as it went in, in the same units
    init = torch.rand(3, SMALL.n_mels, SMALL.frames) * 2 - 1
    torch.testing.assert_close(sample(network, SMALL, [0, 0, 0], noise, 4, 1.0, init=init, strength=0.0), init)


def test_sampler_settings_travel_in_the_config_and_bad_ones_are_refused() -> None:
    config = ModelConfig(channels=(16, 32), embed_dim=32, attention_heads=2, sampler="ddim", ddim_eta=0.5,
                         guidance_rescale=0.7, class_guidance={"pluck": 4.0}, default_guidance=2.5)
    assert ModelConfig.from_json(config.to_json()) == config
    assert config.guidance_for("pluck") == 4.0
    assert config.guidance_for("kick") == 2.5 and config.guidance_for(None) == 2.5
    older = SMALL.to_json()
    for key in ("sampler", "ddim_eta", "guidance_rescale", "class_guidance"):
        del older[key]
    assert ModelConfig.from_json(older) == SMALL  # files written before these keys: DPM-Solver++, plain guidance
    for key, value, words in (("sampler", "euler", "sampler"), ("ddim_eta", 1.5, "ddim_eta"),
                              ("guidance_rescale", -0.1, "guidance_rescale"),
                              ("class_guidance", {"flute": 3.0}, "flute"), ("class_guidance", {"pluck": 0}, "pluck")):
        with pytest.raises(ValueError, match=words):
            ModelConfig.from_json({**config.to_json(), key: value})


@pytest.mark.parametrize("changes", [{"sampler": "ddim"}, {"sampler": "ddim", "ddim_eta": 1.0},
                                     {"guidance_rescale": 0.7}])
def test_every_sampler_setting_denoises_reproducibly_inside_the_clip(changes: dict[str, object]) -> None:
    import dataclasses

    config = dataclasses.replace(SMALL, **changes)
    torch.manual_seed(0)
    network = MelUNet(config).eval()
    noise = torch.randn(2, config.n_mels, config.frames, generator=torch.Generator().manual_seed(1))
    out = sample(network, config, [0, 4], noise, steps=4, guidance=3.0)
    again = sample(network, config, [0, 4], noise, steps=4, guidance=3.0)
    torch.testing.assert_close(out, again)
    low, high = CLIP_UNIT
    assert out.shape == noise.shape and out.min() >= low - 1e-4 and out.max() <= high + 1e-4
    # each setting changes the result against DPM-Solver++ with plain guidance
    plain = sample(network, SMALL, [0, 4], noise, steps=4, guidance=3.0)
    assert not torch.allclose(out, plain, atol=1e-4)
    init = torch.rand(2, config.n_mels, config.frames) * 2 - 1
    half = sample(network, config, [0, 4], noise, 4, 3.0, init=init, strength=0.5)
    assert half.shape == init.shape and torch.isfinite(half).all()


def test_ddim_with_eta_renders_a_row_the_same_alone_or_in_a_batch() -> None:
    import dataclasses

    config = dataclasses.replace(SMALL, sampler="ddim", ddim_eta=1.0)
    torch.manual_seed(0)
    network = MelUNet(config).eval()
    noise = torch.randn(3, config.n_mels, config.frames, generator=torch.Generator().manual_seed(2))
    batch = sample(network, config, [0, 4, 7], noise, steps=4, guidance=2.0)
    alone = sample(network, config, [4], noise[1:2], steps=4, guidance=2.0)
    torch.testing.assert_close(alone[0], batch[1], atol=1e-4, rtol=1e-4)
    # the fresh noise is each row's own: another row's initial noise gives another render
    assert not torch.allclose(batch[0], batch[1], atol=1e-3)


def test_guidance_interval_travels_in_the_config_and_bad_ones_are_refused() -> None:
    import dataclasses

    config = dataclasses.replace(SMALL, guidance_interval=(0.3, 5.5))
    data = config.to_json()
    assert data["guidance_interval"] == [0.3, 5.5]
    assert ModelConfig.from_json(data) == config
    assert config.guided_at(1.0) and config.guided_at(5.5)
    assert not config.guided_at(0.3) and not config.guided_at(20000.0)
    assert SMALL.guidance_interval is None and SMALL.guided_at(20000.0) and SMALL.guided_at(0.01)
    for value in ([5.5, 0.3], [-1, 2], [1.0], "0.3,5.5", [True, 2]):
        with pytest.raises(ValueError, match="guidance_interval"):
            ModelConfig.from_json({**data, "guidance_interval": value})
    outside = dataclasses.replace(config, guidance_outside=2.0)
    assert ModelConfig.from_json(outside.to_json()) == outside
    older = config.to_json()
    del older["guidance_outside"]
    assert ModelConfig.from_json(older).guidance_outside == 1.0
    with pytest.raises(ValueError, match="guidance_outside"):
        ModelConfig.from_json({**data, "guidance_outside": 0})


def test_guidance_outside_its_interval_is_the_conditional_prediction_alone() -> None:
    import dataclasses

    torch.manual_seed(0)
    network = MelUNet(SMALL).eval()
    noise = torch.randn(2, SMALL.n_mels, SMALL.frames, generator=torch.Generator().manual_seed(3))
    everywhere = dataclasses.replace(SMALL, guidance_interval=(0.0, 1e9))
    nowhere = dataclasses.replace(SMALL, guidance_interval=(1e8, 1e9))
    middle = dataclasses.replace(SMALL, guidance_interval=(0.3, 5.5))
    guided = sample(network, SMALL, [0, 4], noise, steps=6, guidance=4.0)
    conditional = sample(network, SMALL, [0, 4], noise, steps=6, guidance=1.0)
    torch.testing.assert_close(sample(network, everywhere, [0, 4], noise, steps=6, guidance=4.0), guided)
    torch.testing.assert_close(sample(network, nowhere, [0, 4], noise, steps=6, guidance=4.0), conditional)
    between = sample(network, middle, [0, 4], noise, steps=6, guidance=4.0)
    assert not torch.allclose(between, guided, atol=1e-4) and not torch.allclose(between, conditional, atol=1e-4)
    # a row renders the same alone or beside another class's
    alone = sample(network, middle, [4], noise[1:2], steps=6, guidance=4.0)
    torch.testing.assert_close(alone[0], between[1], atol=1e-4, rtol=1e-4)
    # outside the interval the scale guidance_outside: at the request's own scale, guidance everywhere;
    # a row asking for less than it keeps its own
    same = dataclasses.replace(middle, guidance_outside=4.0)
    torch.testing.assert_close(sample(network, same, [0, 4], noise, steps=6, guidance=4.0), guided)
    lower = dataclasses.replace(nowhere, guidance_outside=2.0)
    torch.testing.assert_close(sample(network, lower, [0, 4], noise, steps=6, guidance=1.5),
                               sample(network, SMALL, [0, 4], noise, steps=6, guidance=1.5))
    stepped = sample(network, dataclasses.replace(middle, guidance_outside=2.0), [0, 4], noise, steps=6, guidance=4.0)
    assert not torch.allclose(stepped, between, atol=1e-4) and not torch.allclose(stepped, guided, atol=1e-4)


def _time_convs(network: MelUNet) -> list[torch.nn.Conv1d]:
    return [m for m in network.modules() if isinstance(m, torch.nn.Conv1d) and m.padding != (0,)]


def test_zero_time_padding_is_the_network_as_before_to_the_bit() -> None:
    torch.manual_seed(0)
    before = MelUNet(SMALL).eval()  # a config without the field: as every folder written before it
    older = SMALL.to_json()
    del older["time_padding"]
    assert ModelConfig.from_json(older).time_padding == "zeros"
    zeros = MelUNet(ModelConfig.from_json({**older, "time_padding": "zeros"})).eval()
    zeros.load_state_dict(before.state_dict())
    assert all(conv.padding_mode == "zeros" for conv in _time_convs(zeros))
    noise = torch.randn(2, SMALL.n_mels, SMALL.frames, generator=torch.Generator().manual_seed(2))
    t, labels = torch.tensor([300, 600]), torch.tensor([0, SMALL.null_class])
    with torch.no_grad():
        assert torch.equal(zeros(noise, t, labels), before(noise, t, labels))
    assert torch.equal(sample(zeros, SMALL, [0, 3], noise, 3, 2.0), sample(before, SMALL, [0, 3], noise, 3, 2.0))


def test_replicate_time_padding_changes_each_conv_at_the_edges_only() -> None:
    torch.manual_seed(0)
    zeros = MelUNet(SMALL).eval()
    replicate_config = ModelConfig.from_json({**SMALL.to_json(), "time_padding": "replicate"})
    assert replicate_config.time_padding == "replicate"
    replicate = MelUNet(replicate_config).eval()
    replicate.load_state_dict(zeros.state_dict())  # the padding has no weights: the same ones load
    convs = _time_convs(replicate)
    assert len(convs) == len(_time_convs(zeros)) > 0
    assert all(conv.padding_mode == "replicate" for conv in convs)
    # the input convolution (kernel 3, padding 1): frames 1 .. frames-2 never read the padding
    x = torch.randn(2, SMALL.n_mels, SMALL.frames, generator=torch.Generator().manual_seed(3)) + 2.0
    with torch.no_grad():
        a, b = zeros.conv_in(x), replicate.conv_in(x)
        assert torch.equal(a[..., 1:-1], b[..., 1:-1])
        assert not torch.allclose(a[..., 0], b[..., 0]) and not torch.allclose(a[..., -1], b[..., -1])
        # the edge frames are those of the input with its first and last frames repeated once
        padded = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)
        torch.testing.assert_close(b, torch.nn.functional.conv1d(padded, zeros.conv_in.weight, zeros.conv_in.bias))
        t, labels = torch.tensor([300, 300]), torch.tensor([0, 1])
        assert not torch.allclose(zeros(x, t, labels), replicate(x, t, labels))


def test_an_unknown_time_padding_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"time_padding='mirror' is not one of \['zeros', 'replicate', 'reflect'\]"):
        ModelConfig.from_json({**SMALL.to_json(), "time_padding": "mirror"})
    with pytest.raises(ValueError, match="time_padding='circular'"):
        MelUNet(ModelConfig(channels=(16, 32), embed_dim=32, attention_heads=2, time_padding="circular"))


def test_eps_scale_travels_in_the_config_and_bad_ones_are_refused() -> None:
    import dataclasses

    config = dataclasses.replace(SMALL, eps_scale={"perc": 1.02})
    assert ModelConfig.from_json(config.to_json()) == config
    assert config.eps_scale_for("perc") == 1.02
    assert config.eps_scale_for("kick") == 1.0 and config.eps_scale_for(None) == 1.0
    older = config.to_json()
    del older["eps_scale"]
    assert ModelConfig.from_json(older) == SMALL  # files written before the key: no scaling
    for value, words in (({"flute": 1.01}, "flute"), ({"perc": 0}, "perc"), ({"perc": 2.5}, "0.5 to 2"),
                         ({"perc": True}, "perc"), ({"perc": "1.01"}, "perc")):
        with pytest.raises(ValueError, match=words):
            ModelConfig.from_json({**config.to_json(), "eps_scale": value})


def test_eps_scale_divides_the_predicted_noise_and_keeps_rows_of_other_classes_to_the_bit() -> None:
    import dataclasses

    from loopbridge.engine.models.default.model import _eps_scaled, training_scheduler

    generator = torch.Generator().manual_seed(4)
    x, v = torch.randn(2, 8, 5, generator=generator), torch.randn(2, 8, 5, generator=generator)
    alpha_bar = training_scheduler(SMALL).alphas_cumprod[600]
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    scaled = _eps_scaled(v, x, alpha_bar, torch.tensor([1.0, 1.25]).view(2, 1, 1))
    assert torch.equal(scaled[0], v[0])
    # the scaled row's noise is the prediction's divided by the factor, and its clean estimate the one
    # that noise implies for the same input
    torch.testing.assert_close(s * x[1] + a * scaled[1], (s * x[1] + a * v[1]) / 1.25)
    torch.testing.assert_close(a * x[1] - s * scaled[1], (x[1] - s * (s * x[1] + a * v[1]) / 1.25) / a)

    torch.manual_seed(0)
    network = MelUNet(SMALL).eval()
    noise = torch.randn(3, SMALL.n_mels, SMALL.frames, generator=torch.Generator().manual_seed(5))
    perc = SMALL.classes.index("perc")
    labels = [0, perc, SMALL.null_class]
    plain = sample(network, SMALL, labels, noise, steps=6, guidance=2.0)
    ones = dataclasses.replace(SMALL, eps_scale={"perc": 1.0})
    assert torch.equal(sample(network, ones, labels, noise, steps=6, guidance=2.0), plain)
    scaled_config = dataclasses.replace(SMALL, eps_scale={"perc": 1.05})
    out = sample(network, scaled_config, labels, noise, steps=6, guidance=2.0)
    assert torch.equal(out[0], plain[0]) and torch.equal(out[2], plain[2])
    assert not torch.allclose(out[1], plain[1], atol=1e-4)
    low, high = CLIP_UNIT
    assert out.min() >= low - 1e-4 and out.max() <= high + 1e-4
    # one step only: the first, from pure noise, is never scaled
    torch.testing.assert_close(sample(network, scaled_config, labels, noise, steps=1, guidance=2.0),
                               sample(network, SMALL, labels, noise, steps=1, guidance=2.0), rtol=0, atol=0)
