// The editor: prompts, model, knobs, engine status, the current sample's waveform, and a drag
// area that drags the conformed WAV into the DAW. It polls the processor on a timer.
#pragma once

#include "PluginProcessor.h"

#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

namespace loopbridge
{
/** The current sample's waveform; dragging it drags the WAV file out to the host. */
class WaveformView final : public juce::Component
{
public:
    explicit WaveformView (LoopBridgeProcessor& p) : processor (p) {}

    void setSample (std::shared_ptr<const Sample> newSample, bool isPlaying);
    void paint (juce::Graphics&) override;
    void mouseDrag (const juce::MouseEvent&) override;
    void mouseUp (const juce::MouseEvent&) override { dragStarted = false; }

private:
    LoopBridgeProcessor& processor;
    std::shared_ptr<const Sample> sample;
    bool playing = false;
    bool dragStarted = false;
};

class LoopBridgeEditor final : public juce::AudioProcessorEditor, public juce::FileDragAndDropTarget, private juce::Timer
{
public:
    explicit LoopBridgeEditor (LoopBridgeProcessor&);
    ~LoopBridgeEditor() override;

    void paint (juce::Graphics&) override;
    void resized() override;

    bool isInterestedInFileDrag (const juce::StringArray& files) override;
    void filesDropped (const juce::StringArray& files, int x, int y) override;

    /** Refreshes everything from the processor now (the timer does it 15 times a second). */
    void refresh();

private:
    void timerCallback() override { refresh(); }

    struct Knob
    {
        juce::Slider slider { juce::Slider::RotaryHorizontalVerticalDrag, juce::Slider::TextBoxBelow };
        juce::Label label;
        std::unique_ptr<juce::AudioProcessorValueTreeState::SliderAttachment> attachment;
    };

    void addKnob (Knob& knob, const juce::ParameterID& id, const juce::String& name);

    LoopBridgeProcessor& processor;
    juce::LookAndFeel_V4 lookAndFeel { juce::LookAndFeel_V4::getMidnightColourScheme() };

    juce::Label title, statusLabel, promptLabel, morphPromptLabel, modelLabel, endpointLabel, audioPromptLabel, dragHint;
    juce::TextEditor promptEditor, morphPromptEditor, endpointEditor;
    juce::ComboBox modelBox, lengthBox, kindBox, keyBox;
    juce::Label lengthLabel, kindLabel, keyLabel;
    std::unique_ptr<juce::AudioProcessorValueTreeState::ComboBoxAttachment> lengthAttachment, kindAttachment, keyAttachment;
    juce::TextButton generateButton { "Generate" };
    juce::TextButton clearAudioPromptButton { "x" };
    juce::TextButton dropModeButton; // what a dropped file is for: "Vary it" (audio prompt) or "Fit to song"
    Knob variation, morph, seed, quality, pitch, strength, gain, loudness;
    // Actions on the sample that plays, shown when the chosen model offers them (its capabilities' tasks)
    juce::Label taskLabel;
    juce::OwnedArray<juce::TextButton> taskButtons; // one per kTaskChoices entry, in its order
    juce::Slider continueBarsSlider, replaceFromSlider, replaceToSlider;
    juce::Label continueBarsLabel, replaceLabel;
    juce::ComboBox trackBox;
    std::unique_ptr<juce::AudioProcessorValueTreeState::SliderAttachment> continueBarsAttachment, replaceFromAttachment, replaceToAttachment;
    std::unique_ptr<juce::AudioProcessorValueTreeState::ComboBoxAttachment> trackAttachment;
    WaveformView waveform { processor };
    juce::StringArray shownModels;
    juce::String audioPromptMessage;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (LoopBridgeEditor)
};

} // namespace loopbridge
