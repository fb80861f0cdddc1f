#include "SamplePlayer.h"

#include <cmath>

namespace loopbridge
{
double loopPhaseBeats (const TransportState& transport, double loopBeats) noexcept
{
    if (loopBeats <= 0.0)
        return 0.0;
    double beatsFromOrigin = transport.ppqPosition;
    if (transport.hasLastBarStart && transport.timeSigNumerator > 0 && transport.timeSigDenominator > 0)
    {
        // Counting whole bars of the current meter from the last bar line keeps the loop on bar
        // lines even after earlier time-signature changes, where the song position alone would
        // put the loop's start mid-bar. VST3 hosts give the last bar line but no bar count
        // (JUCE's wrapper never sets it): then the bars are those of the current meter that fit
        // before that line, which is the host's count when the meter never changed.
        const auto quartersPerBar = transport.timeSigNumerator * 4.0 / transport.timeSigDenominator;
        const auto bars = transport.hasBarCount ? (double) transport.barCount
                                                : std::floor (transport.ppqLastBarStart / quartersPerBar + 1.0e-6);
        beatsFromOrigin = bars * quartersPerBar + (transport.ppqPosition - transport.ppqLastBarStart);
    }
    auto phase = std::fmod (beatsFromOrigin, loopBeats);
    if (phase < 0.0)
        phase += loopBeats;
    return phase;
}

bool exactSongPosition (const TransportState& transport, double sampleRate, double& quarterNotes) noexcept
{
    if (! transport.hasTimeInSamples || ! transport.hasPpq || transport.bpm <= 0.0 || sampleRate <= 0.0)
        return false;
    const auto fromSamples = (double) transport.timeInSamples * transport.bpm / (60.0 * sampleRate);
    if (std::abs (fromSamples - transport.ppqPosition) > 0.5 * kLoopResyncToleranceQuarterNotes)
        return false;
    quarterNotes = fromSamples;
    return true;
}

SamplePlayer::~SamplePlayer()
{
    // Hand everything back so the exchange can free it (the processor destroys us off the audio thread).
    for (auto& use : uses)
        if (use.sample != nullptr)
            exchange.retire (use.sample);
}

void SamplePlayer::prepare (double newHostSampleRate) noexcept
{
    hostSampleRate = newHostSampleRate > 0.0 ? newHostSampleRate : 44100.0;
    clickFadeStep = (float) (1.0 / juce::jmax (1.0, 0.002 * hostSampleRate)); // 2 ms
}

void SamplePlayer::addUser (const Sample* sample) noexcept
{
    if (sample == nullptr)
        return;
    for (auto& use : uses)
        if (use.sample == sample)
        {
            ++use.users;
            return;
        }
    for (auto& use : uses)
        if (use.sample == nullptr)
        {
            use.sample = sample;
            use.users = 1;
            return;
        }
    jassertfalse; // more samples than voices + current: cannot happen
}

bool SamplePlayer::isHeld (const Sample* sample) const noexcept
{
    for (const auto& use : uses)
        if (use.sample == sample)
            return true;
    return false;
}

void SamplePlayer::removeUser (const Sample* sample) noexcept
{
    if (sample == nullptr)
        return;
    for (auto& use : uses)
        if (use.sample == sample)
        {
            if (--use.users <= 0)
            {
                use = {};
                exchange.retire (sample);
            }
            return;
        }
}

void SamplePlayer::takeNewSample() noexcept
{
    if (const auto* newest = exchange.takeNewest())
    {
        // The exchange pools one entry per hand-over and wants each one back. A sample that comes
        // again while it is still held here (Variation 0 -> 1 -> 0 served from the client's cache)
        // only adds a user to the entry it already has, so that extra hand-over goes back now;
        // the earlier one keeps it alive for as long as it plays.
        if (isHeld (newest))
            exchange.retire (newest);
        addUser (newest);
        removeUser (current);
        current = newest;
        currentIdentity.store (newest, std::memory_order_release);
    }
}

void SamplePlayer::allNotesOff() noexcept
{
    for (auto& voice : voices)
        if (voice.sample != nullptr)
            releaseVoice (voice);
}

void SamplePlayer::releaseVoice (Voice& voice) noexcept
{
    voice.fadeStep = -clickFadeStep;
}

void SamplePlayer::freeVoice (Voice& voice) noexcept
{
    removeUser (voice.sample);
    voice = {};
}

void SamplePlayer::startVoice (int note, float velocity, SampleKind kind, int pitchParameterSemitones) noexcept
{
    if (current == nullptr || current->getNumFrames() <= 0)
        return;

    Voice* target = nullptr;
    for (auto& voice : voices)
        if (voice.sample == nullptr)
        {
            target = &voice;
            break;
        }
    if (target == nullptr) // steal the oldest
    {
        target = &voices[0];
        for (auto& voice : voices)
            if (voice.age < target->age)
                target = &voice;
        freeVoice (*target);
    }

    // The engine already applied its own pitch shift; until a re-conformed sample arrives, the rest
    // of the Pitch knob is played by resampling.
    const auto localPitch = (double) pitchParameterSemitones - current->pitchSemitones;
    const auto looping = kind == SampleKind::loop;
    const auto noteShift = looping ? 0.0 : (double) (note - current->rootNote);

    target->sample = current;
    addUser (current);
    target->position = looping ? (double) current->loopStart : 0.0;
    target->increment = current->sampleRate / hostSampleRate * std::pow (2.0, (noteShift + localPitch) / 12.0);
    target->gain = velocity;
    // No fade-in: a one-shot's first sample is its transient (the engine trimmed the silence before it).
    target->fade = 1.0f;
    target->fadeStep = 0.0f;
    target->looping = looping;
    target->note = note;
    target->age = ++voiceCounter;
}

void SamplePlayer::renderVoices (juce::AudioBuffer<float>& buffer, int start, int numSamples) noexcept
{
    const auto outChannels = buffer.getNumChannels();
    for (auto& voice : voices)
    {
        if (voice.sample == nullptr)
            continue;
        const auto& audio = voice.sample->audio;
        const auto frames = voice.sample->getNumFrames();
        const auto sourceChannels = audio.getNumChannels();
        const auto loopStart = (double) voice.sample->loopStart;
        const auto loopEnd = (double) voice.sample->loopEnd;

        for (int i = 0; i < numSamples; ++i)
        {
            if (voice.looping && voice.position >= loopEnd)
                voice.position = loopStart + std::fmod (voice.position - loopStart, juce::jmax (1.0, loopEnd - loopStart));
            const auto index = (juce::int64) voice.position;
            if (index >= frames)
            {
                freeVoice (voice);
                break;
            }
            const auto frac = (float) (voice.position - (double) index);
            auto next = index + 1;
            if (next >= (voice.looping ? (juce::int64) loopEnd : frames))
                next = voice.looping ? (juce::int64) loopStart : index;

            voice.fade = juce::jlimit (0.0f, 1.0f, voice.fade + voice.fadeStep);
            const auto amp = voice.gain * voice.fade;
            for (int ch = 0; ch < outChannels; ++ch)
            {
                const auto* src = audio.getReadPointer (juce::jmin (ch, sourceChannels - 1));
                const auto value = src[index] + frac * (src[next] - src[index]);
                buffer.addSample (ch, start + i, value * amp);
            }
            voice.position += voice.increment;
            if (voice.fadeStep < 0.0f && voice.fade <= 0.0f)
            {
                freeVoice (voice);
                break;
            }
        }
    }
}

void SamplePlayer::renderTransportLoop (juce::AudioBuffer<float>& buffer, SampleKind kind, const TransportState& transport) noexcept
{
    const auto* sample = current;
    const auto loopBeats = sample != nullptr ? sample->getLoopBeats() : 0.0;
    const bool shouldPlay = kind == SampleKind::loop && transport.isPlaying && transport.hasPpq && transport.bpm > 0.0
                            && sample != nullptr && loopBeats > 0.0 && sample->loopEnd > sample->loopStart;

    if (! shouldPlay && loopFade <= 0.0f)
    {
        loopCountedSample = nullptr;
        transportLoopActive.store (false, std::memory_order_relaxed);
        return;
    }
    if (shouldPlay)
        loopSample = sample;
    if (loopSample == nullptr)
        return;

    const auto* s = loopSample;
    const auto loopFrames = (double) (s->loopEnd - s->loopStart);
    const auto framesPerBeat = loopFrames / s->getLoopBeats();
    const auto increment = (transport.bpm > 0.0 ? transport.bpm : 120.0) / 60.0 / hostSampleRate * framesPerBeat;
    // While the transport plays on, the loop advances by samples from where the last block left
    // it: hosts round the song position they report, and a phase recomputed from it at every
    // block would jump by a few frames at each block's start. The host's position takes over when
    // it differs by more than that rounding (a relocation, a cycle's wrap, a tempo or meter change
    // that moved the bar lines), and after a stop or with a new sample. A tempo change the host's
    // position follows smoothly needs no re-sync: the next block counts at the new tempo.
    // Where the host's sample position is the exact form of its song position, it is taken as it
    // is: a count begun from a rounded position would keep that rounding for the whole roll.
    auto song = transport;
    const auto exact = exactSongPosition (transport, hostSampleRate, song.ppqPosition);
    auto position = loopPhaseBeats (song, s->getLoopBeats()) * framesPerBeat;
    if (shouldPlay && loopCountedSample == s && ! exact)
    {
        auto difference = position - loopNextPosition;
        difference -= loopFrames * std::round (difference / loopFrames); // the nearer way round the loop
        if (std::abs (difference) <= kLoopResyncToleranceQuarterNotes * framesPerBeat)
            position = loopNextPosition;
    }
    const auto outChannels = buffer.getNumChannels();
    const auto sourceChannels = s->audio.getNumChannels();
    const auto step = shouldPlay ? clickFadeStep : -clickFadeStep;

    for (int i = 0; i < buffer.getNumSamples(); ++i)
    {
        if (position >= loopFrames)
            position -= loopFrames;
        const auto index = (juce::int64) position;
        const auto frac = (float) (position - (double) index);
        const auto a = s->loopStart + index;
        const auto b = s->loopStart + ((index + 1) < (juce::int64) loopFrames ? index + 1 : 0);
        loopFade = juce::jlimit (0.0f, 1.0f, loopFade + step);
        for (int ch = 0; ch < outChannels; ++ch)
        {
            const auto* src = s->audio.getReadPointer (juce::jmin (ch, sourceChannels - 1));
            buffer.addSample (ch, i, (src[a] + frac * (src[b] - src[a])) * loopFade);
        }
        position += increment;
    }
    if (position >= loopFrames)
        position -= loopFrames;
    loopNextPosition = position;
    loopCountedSample = shouldPlay ? s : nullptr;
    transportLoopActive.store (loopFade > 0.0f, std::memory_order_relaxed);
}

void SamplePlayer::render (juce::AudioBuffer<float>& buffer, const juce::MidiBuffer& midi, SampleKind kind,
                           const TransportState& transport, int pitchParameterSemitones) noexcept
{
    takeNewSample();
    // A fading transport loop may still read the previous sample: keep it until the fade is over.
    if (loopSample != nullptr && loopSample != current && loopFade <= 0.0f)
        loopSample = nullptr;
    if (loopSample != nullptr && loopSample != current)
        loopSample = current; // switch at once: the new variation is heard in this block

    int renderedUpTo = 0;
    for (const auto metadata : midi)
    {
        const auto position = juce::jlimit (0, buffer.getNumSamples(), metadata.samplePosition);
        if (position > renderedUpTo)
        {
            renderVoices (buffer, renderedUpTo, position - renderedUpTo);
            renderedUpTo = position;
        }
        const auto message = metadata.getMessage();
        // While the transport plays, Loop mode is locked to it; notes would only double the loop.
        const bool lockedToTransport = kind == SampleKind::loop && transport.isPlaying && transport.hasPpq && transport.bpm > 0.0;
        if (message.isNoteOn() && ! lockedToTransport)
            startVoice (message.getNoteNumber(), message.getFloatVelocity(), kind, pitchParameterSemitones);
        else if (message.isNoteOff())
        {
            for (auto& voice : voices)
                if (voice.sample != nullptr && voice.note == message.getNoteNumber() && voice.looping)
                    releaseVoice (voice); // one-shots ring out; held loops stop
        }
        else if (message.isAllNotesOff() || message.isAllSoundOff())
            allNotesOff();
    }
    if (renderedUpTo < buffer.getNumSamples())
        renderVoices (buffer, renderedUpTo, buffer.getNumSamples() - renderedUpTo);

    renderTransportLoop (buffer, kind, transport);

    int active = 0;
    for (const auto& voice : voices)
        active += voice.sample != nullptr ? 1 : 0;
    activeVoices.store (active, std::memory_order_relaxed);
}

} // namespace loopbridge
