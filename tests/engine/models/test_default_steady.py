"""The default model's flicker filter (``spectral.steady_loudness``) on spectrograms whose course is known.

A sampled spectrogram's loudness wobbles from frame to frame around the course a recording takes;
the filter must take the wobble out of a steady decay, and leave a hit's rise, its peak, the bands
at the floor and a spectrogram with no wobble as they were.
"""

from __future__ import annotations

import numpy as np
import torch
from loopbridge.engine.models.default import spectral
from loopbridge.engine.models.default.model import ModelConfig

MELS, FRAMES = spectral.N_MELS, spectral.FRAMES


def _spectrogram(loudness_db: np.ndarray, bands: int = 40) -> torch.Tensor:
    """Scaled log-mel ``[1, MELS, frames]``: the lowest ``bands`` bands carry ``loudness_db`` per
    frame (shared evenly), the rest sit at the floor."""
    db = np.full((MELS, loudness_db.size), spectral.DB_FLOOR)
    db[:bands] = loudness_db[None, :] - 10.0 * np.log10(bands)
    return spectral.db_to_unit(torch.from_numpy(db).float())[None]


def _loudness(spec: torch.Tensor) -> np.ndarray:
    return spectral.frame_loudness_db(spectral.unit_to_db(spec)).numpy()[0].astype(np.float64)


def _course(hit_at: int = 10) -> np.ndarray:
    """Silence-ish lead-in, a hit rising by 30 dB at ``hit_at``, then a decay of 0.3 dB a frame."""
    course = np.full(FRAMES, -45.0)
    course[hit_at:] = -5.0 - 0.3 * np.arange(FRAMES - hit_at)
    return course


def test_takes_the_flicker_out_of_a_decay() -> None:
    wobble = 1.2 * np.where(np.arange(FRAMES) % 2 == 0, 1.0, -1.0)
    course = _course()
    flickering = course.copy()
    flickering[16:] += wobble[16:]
    out = _loudness(spectral.steady_loudness(_spectrogram(flickering), 3.0))
    steady = slice(18, FRAMES - 2)
    # the frame-to-frame change is the decay's own again, within a few hundredths of a dB
    change = np.diff(out[steady])
    assert np.median(np.abs(np.diff(flickering[steady]))) > 2.0
    assert np.max(np.abs(change + 0.3)) < 0.5
    assert np.median(np.abs(change + 0.3)) < 0.05
    # the course stays where it was: the mean over the decay is unchanged
    assert abs(out[steady].mean() - course[steady].mean()) < 0.1


def test_leaves_a_hit_and_a_clean_decay_alone() -> None:
    course = _course(hit_at=10)
    spec = _spectrogram(course)
    out = spectral.steady_loudness(spec, 3.0)
    loud_in, loud_out = _loudness(spec), _loudness(out)
    # the rise and the attack frames are untouched, and a straight decay in dB is kept as it is
    assert np.allclose(loud_out[8:14], loud_in[8:14], atol=1e-3)
    assert np.allclose(loud_out, loud_in, atol=0.02)
    # bands at the floor stay there
    floor = spectral.unit_to_db(out)[0, 40:]
    assert torch.all(floor <= spectral.DB_FLOOR + 1e-3)


def test_off_and_bounded() -> None:
    course = _course()
    course[20:] += 1.4 * np.where(np.arange(FRAMES - 20) % 2 == 0, 1.0, -1.0)  # a wobble beyond the bound
    spec = _spectrogram(course)
    assert torch.equal(spectral.steady_loudness(spec, 0.0), spec)
    moved = _loudness(spectral.steady_loudness(spec, 0.5)) - _loudness(spec)
    assert np.max(np.abs(moved)) <= 0.5 + 1e-3
    assert np.max(np.abs(moved)) > 0.45
    # a rise of 3 dB or more from one frame to the next is a hit, never smoothed away
    hits = _course()
    hits[30::8] += 6.0
    spec = _spectrogram(hits)
    assert np.allclose(_loudness(spectral.steady_loudness(spec, 3.0))[30::8], _loudness(spec)[30::8], atol=1e-3)


def test_config_default_and_old_configs() -> None:
    # configs written before the field existed get the filter; a negative bound is refused
    data = ModelConfig().to_json()
    del data["steady_loudness_db"]
    assert ModelConfig.from_json(data).steady_loudness_db == 3.0
    data["steady_loudness_db"] = -1.0
    try:
        ModelConfig.from_json(data)
    except ValueError as exc:
        assert "steady_loudness_db=-1.0" in str(exc)
    else:
        raise AssertionError("a negative steady_loudness_db was accepted")


def test_a_higher_onset_rise_smooths_rises_a_lower_one_keeps() -> None:
    # a decay whose loudness jumps by 4 dB every 4 frames (a sampled tom's or bass's flicker)
    course = _course(hit_at=10)
    jumps = course.copy()
    jumps[20::4] += 4.0
    spec = _spectrogram(jumps)
    kept = _loudness(spectral.steady_loudness(spec, 3.0))  # 4 dB >= 3: each jump is an onset, kept
    assert np.allclose(kept[20::4], _loudness(spec)[20::4], atol=1e-3)
    smoothed = _loudness(spectral.steady_loudness(spec, 3.0, onset_rise_db=6.0))
    steady = slice(20, FRAMES - 4)
    # mean frame-to-frame change: about 2.2 dB with the jumps kept, the decay's 0.3 and a little smoothed
    assert np.mean(np.abs(np.diff(kept[steady]))) > 2.0
    assert np.mean(np.abs(np.diff(smoothed[steady]))) < 0.5
    # the hit itself (30 dB) is an onset either way
    assert np.allclose(smoothed[8:14], _loudness(spec)[8:14], atol=1e-3)


def test_per_class_onset_rise_in_the_config() -> None:
    config = ModelConfig.from_json(ModelConfig().to_json() | {"steady_onset_rise_db": {"tom": 6.0}})
    assert config.onset_rise_db("tom") == 6.0
    assert config.onset_rise_db("kick") == spectral.ONSET_RISE_DB == config.onset_rise_db(None)
    for bad, words in (({"cymbal": 6.0}, "not classes"), ({"tom": 0.0}, "positive")):
        try:
            ModelConfig.from_json(ModelConfig().to_json() | {"steady_onset_rise_db": bad})
        except ValueError as exc:
            assert words in str(exc) and next(iter(bad)) in str(exc)
        else:
            raise AssertionError(f"steady_onset_rise_db={bad} was accepted")


def test_a_wider_mean_takes_out_a_slower_wobble() -> None:
    # a decay wobbling by ±2 dB over 10 frames (a sampled bass's or tom's slow flicker)
    course = _course(hit_at=10)
    wobbling = course.copy()
    wobbling[14:] += 2.0 * np.sin(2 * np.pi * np.arange(FRAMES - 14) / 10.0)
    spec = _spectrogram(wobbling)
    steady = slice(24, FRAMES - 10)

    def jitter(loud: np.ndarray) -> float:
        return float(np.median(np.abs(np.diff(loud[steady]) + 0.3)))

    narrow = jitter(_loudness(spectral.steady_loudness(spec, 3.0)))
    wide = jitter(_loudness(spectral.steady_loudness(spec, 3.0, half_frames=5)))
    assert jitter(wobbling) > 0.6
    assert narrow > 0.2  # ±3 frames: a 10-frame period only partly averaged out
    assert wide < 0.05  # ±5 frames (half weights at the ends): one whole period, averaged out
    # a straight decay and the hit stay as they were with the wider mean too
    clean = _spectrogram(course)
    assert np.allclose(_loudness(spectral.steady_loudness(clean, 3.0, half_frames=5)), _loudness(clean), atol=0.02)
    try:
        spectral.steady_loudness(spec, 3.0, half_frames=0)
    except ValueError as exc:
        assert "half_frames=0" in str(exc)
    else:
        raise AssertionError("half_frames=0 was accepted")


def test_per_class_half_frames_in_the_config() -> None:
    config = ModelConfig.from_json(ModelConfig().to_json() | {"steady_half_frames": {"bass": 6}})
    assert config.half_frames("bass") == 6
    assert config.half_frames("kick") == spectral.STEADY_HALF_FRAMES == config.half_frames(None)
    for bad, words in (({"cymbal": 6}, "not classes"), ({"bass": 0}, "from 1 to"), ({"bass": 2.5}, "whole number")):
        try:
            ModelConfig.from_json(ModelConfig().to_json() | {"steady_half_frames": bad})
        except ValueError as exc:
            assert words in str(exc) and next(iter(bad)) in str(exc)
        else:
            raise AssertionError(f"steady_half_frames={bad} was accepted")


def test_per_class_bound_and_decoder_rounds_in_the_config() -> None:
    config = ModelConfig.from_json(ModelConfig().to_json() | {"steady_most_db": {"tom": 6.0}})
    assert config.most_db("tom") == 6.0 and config.most_db("kick") == config.steady_loudness_db
    off = ModelConfig.from_json(config.to_json() | {"steady_loudness_db": 0.0})
    assert off.most_db("tom") == 0.0  # 0 turns the stage off for every class
    data = ModelConfig().to_json()
    del data["decoder_loudness_rounds"]
    assert ModelConfig.from_json(data).loudness_rounds("bass") == 0  # older configs: no rounds
    rounds = ModelConfig.from_json(data | {"decoder_loudness_rounds": {"bass": 4}})
    assert rounds.loudness_rounds("bass") == 4 and rounds.loudness_rounds("kick") == 0 == rounds.loudness_rounds(None)
    for bad, words in (({"steady_most_db": {"tom": -1.0}}, "positive"),
                       ({"steady_most_db": {"cymbal": 6.0}}, "not classes"),
                       ({"decoder_loudness_rounds": {"bass": -1}}, "decoder_loudness_rounds={'bass': -1}"),
                       ({"decoder_loudness_rounds": {"bass": 2.5}}, "whole number"),
                       ({"decoder_loudness_rounds": {"cymbal": 4}}, "not classes")):
        try:
            ModelConfig.from_json(ModelConfig().to_json() | bad)
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_decoder_steady_rounds_in_the_config() -> None:
    data = ModelConfig().to_json()
    del data["decoder_steady_rounds"]
    assert ModelConfig.from_json(data).steady_rounds("tom") == 0  # older configs: none
    rounds = ModelConfig.from_json(data | {"decoder_steady_rounds": {"tom": 4}})
    assert rounds.steady_rounds("tom") == 4 and rounds.steady_rounds("kick") == 0 == rounds.steady_rounds(None)
    for bad, words in (({"tom": -1}, "decoder_steady_rounds={'tom': -1}"), ({"tom": 1.5}, "whole number"),
                       ({"cymbal": 4}, "not classes")):
        try:
            ModelConfig.from_json(data | {"decoder_steady_rounds": bad})
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"decoder_steady_rounds={bad} was accepted")


def _decoded_loudness(audio: torch.Tensor) -> np.ndarray:
    return spectral.frame_loudness_db(spectral.unit_to_db(spectral.log_mel(audio))).numpy()[0]


def test_steady_decoded_takes_a_wobble_out_of_decoded_audio_and_keeps_its_course() -> None:
    sr = spectral.SAMPLE_RATE
    t = np.arange(spectral.NATIVE_SAMPLES) / sr
    hit = np.clip(t / 0.005, 0.0, 1.0) * 10 ** (-1.0 * t)  # 20 dB a second after a 5 ms rise
    pair = (np.arange(t.size) // (2 * spectral.HOP)) % 2  # 3 dB down every other pair of hops
    tone = np.sin(2 * np.pi * 220.0 * t) + 0.5 * np.sin(2 * np.pi * 660.0 * t)
    steady = torch.from_numpy(0.5 * tone * hit).float()[None]
    wobbling = torch.from_numpy(0.5 * tone * hit * np.where(pair == 1, 10 ** (-3 / 20), 1.0)).float()[None]
    out = spectral.steady_decoded(wobbling, 4, 6.0, 9.0)
    frames = slice(5, 60)

    def wobble(loud: np.ndarray) -> float:
        return float(np.median(np.abs(np.diff(loud[frames], 2))))

    before, after = _decoded_loudness(wobbling), _decoded_loudness(out)
    assert wobble(after) < 0.5 * wobble(before), (wobble(before), wobble(after))
    # the course stays the wobbling audio's own (its level over 10-frame spans), and the start as it was
    spans = [slice(a, a + 10) for a in range(5, 65, 10)]
    assert max(abs(before[s].mean() - after[s].mean()) for s in spans) < 1.0
    np.testing.assert_allclose(out[0, :spectral.HOP].numpy(), wobbling[0, :spectral.HOP].numpy(), atol=0.02)
    # audio with no wobble, and 0 rounds, come back as they were
    steady_out = spectral.steady_decoded(steady, 4, 6.0, 9.0)
    assert float(np.max(np.abs(_decoded_loudness(steady_out)[frames] - _decoded_loudness(steady)[frames]))) < 0.3
    assert spectral.steady_decoded(wobbling, 0, 6.0) is wobbling


def test_quadratic_trend_keeps_a_bending_course_and_takes_out_an_alternation() -> None:
    frames = np.arange(FRAMES, dtype=np.float64)
    bending = -5.0 - 0.9 * frames + 0.008 * frames**2  # fast, then slower: a kick's decay in dB
    for half in (2, 3, 6):
        # a parabola is its own fit, in the middle of any window: the course comes back as it was
        for start in (0, 17, 40):
            window = bending[start : start + 2 * half + 1]
            assert abs(spectral.local_trend(window, "quadratic") - window[half]) < 1e-9
        # the mean of the same window sits above a course that bends upwards
        window = bending[20 : 21 + 2 * half]
        assert spectral.local_trend(window, "mean") - window[half] > 0.002 * half**2
    course = np.full(FRAMES, -60.0)
    course[10:] = bending[: FRAMES - 10]
    course = np.maximum(course, -60.0)
    kept = _loudness(spectral.steady_loudness(_spectrogram(course), 3.0, half_frames=6, trend="quadratic"))
    assert np.allclose(kept, _loudness(_spectrogram(course)), atol=1e-3)
    # the mean moves the same bending course (the body of a hit rises against its attack)
    meaned = _loudness(spectral.steady_loudness(_spectrogram(course), 3.0, half_frames=6))
    assert np.max(meaned[16:50] - _loudness(_spectrogram(course))[16:50]) > 0.08
    # an alternation of ±1 dB on the bending course: the fit takes most of it out, the course stays
    wobbling = course.copy()
    wobbling[16:] += np.where(np.arange(FRAMES - 16) % 2 == 0, 1.0, -1.0)
    out = _loudness(spectral.steady_loudness(_spectrogram(wobbling), 3.0, half_frames=6, trend="quadratic"))
    steady = slice(22, 50)
    assert np.max(np.abs(out[steady] - course[steady])) < 0.3
    assert np.median(np.abs(wobbling[steady] - course[steady])) > 0.99


def test_steady_decoded_quadratic_takes_a_wobble_out_and_a_bad_trend_is_refused() -> None:
    sr = spectral.SAMPLE_RATE
    t = np.arange(spectral.NATIVE_SAMPLES) / sr
    hit = np.clip(t / 0.005, 0.0, 1.0) * 10 ** (-1.0 * t)
    pair = (np.arange(t.size) // (2 * spectral.HOP)) % 2
    tone = np.sin(2 * np.pi * 220.0 * t) + 0.5 * np.sin(2 * np.pi * 660.0 * t)
    wobbling = torch.from_numpy(0.5 * tone * hit * np.where(pair == 1, 10 ** (-3 / 20), 1.0)).float()[None]
    out = spectral.steady_decoded(wobbling, 4, 6.0, 9.0, half_frames=6, trend="quadratic")
    frames = slice(5, 60)

    def wobble(loud: np.ndarray) -> float:
        return float(np.median(np.abs(np.diff(loud[frames], 2))))

    before, after = _decoded_loudness(wobbling), _decoded_loudness(out)
    assert wobble(after) < 0.5 * wobble(before), (wobble(before), wobble(after))
    for call in (lambda: spectral.steady_decoded(wobbling, 4, 6.0, trend="median"),
                 lambda: spectral.steady_loudness(_spectrogram(_course()), 3.0, trend="median")):
        try:
            call()
        except ValueError as exc:
            assert "'median'" in str(exc) and "quadratic" in str(exc)
        else:
            raise AssertionError("trend='median' was accepted")


def test_decoder_steady_trend_and_half_frames_in_the_config() -> None:
    data = ModelConfig().to_json()
    for key in ("decoder_steady_trend", "decoder_steady_half_frames"):
        del data[key]
    old = ModelConfig.from_json(data)  # older configs: the mean, 3 frames either side
    assert old.decoded_trend("kick") == "mean" == old.decoded_trend(None)
    assert old.decoded_half_frames("kick") == spectral.STEADY_HALF_FRAMES
    config = ModelConfig.from_json(data | {"decoder_steady_trend": {"kick": "quadratic"},
                                           "decoder_steady_half_frames": {"kick": 6}})
    assert config.decoded_trend("kick") == "quadratic" and config.decoded_trend("tom") == "mean"
    assert config.decoded_half_frames("kick") == 6 and config.decoded_half_frames("tom") == spectral.STEADY_HALF_FRAMES
    for bad, words in (({"decoder_steady_trend": {"kick": "median"}}, "one of mean, quadratic"),
                       ({"decoder_steady_trend": {"cymbal": "mean"}}, "not classes"),
                       ({"decoder_steady_half_frames": {"kick": 0}}, "from 1 to")):
        try:
            ModelConfig.from_json(data | bad)
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_cap_first_frame_bounds_an_overshooting_first_frame_and_leaves_the_rest() -> None:
    course = -10.0 - 0.5 * np.arange(FRAMES)
    spiked = course.copy()
    spiked[0] = course[1] + 12.0  # a first frame 12 dB over the second, as the network samples them
    spec = torch.cat([_spectrogram(spiked), _spectrogram(course)])
    out = spectral.cap_first_frame(spec, torch.tensor([3.0, 3.0]))
    db = spectral.unit_to_db(out)
    # every band that carries the course comes down to 3 dB over the second frame's
    torch.testing.assert_close(db[0, :40, 0] - db[0, :40, 1], torch.full((40,), 3.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[0, :, 1:], spec[0, :, 1:])  # every later frame as it was
    torch.testing.assert_close(out[1], spec[1])  # a first frame within the bound is left alone
    floor = spectral.db_to_unit(torch.tensor(spectral.DB_FLOOR))
    assert torch.all(out[0, 40:, 0] == floor)  # bands at the floor stay there
    # no bound (inf), per row
    unbounded = spectral.cap_first_frame(spec, torch.tensor([np.inf, 3.0]))
    assert torch.equal(unbounded, spec)
    at_zero = _loudness(spectral.cap_first_frame(spec[:1], 0.0))
    assert abs(at_zero[0] - at_zero[1]) < 0.01
    # a band over the bound comes down; a band under it, in the same frame, stays
    mixed = spec[:1].clone()
    mixed[0, 1, 0] = spectral.db_to_unit(spectral.unit_to_db(mixed[0, 1, 1]) - 6.0)
    capped = spectral.unit_to_db(spectral.cap_first_frame(mixed, 3.0))[0]
    assert abs(float(capped[1, 0] - spectral.unit_to_db(mixed[0, 1, 0]))) < 1e-4
    assert abs(float(capped[0, 0] - capped[0, 1]) - 3.0) < 1e-3


def test_first_frame_bound_in_the_config_and_in_the_sampler() -> None:
    from loopbridge.engine.models.default.model import MelUNet, sample

    data = ModelConfig().to_json()
    del data["first_frame_most_db"]
    assert ModelConfig.from_json(data).first_frame_most("clap") == np.inf  # older configs: no bound
    small = ModelConfig(channels=(16, 32), embed_dim=32, attention_heads=2)
    bounded = ModelConfig.from_json(small.to_json() | {"first_frame_most_db": {"clap": 0.0}})
    assert bounded.first_frame_most("clap") == 0.0 and bounded.first_frame_most(None) == np.inf
    for bad, words in (({"clap": -1.0}, "0 or a positive number"), ({"cymbal": 3.0}, "not classes")):
        try:
            ModelConfig.from_json(small.to_json() | {"first_frame_most_db": bad})
        except ValueError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"first_frame_most_db={bad} was accepted")
    torch.manual_seed(0)
    network = MelUNet(small).eval()
    noise = torch.randn(3, small.n_mels, small.frames, generator=torch.Generator().manual_seed(1))
    clap, kick = small.classes.index("clap"), small.classes.index("kick")
    labels = [clap, kick, small.null_class]
    free = sample(network, small, labels, noise, steps=4, guidance=2.0)
    out = sample(network, bounded, labels, noise, steps=4, guidance=2.0)
    # unbounded, this random network's clap starts louder than its second frame; bounded at 0 dB, not
    free_loud, loud = _loudness_rows(free), _loudness_rows(out)
    assert free_loud[0, 0] - free_loud[0, 1] > 0.05
    assert loud[0, 0] - loud[0, 1] <= 1e-3
    db = spectral.unit_to_db(out)
    assert torch.all(db[0, :, 0] <= db[0, :, 1] + 1e-3)  # no band of the first frame over the second's
    # other classes and no class sample as before, to the bit, beside a bounded row as alone
    assert torch.equal(out[1:], free[1:])
    assert torch.equal(sample(network, bounded, labels[1:], noise[1:], steps=4, guidance=2.0), free[1:])


def _loudness_rows(spec: torch.Tensor) -> np.ndarray:
    return spectral.frame_loudness_db(spectral.unit_to_db(spec)).numpy()


def test_decoder_sharpening_limit_in_the_config() -> None:
    data = ModelConfig().to_json()
    del data["decoder_sharpen_below_hz"]
    assert ModelConfig.from_json(data).sharpen_below_hz("kick") is None  # older configs: spectral's default
    limits = ModelConfig.from_json(data | {"decoder_sharpen_below_hz": {"kick": 22050}})
    assert limits.sharpen_below_hz("kick") == 22050.0 and limits.sharpen_below_hz("tom") is None
    assert limits.sharpen_below_hz(None) is None
    for bad, words in (({"kick": 0}, "positive frequency"), ({"kick": "all"}, "positive frequency"),
                       ({"cymbal": 500.0}, "not classes")):
        try:
            ModelConfig.from_json(data | {"decoder_sharpen_below_hz": bad})
        except ValueError as exc:
            assert words in str(exc) and "decoder_sharpen_below_hz" in str(exc)
        else:
            raise AssertionError(f"decoder_sharpen_below_hz={bad} was accepted")
