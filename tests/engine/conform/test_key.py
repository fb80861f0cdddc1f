"""Keys: names, the smallest shift, and detection and matching on real instrument recordings.

Instruments are the FluidR3 General MIDI sound font's recorded samples playing MIDI written by
``instruments.py`` in known keys; drums are its recorded kits. Sonic Pi's recordings (Debian's
``sonic-pi-samples``) whose key their names give: ``guit_em9`` is a guitar's E minor ninth chord
(E G B D F#; librosa's pYIN hears its lowest note as E2 and its strongest chroma as E, B, D);
``loop_drone_g_97`` a drone on G (pYIN: G1 throughout) whose name gives no mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopbridge.engine import ConformSpec, Kind, RequestError
from loopbridge.engine.conform import (
    SourceInfo,
    StretchOptions,
    conform_audio,
    encode_wav,
    read_wav_tags,
    sample_filename,
)
from loopbridge.engine.conform import key as key_module
from loopbridge.engine.conform.key import (
    MAJOR_NAMES,
    MINOR_NAMES,
    MusicalKey,
    all_keys,
    detect_key,
    key_shift,
    mirex_score,
    parse_key,
)

from . import instruments
from .real_audio import grid_offsets

SONIC_PI = Path("/usr/share/sonic-pi/samples")
needs_fluidsynth = pytest.mark.skipif(instruments.available() is not None, reason=str(instruments.available()))
needs_sonic_pi = pytest.mark.skipif(not SONIC_PI.is_dir(), reason="sonic-pi-samples is not installed")


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instruments")


# ---- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name"), [
    ("C", "C"), ("C#", "C#"), ("Db", "C#"), ("D", "D"), ("D#", "Eb"), ("Gb", "F#"), ("Ab", "Ab"), ("A#", "Bb"),
    ("Cb", "B"), ("E#", "F"), ("Am", "Am"), ("F#m", "F#m"), ("Gbm", "F#m"), ("Bbm", "Bbm"), ("A#m", "Bbm"),
    ("Abm", "G#m"), ("D#m", "Ebm"), ("A minor", "Am"), ("C major", "C"), ("f# min", "F#m"), ("Eb maj", "Eb"),
    ("  bb  ", "Bb"), ("A Minor", "Am"), ("c♯m", "C#m"), ("B♭", "Bb"),
])
def test_every_spelling_reads_as_its_canonical_name(text: str, name: str) -> None:
    key = parse_key(text)
    assert key is not None and key.name == name
    assert parse_key(name) == key, "the canonical name reads back as itself"


@pytest.mark.parametrize("text", ["off", "OFF", "", "none", None])
def test_off_and_empty_mean_no_key(text: str | None) -> None:
    assert parse_key(text) is None


@pytest.mark.parametrize("text", ["H", "Cx", "A minr", "C##", "7", "Am7", "major", "x" * 30])
def test_a_bad_key_is_refused_naming_it_and_the_forms(text: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_key(text)
    assert caught.value.field == "key" and repr(text)[:20] in str(caught.value) and "A minor" in str(caught.value)
    with pytest.raises(RequestError):
        ConformSpec(key=text)


def test_the_24_canonical_names() -> None:
    assert MAJOR_NAMES == ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    assert MINOR_NAMES == ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
    assert [k.name for k in all_keys()] == [*MAJOR_NAMES, *MINOR_NAMES]
    assert ConformSpec(key="a minor").key == "Am"


@pytest.mark.parametrize(("detected", "target", "shift"), [
    ("C", "C", 0), ("C", "D", 2), ("C", "Bb", -2), ("C", "F#", -6), ("C", "F", 5), ("C", "G", -5),
    ("Am", "C", 0), ("C", "Am", 0), ("Em", "C", 5), ("Em", "Am", 5), ("F#m", "Am", 3), ("G", "Em", 0),
    ("B", "C", 1), ("Bbm", "Dm", 4),
])
def test_the_smallest_shift_and_a_relative_key_is_a_match(detected: str, target: str, shift: int) -> None:
    found, wanted = parse_key(detected), parse_key(target)
    assert found is not None and wanted is not None
    assert key_shift(found, wanted) == shift
    moved = found.transposed(shift)
    assert moved in (wanted, wanted.relative())


def test_every_shift_is_within_six_semitones() -> None:
    for a in all_keys():
        for b in all_keys():
            assert -6 <= key_shift(a, b) <= 5


def test_mirex_weights() -> None:
    c, am = MusicalKey(0), MusicalKey(9, True)
    assert mirex_score(c, c) == 1.0
    assert mirex_score(MusicalKey(7), c) == mirex_score(MusicalKey(5), c) == 0.5
    assert mirex_score(am, c) == 0.3
    assert mirex_score(MusicalKey(0, True), c) == 0.2
    assert mirex_score(MusicalKey(2), c) == 0.0 and mirex_score(None, c) == 0.0


# ---- detection on real instruments ------------------------------------------------------------------------


@needs_fluidsynth
def test_keys_of_instruments_playing_in_known_keys(renders: Path) -> None:
    keys = [MusicalKey(t, m) for t, m in ((0, False), (2, True), (4, False), (5, True), (7, False), (9, True),
                                          (10, False), (11, True))]
    scores = []
    for i, key in enumerate(keys):
        arrangement = ("piano", "strings", "guitar", "pad")[i % 4]
        audio, rate = instruments.tonal_loop(key, arrangement, renders, "cadence" if i % 2 else "turnaround")
        found = detect_key(audio, rate)
        assert found.key is not None and found.confidence is not None and 0 <= found.confidence <= 1
        scores.append(mirex_score(found.key, key))
    assert np.mean(scores) >= 0.85, scores
    assert sum(s == 1.0 for s in scores) >= 6, scores


@needs_fluidsynth
@pytest.mark.parametrize("pattern", list(instruments.DRUM_PATTERNS))
def test_recorded_drum_kits_have_no_key(renders: Path, pattern: str) -> None:
    for kit in (0, 16, 25):  # standard, power, TR-808
        audio, rate = instruments.drum_loop(pattern, kit, renders)
        found = detect_key(audio, rate)
        assert found.key is None and found.confidence is None, (pattern, kit, found)


@needs_sonic_pi
@pytest.mark.parametrize("name", ["vinyl_hiss", "ambi_swoosh", "loop_amen_full", "loop_compus", "loop_industrial"])
def test_recorded_noise_and_drum_loops_have_no_key(name: str) -> None:
    audio, rate = sf.read(SONIC_PI / f"{name}.flac", dtype="float32", always_2d=True)
    assert detect_key(np.ascontiguousarray(audio.T), rate).key is None


def test_white_noise_has_no_key() -> None:
    noise = np.random.default_rng(3).standard_normal((2, 48000 * 4)).astype(np.float32) * 0.1
    assert detect_key(noise, 48000).key is None


@needs_sonic_pi
def test_recordings_whose_names_give_their_key() -> None:
    chord, rate = sf.read(SONIC_PI / "guit_em9.flac", dtype="float32", always_2d=True)
    assert detect_key(chord.T, rate).name in ("Em", "G")  # E minor, or its relative
    drone, rate = sf.read(SONIC_PI / "loop_drone_g_97.flac", dtype="float32", always_2d=True)
    found = detect_key(drone.T, rate).key
    assert found is not None and found.tonic == 7  # G; the name gives no mode


def _tonalness_with_a_median_filter(spectra: np.ndarray) -> float:
    """:func:`~loopbridge.engine.conform.key.tonalness` the straightforward way: the spectrum's median
    level around every bin from scipy's median filter (what this reference checks), then the held prominent
    peaks' share of the energy by the engine's own ``held_peaks_share``."""
    from scipy.ndimage import median_filter

    bin_hz = key_module.ANALYSIS_RATE / key_module.FRAME
    low, high = int(key_module.LOW_HZ / bin_hz), min(spectra.shape[1] - 2, int(key_module.HIGH_HZ / bin_hz))
    power = spectra[:, low:high].astype(np.float64) ** 2
    level = 20 * np.log10(spectra[:, low - 1 : high + 1] + 1e-9)
    floor = median_filter(level, size=(1, key_module.MEDIAN_BINS), mode="nearest")
    centre = level[:, 1:-1]
    peak = (centre > level[:, :-2]) & (centre >= level[:, 2:]) & (centre > floor[:, 1:-1] + key_module.PROMINENCE_DB)
    return key_module.held_peaks_share(peak, power)


@needs_sonic_pi
@pytest.mark.parametrize("name", ["guit_em9", "loop_drone_g_97", "loop_garzul", "loop_tabla", "loop_amen_full",
                                  "loop_mika"])
def test_tonalness_matches_a_median_filter_over_the_whole_spectrum(name: str) -> None:
    audio, rate = sf.read(SONIC_PI / f"{name}.flac", dtype="float32", always_2d=True)
    spectra = key_module._frames(key_module._mono(np.ascontiguousarray(audio.T), rate))
    assert key_module.tonalness(spectra) == _tonalness_with_a_median_filter(spectra)



# ---- matching in the conform stage ----------------------------------------------------------------------


def _spec(**fields: object) -> ConformSpec:
    return ConformSpec(**{"tempo_bpm": 126.0, "bars": 4, "sample_rate": 44100, **fields})  # type: ignore[arg-type]


@needs_fluidsynth
@pytest.mark.parametrize(("own", "asked", "shift"), [("D", "F", 3), ("Em", "Cm", -4), ("D", "Bm", 0)])
def test_a_loop_is_moved_to_the_songs_key_by_the_smallest_shift(renders: Path, own: str, asked: str,
                                                                 shift: int) -> None:
    key = parse_key(own)
    assert key is not None
    audio, rate = instruments.tonal_loop(key, "piano", renders)
    source = SourceInfo(tempo_bpm=120.0, beats=16)
    plain = conform_audio(audio, rate, Kind.LOOP, _spec(), source)
    matched = conform_audio(audio, rate, Kind.LOOP, _spec(key=asked), source)
    assert plain.info["key"] == own and plain.info["key_confidence"] is not None
    assert matched.info["key_shift_semitones"] == shift and matched.info["detected_key"] == own
    wanted = parse_key(asked)
    assert wanted is not None
    assert matched.info["key"] in (wanted.name, wanted.relative().name)
    assert matched.audio.shape == plain.audio.shape
    assert matched.audio.shape[1] == round(4 * 4 * 60 / 126 * 44100), "exact to the sample"
    heard = detect_key(matched.audio, 44100).key
    assert heard is not None and heard.name == matched.info["key"], "the shifted loop is heard in its new key"
    # the key names the file and roots it: acid root note (with its flag) and smpl unity note on the tonic
    assert sample_filename("keys", matched, 1, 0).endswith(f"_{matched.info['key']}.wav")
    tags = read_wav_tags(encode_wav(matched))
    tonic = parse_key(matched.info["key"])
    assert tonic is not None and tags.acid is not None and tags.smpl is not None
    assert tags.acid.root_note_set and tags.acid.root_note % 12 == tonic.tonic
    assert tags.smpl.unity_note == tags.acid.root_note == matched.root_note
    assert matched.info["pitch_semitones"] == 0.0, "the user's own shift is reported apart from the key's"


@needs_fluidsynth
@pytest.mark.parametrize(("shift_alone", "engine"), [("same", "rubberband-r3"), ("faster", "rubberband-r2")])
def test_a_loop_at_its_own_tempo_is_moved_to_the_songs_key(renders: Path, shift_alone: str, engine: str) -> None:
    # no stretch but the key's, by either engine (bench_key.py section 4 compares them against
    # fluidsynth's own rendering in the new key)
    key = parse_key("D")
    assert key is not None
    audio, rate = instruments.tonal_loop(key, "piano", renders)
    matched = conform_audio(audio, rate, Kind.LOOP, _spec(tempo_bpm=120.0, key="F"),
                            SourceInfo(tempo_bpm=120.0, beats=16), options=StretchOptions(shift_alone=shift_alone))
    assert matched.info["key_shift_semitones"] == 3 and matched.info["stretch_engine"] == engine
    assert matched.audio.shape[1] == round(4 * 4 * 60 / 120 * 44100), "exact to the sample"
    heard = detect_key(matched.audio, 44100).key
    assert heard is not None and heard.name == "F"


@needs_fluidsynth
def test_struck_notes_moved_to_a_key_keep_their_attacks_near_the_grid(renders: Path) -> None:
    # marimba and xylophone: each new note's partials start under the ringing of the one before; the
    # stretcher smears them ahead of the attack, and only in their own bands does that show (a broadband
    # pre-echo limit left these onsets about 9 ms early; bench_key.py section 3 measures the set)
    source = SourceInfo(tempo_bpm=120.0, beats=16)
    offsets = []
    for own, program, asked in (("D", 12, "Gm"), ("Eb", 13, "Ab")):
        key = parse_key(own)
        assert key is not None
        audio, rate = instruments.staccato_loop(key, program, renders)
        out = conform_audio(audio, rate, Kind.LOOP, _spec(key=asked), source)
        assert out.info["key_shift_semitones"] != 0 and out.audio.shape[1] == _spec().loop_frames
        found = grid_offsets(audio, rate, 120.0, 16, 0.0, out.audio, rate, 126.0)
        assert found.missed <= 2, found
        offsets.extend(found.offsets_ms.tolist())
    assert abs(float(np.median(offsets))) < 7.0, f"librosa's onsets median {np.median(offsets):+.2f} ms off the grid"


@needs_fluidsynth
def test_drums_pass_untouched(renders: Path) -> None:
    audio, rate = instruments.drum_loop("breakbeat", 0, renders)
    source = SourceInfo(tempo_bpm=120.0, beats=16)
    plain = conform_audio(audio, rate, Kind.LOOP, _spec(), source)
    keyed = conform_audio(audio, rate, Kind.LOOP, _spec(key="F#m"), source)
    assert np.array_equal(plain.audio, keyed.audio), "bit-exact with and without a key"
    assert keyed.info["key"] is None and "key_shift_semitones" not in keyed.info
    assert plain.root_note is None and not sample_filename("break", keyed, 1, 0).endswith("m.wav")
    # a model's word that a sound has no pitch is taken without listening
    drums = conform_audio(audio, rate, Kind.LOOP, _spec(key="F#m"), SourceInfo(120.0, 16, pitched=False))
    assert np.array_equal(plain.audio, drums.audio) and drums.info["key_rule"].startswith("no pitch")


@needs_sonic_pi
def test_a_pitched_one_shot_keeps_its_root_and_moves_it_to_the_tonic() -> None:
    audio, rate = sf.read(SONIC_PI / "bass_dnb_f.flac", dtype="float32", always_2d=True)
    source = SourceInfo(root_note=29)  # F1, as its name and pYIN say
    shot = conform_audio(audio.T, rate, Kind.ONE_SHOT, ConformSpec(sample_rate=44100, key="Gm"), source)
    assert shot.info["key_shift_semitones"] == 2 and shot.root_note == 31  # G1
    assert shot.info["key"] is None, "a one-shot has a root note, not a key"
    assert sample_filename("bass", shot, 1, 0).endswith("_G1.wav")


def test_a_loop_with_no_key_heard_moves_the_models_root_to_the_tonic() -> None:
    # the default model's bass and pluck loops play one sound around its own note: the model gives the root
    sound = (np.random.default_rng(4).standard_normal((1, 44100 * 2)) * 0.1).astype(np.float32)
    spec = ConformSpec(tempo_bpm=120.0, sample_rate=44100, key="Am")
    moved = conform_audio(sound, 44100, Kind.TEXTURE, spec, SourceInfo(root_note=47))  # B2
    assert moved.info["key"] is None and moved.info["key_shift_semitones"] == -2 and moved.root_note == 45
    assert sample_filename("pluck", moved, 1, 0).endswith("_A2.wav")
    unrooted = conform_audio(sound, 44100, Kind.TEXTURE, spec, SourceInfo())
    assert "key_shift_semitones" not in unrooted.info and unrooted.root_note is None
