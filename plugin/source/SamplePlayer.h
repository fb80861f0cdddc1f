// Plays the current sample on the audio thread: one-shots from MIDI notes (pitched by the note
// relative to the sample's root), loops from MIDI notes, or loops locked to the host's transport.
//
// Everything here runs on the audio thread and is allocation- and lock-free: samples arrive as
// raw pointers from a SampleExchange and go back to it when nothing plays them any more.
#pragma once

#include "Parameters.h"
#include "SampleExchange.h"

#include <juce_audio_basics/juce_audio_basics.h>

#include <array>
#include <atomic>

namespace loopbridge
{
/** The host transport for one block, as far as the host tells it. */
struct TransportState
{
    bool isPlaying = false;
    double bpm = 0.0;            // 0: unknown
    double ppqPosition = 0.0;    // quarter notes since the song's start, at the block's first sample
    bool hasPpq = false;
    double ppqLastBarStart = 0.0;
    bool hasLastBarStart = false;
    juce::int64 barCount = 0;
    bool hasBarCount = false;
    int timeSigNumerator = 4;
    int timeSigDenominator = 4;
    juce::int64 timeInSamples = 0; // the host's sample position at the block's first sample
    bool hasTimeInSamples = false;
};

/** Where a loop of `loopBeats` quarter notes is at `transport`, in quarter notes from its start.
    Loops start on bar lines: the phase counts from the last bar line the host reports (and its
    bar count, where the host gives one), else from the song position. */
double loopPhaseBeats (const TransportState& transport, double loopBeats) noexcept;

/** How far (in quarter notes) the host's loop position may stray from the one the loop reached by
    counting samples, and still be taken for the same place. Hosts round the song position they
    report to a grid of ticks, by at most half a tick: Ardour to 1/1920 quarter note (±6 frames at
    120 BPM and 48 kHz), coarser hosts to 960 ticks a quarter note. One whole tick of the coarser
    grid is tolerated; a relocation, a cycle's wrap or a stop moves the position further. */
inline constexpr double kLoopResyncToleranceQuarterNotes = 1.0 / 960.0;

/** The song position of `transport` in quarter notes from the host's sample position, where that
    is the same place as the PPQ position it reports (within half a tick of the coarser grid): the
    song has then run at this tempo from its start, and the sample count is exact where the PPQ
    position is rounded (Ardour's roll can start on a PPQ position 5 frames off the sample it
    plays). Returns false, and leaves `quarterNotes` alone, where there is no sample position or it
    disagrees (a tempo change earlier in the song, a host whose sample count starts elsewhere, or
    a position before the song's start, which JUCE's VST3 wrapper reports as sample 0). */
bool exactSongPosition (const TransportState& transport, double sampleRate, double& quarterNotes) noexcept;

class SamplePlayer
{
public:
    static constexpr int kMaxVoices = 16;

    explicit SamplePlayer (SampleExchange& exchangeToUse) : exchange (exchangeToUse) {}
    ~SamplePlayer();

    void prepare (double hostSampleRate) noexcept;

    /** Stops every voice (they fade out over a few samples at the next render). */
    void allNotesOff() noexcept;

    /** Adds this block's output to `buffer` (which the caller has cleared). */
    void render (juce::AudioBuffer<float>& buffer, const juce::MidiBuffer& midi, SampleKind kind,
                 const TransportState& transport, int pitchParameterSemitones) noexcept;

    /** The sample new notes play (audio thread only). */
    const Sample* getCurrent() const noexcept { return current; }

    // Read by the editor's timer from any thread.
    std::atomic<int> activeVoices { 0 };
    std::atomic<bool> transportLoopActive { false };
    std::atomic<const void*> currentIdentity { nullptr }; // which sample the audio thread plays now

private:
    struct Voice
    {
        const Sample* sample = nullptr;
        double position = 0.0;  // frames into the sample
        double increment = 1.0; // frames per output sample
        float gain = 0.0f;
        float fade = 0.0f;      // 0..1 envelope against clicks
        float fadeStep = 0.0f;  // per sample; negative while releasing
        bool looping = false;
        int note = -1;
        juce::uint32 age = 0;
    };

    void takeNewSample() noexcept;
    void startVoice (int note, float velocity, SampleKind kind, int pitchParameterSemitones) noexcept;
    void releaseVoice (Voice& voice) noexcept;
    void freeVoice (Voice& voice) noexcept;
    void renderVoices (juce::AudioBuffer<float>& buffer, int start, int numSamples) noexcept;
    void renderTransportLoop (juce::AudioBuffer<float>& buffer, SampleKind kind, const TransportState& transport) noexcept;

    // Reference counts of samples that voices still play (current counts as one user).
    void addUser (const Sample* sample) noexcept;
    void removeUser (const Sample* sample) noexcept;
    bool isHeld (const Sample* sample) const noexcept;

    struct Use
    {
        const Sample* sample = nullptr;
        int users = 0;
    };

    SampleExchange& exchange;
    const Sample* current = nullptr;
    std::array<Use, kMaxVoices + 2> uses {};
    std::array<Voice, kMaxVoices> voices {};
    juce::uint32 voiceCounter = 0;
    double hostSampleRate = 44100.0;
    float clickFadeStep = 1.0f / 64.0f;

    // the transport-locked loop
    const Sample* loopSample = nullptr;
    float loopFade = 0.0f;
    // Where the loop will be at the next block's first sample, counted in the sample's frames from
    // its loop start, and which sample that count belongs to (nullptr: no count; take the host's).
    double loopNextPosition = 0.0;
    const Sample* loopCountedSample = nullptr;
};

} // namespace loopbridge
