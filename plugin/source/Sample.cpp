#include "Sample.h"

#include <juce_audio_formats/juce_audio_formats.h>

#include <cmath>

namespace loopbridge
{
double Sample::getLoopBeats() const noexcept
{
    if (beats > 0.0)
        return beats;
    if (tempoBpm > 0.0 && sampleRate > 0.0)
        return (double) (loopEnd - loopStart) / sampleRate * tempoBpm / 60.0;
    return 0.0;
}

namespace
{
int intValue (const juce::StringPairArray& values, const char* key, int fallback)
{
    const auto text = values.getValue (key, {});
    return text.isEmpty() ? fallback : text.getIntValue();
}

void computePeaks (Sample& sample)
{
    const auto frames = sample.getNumFrames();
    sample.peaks.assign ((size_t) Sample::kWaveformBins * 2, 0.0f);
    if (frames <= 0)
        return;
    for (int bin = 0; bin < Sample::kWaveformBins; ++bin)
    {
        const auto start = frames * bin / Sample::kWaveformBins;
        const auto end = juce::jmax (start + 1, frames * (bin + 1) / Sample::kWaveformBins);
        float low = 0.0f, high = 0.0f;
        for (int ch = 0; ch < sample.audio.getNumChannels(); ++ch)
        {
            const auto range = juce::FloatVectorOperations::findMinAndMax (sample.audio.getReadPointer (ch, (int) start),
                                                                           (int) (end - start));
            low = juce::jmin (low, range.getStart());
            high = juce::jmax (high, range.getEnd());
        }
        sample.peaks[(size_t) bin * 2] = low;
        sample.peaks[(size_t) bin * 2 + 1] = high;
    }
}
} // namespace

std::unique_ptr<Sample> Sample::fromWav (const void* data, size_t numBytes, const SampleInfo& info, juce::String& error,
                                         double maxSeconds)
{
    if (data == nullptr || numBytes < 44)
    {
        error = "sample of " + juce::String ((juce::int64) numBytes) + " bytes: expected a WAV file (at least 44 bytes)";
        return nullptr;
    }

    juce::WavAudioFormat wav;
    auto stream = std::make_unique<juce::MemoryInputStream> (data, numBytes, false);
    std::unique_ptr<juce::AudioFormatReader> reader (wav.createReaderFor (stream.release(), true));
    if (reader == nullptr)
    {
        error = "sample is not a readable WAV file";
        return nullptr;
    }
    const auto frames = (juce::int64) reader->lengthInSamples;
    if (reader->sampleRate < 8000.0 || reader->sampleRate > 192000.0 || reader->numChannels < 1 || reader->numChannels > 8)
    {
        error = "WAV at " + juce::String (reader->sampleRate) + " Hz with " + juce::String ((int) reader->numChannels)
                + " channels: expected 8000-192000 Hz, 1-8 channels";
        return nullptr;
    }
    if (frames <= 0 || (double) frames / reader->sampleRate > maxSeconds)
    {
        error = "WAV of " + juce::String ((double) frames / reader->sampleRate, 2) + " s: expected more than 0 s and at most "
                + juce::String (maxSeconds) + " s";
        return nullptr;
    }

    auto sample = std::make_unique<Sample>();
    sample->sampleRate = reader->sampleRate;
    sample->audio.setSize ((int) reader->numChannels, (int) frames);
    if (! reader->read (&sample->audio, 0, (int) frames, 0, true, true))
    {
        error = "WAV data is truncated or unreadable";
        return nullptr;
    }

    // The file's own tags first (a sample restored from a project has only these) ...
    const auto& meta = reader->metadataValues;
    const bool acidOneShot = intValue (meta, juce::WavAudioFormat::acidOneShot, 0) != 0;
    const bool hasAcid = meta.containsKey (juce::WavAudioFormat::acidBeats);
    if (intValue (meta, juce::WavAudioFormat::acidRootSet, 0) != 0)
        sample->rootNote = intValue (meta, juce::WavAudioFormat::acidRootNote, 60);
    else if (meta.containsKey ("MidiUnityNote"))
        sample->rootNote = intValue (meta, "MidiUnityNote", 60);
    if (hasAcid)
    {
        sample->beats = (double) intValue (meta, juce::WavAudioFormat::acidBeats, 0);
        sample->tempoBpm = meta.getValue (juce::WavAudioFormat::acidTempo, "0").getDoubleValue();
        sample->isLoop = ! acidOneShot;
    }
    sample->loopStart = 0;
    sample->loopEnd = frames;
    if (intValue (meta, "NumSampleLoops", 0) > 0)
    {
        const auto start = (juce::int64) meta.getValue ("Loop0Start", "0").getLargeIntValue();
        const auto endInclusive = (juce::int64) meta.getValue ("Loop0End", "-1").getLargeIntValue();
        if (start >= 0 && endInclusive > start && endInclusive < frames)
        {
            sample->loopStart = start;
            sample->loopEnd = endInclusive + 1;
            sample->isLoop = true;
        }
    }

    // The acid chunk holds whole beats, so a loop of 3.5 quarter notes (a bar of 7/8) reads as 4.
    // Where the loop's length at the chunk's tempo is a 64th-note multiple within half a beat of
    // it, that length is the loop's, so transport-locked playback keeps to the bar lines.
    if (hasAcid && sample->isLoop && sample->beats > 0.0 && sample->tempoBpm > 0.0)
    {
        const auto measured = (double) (sample->loopEnd - sample->loopStart) / sample->sampleRate * sample->tempoBpm / 60.0;
        const auto snapped = std::round (measured * 16.0) / 16.0;
        if (snapped > 0.0 && std::abs (measured - snapped) < 0.01 && std::abs (snapped - sample->beats) <= 0.5)
            sample->beats = snapped;
    }

    // ... then what the engine's reply says, which wins where given.
    if (info.kind.isNotEmpty())
        sample->isLoop = info.kind == "loop";
    if (info.rootNote >= 0 && info.rootNote <= 127)
        sample->rootNote = info.rootNote;
    if (info.tempoBpm > 0.0)
        sample->tempoBpm = info.tempoBpm;
    if (info.beats > 0.0)
        sample->beats = info.beats;
    if (info.loopStart >= 0 && info.loopEnd > info.loopStart && info.loopEnd <= frames)
    {
        sample->loopStart = info.loopStart;
        sample->loopEnd = info.loopEnd;
    }
    sample->variation = info.variation;
    sample->pitchSemitones = info.pitchSemitones;
    sample->musicalKey = info.musicalKey;
    sample->keyConfidence = info.keyConfidence;
    sample->saysNoKey = info.saysNoKey;
    sample->keyAsked = info.keyAsked;
    sample->loudnessLufs = info.loudnessLufs;
    sample->key = info.key;
    sample->renderKey = info.renderKey;
    sample->fileName = info.fileName;
    sample->enginePath = info.enginePath;
    sample->wavBytes.replaceAll (data, numBytes);
    computePeaks (*sample);
    return sample;
}

} // namespace loopbridge
