// The plugin's automatable parameters: IDs (versioned), ranges, and the raw pointers the audio
// thread and the network thread read without looking anything up by name.
#pragma once

#include "Protocol.h"

#include <juce_audio_processors/juce_audio_processors.h>

#include <atomic>
#include <iterator>
#include <cstdint>

namespace loopbridge
{
namespace ParamIDs
{
// Version 1 of every ID: a parameter whose meaning changes gets a new version, so automation
// recorded against the old one is not silently reinterpreted.
inline const juce::ParameterID generate { "generate", 1 };
inline const juce::ParameterID variation { "variation", 1 };
inline const juce::ParameterID morph { "morph", 1 };
inline const juce::ParameterID seed { "seed", 1 };
inline const juce::ParameterID quality { "quality", 1 };
inline const juce::ParameterID length { "length", 1 };
inline const juce::ParameterID kind { "kind", 1 };
inline const juce::ParameterID pitch { "pitch", 1 };
inline const juce::ParameterID strength { "strength", 1 };
inline const juce::ParameterID gain { "gain", 1 };
inline const juce::ParameterID key { "key", 1 };
inline const juce::ParameterID loudness { "loudness", 1 };
// what the task buttons do to the sample that plays (not automatable: a click is the action)
inline const juce::ParameterID task { "task", 1 };
inline const juce::ParameterID continueBars { "continue_bars", 1 };
inline const juce::ParameterID replaceFrom { "replace_from", 1 };
inline const juce::ParameterID replaceTo { "replace_to", 1 };
inline const juce::ParameterID track { "track", 1 };
inline const juce::ParameterID runTask { "run_task", 1 };
} // namespace ParamIDs

inline constexpr int kVariationMax = 127;
inline constexpr int kSeedMax = 99999;
// A seed from the knob is one the engine could have drawn itself (the front ends' seeds are 32-bit signed).
static_assert (kSeedMax <= protocol::kRandomSeedMax, "the Seed parameter's range must stay within the engine's random seeds");
inline constexpr int kQualityMaxSteps = 200;
inline constexpr int kPitchRangeSemitones = 24;
inline constexpr float kGainMinDb = -60.0f;
inline constexpr float kGainMaxDb = 12.0f;
// Integrated loudness (BS.1770) the engine brings loops and textures to. The wire takes -40 to -6
// LUFS; below -30 a loop is quieter than sample packs ship, so the knob stops there. Its default is
// the engine's.
inline constexpr float kLoudnessMinLufs = -30.0f;
inline constexpr float kLoudnessMaxLufs = -6.0f;
inline constexpr float kDefaultLoudnessLufs = (float) protocol::kDefaultLoudnessLufs;
static_assert (kLoudnessMinLufs >= protocol::kLoudnessMinLufs && kLoudnessMaxLufs <= protocol::kLoudnessMaxLufs,
               "the Loudness parameter's range must stay within what the engine takes");

/** The Key parameter's choices: Off, then protocol::key::kNames (the twelve major keys, then the
    twelve minor keys), shown as "C major" ... "B minor". Off sends no key, so the engine leaves the
    sample in the key it was made in. */
inline constexpr int kNumKeyChoices = 1 + (int) std::size (protocol::key::kNames);

/** What the host shows for Key choice `index`: "Off", "C major", "F# minor". */
juce::String keyLabel (int index);

juce::String keyWireName (int index);

/** Length choices, in the order of the Length parameter. */
struct LengthChoice
{
    const char* label;
    double beats; // > 0: a number of beats (quarter notes, as hosts count them); bars follow from the time signature
    double bars;  // > 0: a number of bars
};

inline constexpr LengthChoice kLengthChoices[] = {
    { "1 beat", 1.0, 0.0 },  { "2 beats", 2.0, 0.0 }, { "1 bar", 0.0, 1.0 },  { "2 bars", 0.0, 2.0 },
    { "4 bars", 0.0, 4.0 },  { "8 bars", 0.0, 8.0 },  { "16 bars", 0.0, 16.0 },
};
inline constexpr int kDefaultLengthIndex = 2;

/** Length choice `index` in bars of a meter whose bar is `quarterNotesPerBar` quarter notes
    (numerator * 4 / denominator). Requests send it with the meter as it is; the engine turns both
    into its own bars and holds them to its range (engine/host.py). */
double lengthInBars (int index, double quarterNotesPerBar) noexcept;

/** The Task parameter's choices, in its order, with the protocol's name of each. */
struct TaskChoice
{
    const char* label;
    const char* wireName;
};
inline constexpr TaskChoice kTaskChoices[] = {
    { "Continue", protocol::task::kContinue }, { "Replace", protocol::task::kReplace }, { "Transform", protocol::task::kTransform },
    { "Extract", protocol::task::kExtract },   { "Add a part", protocol::task::kAdd },
};
inline constexpr int kNumTaskChoices = (int) std::size (kTaskChoices);
inline constexpr int kNumTrackChoices = (int) std::size (protocol::track::kTrackNames);
// Bars a task reaches: the wire takes 0.25-64 (continue_bars; a replace within the sample).
inline constexpr float kTaskBarsMin = 0.25f;
inline constexpr float kTaskBarsMax = 64.0f;

/** The Task choice `index` as the protocol names it ("continue" ...). */
juce::String taskWireName (int index);
/** What the host shows for Track choice `index`: "Backing vocals" for backing_vocals. */
juce::String trackLabel (int index);

enum class SampleKind
{
    oneShot = 0,
    loop = 1
};

/** A momentary trigger: every press (off → on) counts once, whichever thread sets it.

    Hosts automate it like any toggle; the count is read by the network thread, so a press that
    is released within one audio block is still seen.
*/
class TriggerParameter final : public juce::AudioParameterBool
{
public:
    TriggerParameter (const juce::ParameterID& id, const juce::String& parameterName, bool automatable = true);

    std::uint32_t getPressCount() const noexcept { return presses.load (std::memory_order_acquire); }

private:
    void valueChanged (bool isOn) override;

    std::atomic<bool> wasOn { false };
    std::atomic<std::uint32_t> presses { 0 };
};

juce::AudioProcessorValueTreeState::ParameterLayout createParameterLayout();

/** Every parameter resolved once; the atomics are safe to read from any thread. */
struct ParameterPointers
{
    explicit ParameterPointers (juce::AudioProcessorValueTreeState& apvts);

    TriggerParameter& generate;
    std::atomic<float>& variation;
    std::atomic<float>& morph;
    std::atomic<float>& seed;
    std::atomic<float>& quality;
    std::atomic<float>& length;
    std::atomic<float>& kind;
    std::atomic<float>& pitch;
    std::atomic<float>& strength;
    std::atomic<float>& gainDb;
    std::atomic<float>& key;
    std::atomic<float>& loudnessLufs;
    TriggerParameter& runTask;
    std::atomic<float>& task;
    std::atomic<float>& continueBars;
    std::atomic<float>& replaceFrom;
    std::atomic<float>& replaceTo;
    std::atomic<float>& track;

    int getVariation() const noexcept { return juce::roundToInt (variation.load()); }
    int getSeed() const noexcept { return juce::roundToInt (seed.load()); }
    int getQualitySteps() const noexcept { return juce::roundToInt (quality.load()); }
    int getLengthIndex() const noexcept { return juce::roundToInt (length.load()); }
    SampleKind getKind() const noexcept { return kind.load() >= 0.5f ? SampleKind::loop : SampleKind::oneShot; }
    int getPitchSemitones() const noexcept { return juce::roundToInt (pitch.load()); }
    int getKeyIndex() const noexcept { return juce::roundToInt (key.load()); }
    int getTaskIndex() const noexcept { return juce::jlimit (0, kNumTaskChoices - 1, juce::roundToInt (task.load())); }
    int getTrackIndex() const noexcept { return juce::jlimit (0, kNumTrackChoices - 1, juce::roundToInt (track.load())); }
};

} // namespace loopbridge
