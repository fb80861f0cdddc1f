// The saved state: the parameters (APVTS XML), the session (prompts, model, endpoint, audio
// prompt) and the current sample's WAV bytes, so a reopened project plays what it played.
#pragma once

#include "Parameters.h"
#include "Sample.h"
#include "Session.h"

#include <juce_audio_processors/juce_audio_processors.h>

#include <memory>

namespace loopbridge::state
{
inline constexpr int kStateVersion = 1;

std::unique_ptr<juce::XmlElement> toXml (juce::AudioProcessorValueTreeState& apvts, const Session& session, const Sample* sample);

struct Restored
{
    Session session;
    std::shared_ptr<const Sample> sample;
    juce::String sampleError; // why a saved sample could not be restored
};

/** Restores the parameters into `apvts` and fills `out`; false for XML that is not ours. */
bool fromXml (const juce::XmlElement& xml, juce::AudioProcessorValueTreeState& apvts, Restored& out);
} // namespace loopbridge::state
