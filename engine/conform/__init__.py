"""Conforming: fit a render to a song (tempo, bars, pitch, sample rate) and tag the WAV."""
