#include "Parameters.h"

namespace loopbridge
{
double lengthInBars (int index, double quarterNotesPerBar) noexcept
{
    const auto& choice = kLengthChoices[juce::jlimit (0, (int) std::size (kLengthChoices) - 1, index)];
    return choice.bars > 0.0 ? choice.bars : choice.beats / (quarterNotesPerBar > 0.0 ? quarterNotesPerBar : 4.0);
}

TriggerParameter::TriggerParameter (const juce::ParameterID& id, const juce::String& parameterName)
    : juce::AudioParameterBool (id, parameterName, false)
{
}

void TriggerParameter::valueChanged (bool isOn)
{
    // Called on whichever thread sets the value (the audio thread for host automation): only atomics here.
    const auto before = wasOn.exchange (isOn, std::memory_order_acq_rel);
    if (isOn && ! before)
        presses.fetch_add (1, std::memory_order_acq_rel);
}

juce::AudioProcessorValueTreeState::ParameterLayout createParameterLayout()
{
    using namespace juce;
    AudioProcessorValueTreeState::ParameterLayout layout;

    layout.add (std::make_unique<TriggerParameter> (ParamIDs::generate, "Generate"));
    layout.add (std::make_unique<AudioParameterInt> (ParamIDs::variation, "Variation", 0, kVariationMax, 0));
    layout.add (std::make_unique<AudioParameterFloat> (ParamIDs::morph, "Morph", NormalisableRange<float> (0.0f, 1.0f, 0.01f), 0.0f));
    layout.add (std::make_unique<AudioParameterInt> (ParamIDs::seed, "Seed", 0, kSeedMax, 0));
    layout.add (std::make_unique<AudioParameterInt> (ParamIDs::quality, "Quality", 0, kQualityMaxSteps, 0,
                                                     AudioParameterIntAttributes()
                                                         .withLabel ("steps")
                                                         .withStringFromValueFunction ([] (int steps, int) {
                                                             return steps == 0 ? String ("auto") : String (steps); // auto: the model's default
                                                         })));
    StringArray lengthLabels;
    for (const auto& choice : kLengthChoices)
        lengthLabels.add (choice.label);
    layout.add (std::make_unique<AudioParameterChoice> (ParamIDs::length, "Length", lengthLabels, kDefaultLengthIndex));
    layout.add (std::make_unique<AudioParameterChoice> (ParamIDs::kind, "Kind", StringArray { "One-shot", "Loop" }, 0));
    layout.add (std::make_unique<AudioParameterInt> (ParamIDs::pitch, "Pitch", -kPitchRangeSemitones, kPitchRangeSemitones, 0,
                                                     AudioParameterIntAttributes().withLabel ("st")));
    layout.add (std::make_unique<AudioParameterFloat> (ParamIDs::strength, "Audio-prompt strength",
                                                       NormalisableRange<float> (0.0f, 1.0f, 0.01f), 0.5f));
    layout.add (std::make_unique<AudioParameterFloat> (ParamIDs::gain, "Gain", NormalisableRange<float> (kGainMinDb, kGainMaxDb, 0.1f), 0.0f,
                                                       AudioParameterFloatAttributes().withLabel ("dB")));
    return layout;
}

namespace
{
std::atomic<float>& raw (juce::AudioProcessorValueTreeState& apvts, const juce::ParameterID& id)
{
    auto* value = apvts.getRawParameterValue (id.getParamID());
    jassert (value != nullptr);
    return *value;
}
} // namespace

ParameterPointers::ParameterPointers (juce::AudioProcessorValueTreeState& apvts)
    : generate (*dynamic_cast<TriggerParameter*> (apvts.getParameter (ParamIDs::generate.getParamID()))),
      variation (raw (apvts, ParamIDs::variation)),
      morph (raw (apvts, ParamIDs::morph)),
      seed (raw (apvts, ParamIDs::seed)),
      quality (raw (apvts, ParamIDs::quality)),
      length (raw (apvts, ParamIDs::length)),
      kind (raw (apvts, ParamIDs::kind)),
      pitch (raw (apvts, ParamIDs::pitch)),
      strength (raw (apvts, ParamIDs::strength)),
      gainDb (raw (apvts, ParamIDs::gain))
{
}

} // namespace loopbridge
