#include "Parameters.h"

namespace loopbridge
{
double lengthInBars (int index, double quarterNotesPerBar) noexcept
{
    const auto& choice = kLengthChoices[juce::jlimit (0, (int) std::size (kLengthChoices) - 1, index)];
    return choice.bars > 0.0 ? choice.bars : choice.beats / (quarterNotesPerBar > 0.0 ? quarterNotesPerBar : 4.0);
}

juce::String keyWireName (int index)
{
    return index > 0 && index < kNumKeyChoices ? juce::String (protocol::key::kNames[index - 1]) : juce::String();
}

juce::String keyLabel (int index)
{
    const auto name = keyWireName (index);
    if (name.isEmpty())
        return "Off";
    return name.endsWith ("m") ? name.dropLastCharacters (1) + " minor" : name + " major";
}

juce::String taskWireName (int index) { return kTaskChoices[juce::jlimit (0, kNumTaskChoices - 1, index)].wireName; }

juce::String trackLabel (int index)
{
    const auto name = juce::String (protocol::track::kTrackNames[juce::jlimit (0, kNumTrackChoices - 1, index)]).replaceCharacter ('_', ' ');
    return name == "fx" ? juce::String ("FX") : name.substring (0, 1).toUpperCase() + name.substring (1);
}

TriggerParameter::TriggerParameter (const juce::ParameterID& id, const juce::String& parameterName, bool automatable)
    : juce::AudioParameterBool (id, parameterName, false, juce::AudioParameterBoolAttributes().withAutomatable (automatable))
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
    // Grouped for hosts that show parameters in folders (VST3 units). The order within and across
    // groups is the order of the parameters' indices, which hosts that address parameters by index
    // (Ardour's Lua, automation lanes) have recorded: it stays as it was.
    auto generating = std::make_unique<AudioProcessorParameterGroup> ("generate", "Generate", " | ");
    generating->addChild (std::make_unique<TriggerParameter> (ParamIDs::generate, "Generate"));
    generating->addChild (std::make_unique<AudioParameterInt> (ParamIDs::variation, "Variation", 0, kVariationMax, 0));
    generating->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::morph, "Morph", NormalisableRange<float> (0.0f, 1.0f, 0.01f), 0.0f));
    generating->addChild (std::make_unique<AudioParameterInt> (ParamIDs::seed, "Seed", 0, kSeedMax, 0));
    generating->addChild (std::make_unique<AudioParameterInt> (ParamIDs::quality, "Quality", 0, kQualityMaxSteps, 0,
                                                               AudioParameterIntAttributes()
                                                                   .withLabel ("steps")
                                                                   .withStringFromValueFunction ([] (int steps, int) {
                                                                       return steps == 0 ? String ("auto") : String (steps); // auto: the model's default
                                                                   })));

    auto sample = std::make_unique<AudioProcessorParameterGroup> ("sample", "Sample", " | ");
    StringArray lengthLabels;
    for (const auto& choice : kLengthChoices)
        lengthLabels.add (choice.label);
    sample->addChild (std::make_unique<AudioParameterChoice> (ParamIDs::length, "Length", lengthLabels, kDefaultLengthIndex));
    sample->addChild (std::make_unique<AudioParameterChoice> (ParamIDs::kind, "Kind", StringArray { "One-shot", "Loop" }, 0));
    sample->addChild (std::make_unique<AudioParameterInt> (ParamIDs::pitch, "Pitch", -kPitchRangeSemitones, kPitchRangeSemitones, 0,
                                                           AudioParameterIntAttributes().withLabel ("st")));

    auto audioPrompt = std::make_unique<AudioProcessorParameterGroup> ("audio_prompt", "Audio prompt", " | ");
    audioPrompt->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::strength, "Audio-prompt strength",
                                                                  NormalisableRange<float> (0.0f, 1.0f, 0.01f), 0.5f));

    auto output = std::make_unique<AudioProcessorParameterGroup> ("output", "Output", " | ");
    output->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::gain, "Gain", NormalisableRange<float> (kGainMinDb, kGainMaxDb, 0.1f), 0.0f,
                                                             AudioParameterFloatAttributes().withLabel ("dB")));

    // Added after the others, so the indices hosts have recorded stay where they were.
    auto song = std::make_unique<AudioProcessorParameterGroup> ("song", "Song", " | ");
    StringArray keyLabels;
    for (int index = 0; index < kNumKeyChoices; ++index)
        keyLabels.add (keyLabel (index));
    song->addChild (std::make_unique<AudioParameterChoice> (ParamIDs::key, "Key", keyLabels, 0));
    song->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::loudness, "Loudness",
                                                           NormalisableRange<float> (kLoudnessMinLufs, kLoudnessMaxLufs, 0.5f),
                                                           kDefaultLoudnessLufs, AudioParameterFloatAttributes().withLabel ("LUFS")));

    // The task buttons' settings: saved with the project, never automated (they act on a click).
    auto tasks = std::make_unique<AudioProcessorParameterGroup> ("task", "Task", " | ");
    StringArray taskLabels, trackLabels;
    for (const auto& choice : kTaskChoices)
        taskLabels.add (choice.label);
    for (int index = 0; index < kNumTrackChoices; ++index)
        trackLabels.add (trackLabel (index));
    const auto barsAttributes = AudioParameterFloatAttributes().withAutomatable (false);
    tasks->addChild (std::make_unique<TriggerParameter> (ParamIDs::runTask, "Run task", false));
    tasks->addChild (std::make_unique<AudioParameterChoice> (ParamIDs::task, "Task", taskLabels, 0,
                                                            AudioParameterChoiceAttributes().withAutomatable (false)));
    tasks->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::continueBars, "Continue bars",
                                                           NormalisableRange<float> (kTaskBarsMin, kTaskBarsMax, 0.25f), 1.0f, barsAttributes));
    tasks->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::replaceFrom, "Replace from bar",
                                                           NormalisableRange<float> (0.0f, kTaskBarsMax - kTaskBarsMin, 0.25f), 0.0f, barsAttributes));
    tasks->addChild (std::make_unique<AudioParameterFloat> (ParamIDs::replaceTo, "Replace to bar",
                                                           NormalisableRange<float> (kTaskBarsMin, kTaskBarsMax, 0.25f), 1.0f, barsAttributes));
    tasks->addChild (std::make_unique<AudioParameterChoice> (ParamIDs::track, "Track", trackLabels, 2, // drums
                                                            AudioParameterChoiceAttributes().withAutomatable (false)));

    AudioProcessorValueTreeState::ParameterLayout layout;
    layout.add (std::move (generating), std::move (sample), std::move (audioPrompt), std::move (output), std::move (song), std::move (tasks));
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
      gainDb (raw (apvts, ParamIDs::gain)),
      key (raw (apvts, ParamIDs::key)),
      loudnessLufs (raw (apvts, ParamIDs::loudness)),
      runTask (*dynamic_cast<TriggerParameter*> (apvts.getParameter (ParamIDs::runTask.getParamID()))),
      task (raw (apvts, ParamIDs::task)),
      continueBars (raw (apvts, ParamIDs::continueBars)),
      replaceFrom (raw (apvts, ParamIDs::replaceFrom)),
      replaceTo (raw (apvts, ParamIDs::replaceTo)),
      track (raw (apvts, ParamIDs::track))
{
}

} // namespace loopbridge
