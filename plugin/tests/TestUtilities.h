// Helpers shared by the unit tests: WAV bytes with acid / smpl tags, a play head the tests steer,
// and the allocation counter that TestMain's global operator new feeds.
#pragma once

#include <juce_audio_basics/juce_audio_basics.h>
#include <juce_audio_formats/juce_audio_formats.h>

#include <atomic>
#include <cmath>

namespace loopbridge::test
{
struct AllocationCounter
{
    static thread_local bool threadIsRealtime;
    static std::atomic<int> realtimeAllocations;

    /** Counts allocations on this thread for its lifetime. */
    struct Scope
    {
        Scope() { threadIsRealtime = true; }
        ~Scope() { threadIsRealtime = false; }
    };
};

/** A sine of `frequencyHz` (or, with frequencyHz <= 0, a ramp from -1 to 1) as 24-bit WAV bytes,
    tagged like the engine's files when `beats` > 0 (acid: tempo, beats, root, loop or one-shot;
    smpl: one loop over the whole file). */
inline juce::MemoryBlock makeWav (double sampleRate, int frames, int channels, double frequencyHz, double tempoBpm = 0.0,
                                  double beats = 0.0, int rootNote = 60, bool isLoop = false)
{
    juce::AudioBuffer<float> audio (channels, frames);
    for (int ch = 0; ch < channels; ++ch)
        for (int i = 0; i < frames; ++i)
            audio.setSample (ch, i, frequencyHz > 0.0 ? (float) (0.5 * std::sin (2.0 * juce::MathConstants<double>::pi * frequencyHz * i / sampleRate))
                                                      : (float) (-1.0 + 2.0 * i / juce::jmax (1, frames - 1)) * 0.9f);

    juce::StringPairArray meta;
    if (beats > 0.0)
    {
        meta.set (juce::WavAudioFormat::acidOneShot, isLoop ? "0" : "1");
        meta.set (juce::WavAudioFormat::acidRootSet, "1");
        meta.set (juce::WavAudioFormat::acidRootNote, juce::String (rootNote));
        meta.set (juce::WavAudioFormat::acidBeats, juce::String (juce::roundToInt (beats)));
        meta.set (juce::WavAudioFormat::acidDenominator, "4");
        meta.set (juce::WavAudioFormat::acidNumerator, "4");
        meta.set (juce::WavAudioFormat::acidTempo, juce::String (tempoBpm));
        if (isLoop)
        {
            meta.set ("MidiUnityNote", juce::String (rootNote));
            meta.set ("NumSampleLoops", "1");
            meta.set ("Loop0Type", "0");
            meta.set ("Loop0Start", "0");
            meta.set ("Loop0End", juce::String (frames - 1));
        }
    }

    juce::MemoryBlock bytes;
    {
        auto* stream = new juce::MemoryOutputStream (bytes, false);
        juce::WavAudioFormat wav;
        std::unique_ptr<juce::AudioFormatWriter> writer (wav.createWriterFor (stream, sampleRate, (unsigned int) channels, 24, meta.getAllKeys().isEmpty() ? juce::StringPairArray() : meta, 0));
        writer->writeFromAudioSampleBuffer (audio, 0, frames);
    }
    return bytes;
}

/** A play head whose position the test sets before each block. It reports what JUCE's VST3
    wrapper does: tempo, meter, song position and the last bar line, but no bar count. */
struct TestPlayHead final : public juce::AudioPlayHead
{
    juce::AudioPlayHead::PositionInfo info;

    juce::Optional<juce::AudioPlayHead::PositionInfo> getPosition() const override { return info; }

    /** A song in one meter throughout: the last bar line follows from the position. */
    void set (double bpm, int numerator, int denominator, double ppq, bool playing)
    {
        const auto quartersPerBar = numerator * 4.0 / denominator;
        setWithBarStart (bpm, numerator, denominator, ppq, std::floor (ppq / quartersPerBar) * quartersPerBar, playing);
    }

    /** Any song: the host says where the last bar line was (after meter changes, not a multiple
        of the current bar length). */
    void setWithBarStart (double bpm, int numerator, int denominator, double ppq, double ppqLastBarStart, bool playing)
    {
        info = {};
        info.setBpm (bpm);
        info.setTimeSignature (juce::AudioPlayHead::TimeSignature { numerator, denominator });
        info.setPpqPosition (ppq);
        info.setPpqPositionOfLastBarStart (ppqLastBarStart);
        info.setIsPlaying (playing);
    }

    /** The host's sample position too, after set(): as JUCE's VST3 wrapper reports it, where a
        position before the song's start reads as sample 0. */
    void setTimeInSamples (juce::int64 samples) { info.setTimeInSamples (samples > 0 ? samples : 0); }
};

} // namespace loopbridge::test
