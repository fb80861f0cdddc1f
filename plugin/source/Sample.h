// One decoded sample: audio, what the engine said about it, and the WAV bytes it came from.
#pragma once

#include "Protocol.h"

#include <juce_audio_basics/juce_audio_basics.h>
#include <juce_core/juce_core.h>

#include <memory>
#include <vector>

namespace loopbridge
{
/** What the engine's reply says about a sample; negative / empty values mean "not given". */
struct SampleInfo
{
    juce::String key, renderKey, fileName, kind;
    juce::String enginePath; // the conformed file on the engine's machine
    double tempoBpm = -1.0;
    double beats = -1.0;
    int rootNote = -1;
    int variation = -1;
    double pitchSemitones = 0.0; // the pitch shift the engine applied when conforming
    juce::int64 loopStart = -1, loopEnd = -1;
    juce::String musicalKey;     // the key the engine hears in the sample ("Am", "F#"); empty: none or not said
    double keyConfidence = -1.0; // 0..1, < 0: not given
    bool saysNoKey = false;      // the engine said the sample has no key (drums, noise)
    juce::String keyAsked;       // the song's key the sample was conformed to (a request's `key`); empty: none
    double loudnessLufs = protocol::kDefaultLoudnessLufs; // the loudness asked when conforming
};

/** Immutable once built. Created and destroyed off the audio thread only (see SampleExchange). */
struct Sample
{
    juce::AudioBuffer<float> audio;  // [channels, frames] at `sampleRate`
    double sampleRate = 0.0;
    bool isLoop = false;
    int rootNote = 60;               // MIDI note that plays the sample at its own pitch
    double tempoBpm = 0.0;           // 0: unknown
    double beats = 0.0;              // length in beats (quarter notes) at tempoBpm; 0: unknown
    juce::int64 loopStart = 0, loopEnd = 0; // frames, end exclusive; the whole file unless tagged
    int variation = -1;
    double pitchSemitones = 0.0;
    juce::String musicalKey;     // as in SampleInfo
    double keyConfidence = -1.0;
    bool saysNoKey = false;
    juce::String keyAsked;
    double loudnessLufs = protocol::kDefaultLoudnessLufs;
    juce::String key, renderKey, fileName, enginePath;
    juce::MemoryBlock wavBytes;      // exactly what arrived: saved with the project, dragged out
    std::vector<float> peaks;        // min/max pairs for the waveform view (kWaveformBins pairs)

    static constexpr int kWaveformBins = 512;

    juce::int64 getNumFrames() const noexcept { return audio.getNumSamples(); }
    double getDurationSeconds() const noexcept { return sampleRate > 0 ? (double) getNumFrames() / sampleRate : 0.0; }

    /** Loop length in beats: from the engine or the acid chunk, else from tempo and length. */
    double getLoopBeats() const noexcept;

    /** Decodes WAV bytes (any bit depth JUCE reads) and reads its acid / smpl chunks; the fields in
        `info` that are given override the chunks. Returns nullptr and sets `error` for anything
        that is not a readable, non-empty WAV of at most `maxSeconds`. */
    static std::unique_ptr<Sample> fromWav (const void* data, size_t numBytes, const SampleInfo& info,
                                            juce::String& error, double maxSeconds = 600.0);
};

} // namespace loopbridge
