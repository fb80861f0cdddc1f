#include "PluginEditor.h"

namespace loopbridge
{
namespace
{
const auto kAccent = juce::Colour (0xff4fc3f7);
const auto kBackground = juce::Colour (0xff15181d);
const auto kPanel = juce::Colour (0xff1f242b);
} // namespace

// ---- waveform ------------------------------------------------------------------------------

void WaveformView::setSample (std::shared_ptr<const Sample> newSample, bool isPlaying)
{
    if (newSample == sample && isPlaying == playing)
        return;
    sample = std::move (newSample);
    playing = isPlaying;
    repaint();
}

void WaveformView::paint (juce::Graphics& g)
{
    const auto bounds = getLocalBounds().toFloat();
    g.setColour (kPanel);
    g.fillRoundedRectangle (bounds, 6.0f);

    if (sample == nullptr || sample->peaks.empty())
    {
        g.setColour (juce::Colours::grey);
        g.setFont (15.0f);
        g.drawText ("No sample yet: type a prompt and press Generate", getLocalBounds(), juce::Justification::centred);
        return;
    }

    const auto area = bounds.reduced (8.0f, 18.0f);
    const auto mid = area.getCentreY();
    const auto halfHeight = area.getHeight() * 0.5f;
    const auto bins = (int) sample->peaks.size() / 2;
    const auto width = area.getWidth() / (float) bins;
    g.setColour (playing ? kAccent : kAccent.withAlpha (0.6f));
    for (int i = 0; i < bins; ++i)
    {
        const auto low = juce::jlimit (-1.0f, 1.0f, sample->peaks[(size_t) i * 2]);
        const auto high = juce::jlimit (-1.0f, 1.0f, sample->peaks[(size_t) i * 2 + 1]);
        const auto x = area.getX() + (float) i * width;
        g.fillRect (x, mid - high * halfHeight, juce::jmax (1.0f, width), juce::jmax (1.0f, (high - low) * halfHeight));
    }
    if (sample->isLoop && sample->getNumFrames() > 0)
    {
        g.setColour (juce::Colours::white.withAlpha (0.35f));
        const auto frames = (float) sample->getNumFrames();
        for (const auto frame : { sample->loopStart, sample->loopEnd })
        {
            const auto x = area.getX() + area.getWidth() * (float) frame / frames;
            g.drawVerticalLine (juce::roundToInt (x), area.getY(), area.getBottom());
        }
    }

    g.setColour (juce::Colours::white.withAlpha (0.8f));
    g.setFont (13.0f);
    juce::String caption = sample->isLoop ? "Loop" : "One-shot";
    if (sample->variation >= 0)
        caption << "  ·  variation " << sample->variation;
    if (sample->tempoBpm > 0)
        caption << "  ·  " << juce::String (sample->tempoBpm, 1) << " BPM";
    if (sample->beats > 0)
        caption << "  ·  " << juce::String (sample->beats, 2) << " beats";
    if (sample->musicalKey.isNotEmpty())
        caption << "  ·  " << sample->musicalKey;
    else if (sample->saysNoKey)
        caption << "  ·  no key";
    caption << "  ·  " << juce::String (sample->getDurationSeconds(), 2) << " s  ·  " << juce::roundToInt (sample->sampleRate) << " Hz";
    g.drawText (caption, getLocalBounds().reduced (10, 2).removeFromTop (16), juce::Justification::centredLeft);
    g.drawText ("drag to your DAW", getLocalBounds().reduced (10, 2).removeFromBottom (16), juce::Justification::centredRight);
}

void WaveformView::mouseDrag (const juce::MouseEvent& event)
{
    if (dragStarted || event.getDistanceFromDragStart() < 6)
        return;
    const auto file = processor.writeCurrentSampleForDrag();
    if (file == juce::File())
        return;
    dragStarted = true;
    // A file drag the host accepts like one from the file browser: it gets the conformed WAV.
    juce::DragAndDropContainer::performExternalDragDropOfFiles ({ file.getFullPathName() }, false, this);
}

// ---- editor --------------------------------------------------------------------------------

LoopBridgeEditor::LoopBridgeEditor (LoopBridgeProcessor& p) : AudioProcessorEditor (&p), processor (p)
{
    setLookAndFeel (&lookAndFeel);
    auto& apvts = processor.getValueTreeState();
    const auto session = processor.getSession();

    auto setupLabel = [this] (juce::Label& label, const juce::String& text) {
        label.setText (text, juce::dontSendNotification);
        label.setFont (juce::Font (13.0f));
        label.setColour (juce::Label::textColourId, juce::Colours::lightgrey);
        addAndMakeVisible (label);
    };

    title.setText ("loopbridge", juce::dontSendNotification);
    title.setFont (juce::Font (22.0f, juce::Font::bold));
    title.setColour (juce::Label::textColourId, kAccent);
    addAndMakeVisible (title);

    statusLabel.setFont (juce::Font (13.0f));
    statusLabel.setJustificationType (juce::Justification::centredRight);
    addAndMakeVisible (statusLabel);

    setupLabel (promptLabel, "Prompt (A)");
    setupLabel (morphPromptLabel, "Morph to (B)");
    setupLabel (modelLabel, "Model");
    setupLabel (endpointLabel, "Engine");
    setupLabel (lengthLabel, "Length");
    setupLabel (kindLabel, "Kind");
    setupLabel (audioPromptLabel, "");
    setupLabel (dragHint, "");

    auto setupText = [this] (juce::TextEditor& editor, const juce::String& text, const juce::String& hint, std::function<void (const juce::String&)> apply) {
        editor.setText (text, false);
        editor.setTextToShowWhenEmpty (hint, juce::Colours::grey);
        editor.onTextChange = [&editor, apply] { apply (editor.getText()); };
        addAndMakeVisible (editor);
    };
    setupText (promptEditor, session.prompt, "e.g. punchy analog kick", [this] (const juce::String& t) { processor.setPrompt (t); });
    setupText (morphPromptEditor, session.morphPrompt, "second prompt for Morph", [this] (const juce::String& t) { processor.setMorphPrompt (t); });
    setupText (endpointEditor, session.endpoint, LoopBridgeProcessor::defaultEndpoint(), [] (const juce::String&) {});
    endpointEditor.onReturnKey = [this] { processor.setEndpoint (endpointEditor.getText()); };
    endpointEditor.onFocusLost = [this] { processor.setEndpoint (endpointEditor.getText()); };

    modelBox.setEditableText (true);
    modelBox.setText (session.model, juce::dontSendNotification);
    modelBox.onChange = [this] { processor.setModel (modelBox.getText()); };
    addAndMakeVisible (modelBox);

    for (const auto& choice : kLengthChoices)
        lengthBox.addItem (choice.label, lengthBox.getNumItems() + 1);
    kindBox.addItemList ({ "One-shot", "Loop" }, 1);
    addAndMakeVisible (lengthBox);
    addAndMakeVisible (kindBox);
    lengthAttachment = std::make_unique<juce::AudioProcessorValueTreeState::ComboBoxAttachment> (apvts, ParamIDs::length.getParamID(), lengthBox);
    kindAttachment = std::make_unique<juce::AudioProcessorValueTreeState::ComboBoxAttachment> (apvts, ParamIDs::kind.getParamID(), kindBox);
    setupLabel (keyLabel, "Key");
    for (int index = 0; index < kNumKeyChoices; ++index)
        keyBox.addItem (loopbridge::keyLabel (index), index + 1);
    addAndMakeVisible (keyBox);
    keyAttachment = std::make_unique<juce::AudioProcessorValueTreeState::ComboBoxAttachment> (apvts, ParamIDs::key.getParamID(), keyBox);

    addKnob (variation, ParamIDs::variation, "Variation");
    addKnob (morph, ParamIDs::morph, "Morph A-B");
    addKnob (seed, ParamIDs::seed, "Seed");
    addKnob (quality, ParamIDs::quality, "Quality");
    addKnob (pitch, ParamIDs::pitch, "Pitch");
    addKnob (strength, ParamIDs::strength, "Prompt strength");
    addKnob (gain, ParamIDs::gain, "Gain");
    addKnob (loudness, ParamIDs::loudness, "Loudness");

    generateButton.setColour (juce::TextButton::buttonColourId, kAccent.darker (0.4f));
    generateButton.onClick = [this] {
        // A press is an off → on edge of the trigger parameter, announced to the host like a knob move.
        auto* param = processor.getValueTreeState().getParameter (ParamIDs::generate.getParamID());
        param->beginChangeGesture();
        param->setValueNotifyingHost (1.0f);
        param->setValueNotifyingHost (0.0f);
        param->endChangeGesture();
    };
    addAndMakeVisible (generateButton);

    clearAudioPromptButton.setTooltip ("Forget the audio prompt");
    clearAudioPromptButton.onClick = [this] {
        processor.clearAudioPrompt();
        audioPromptMessage.clear();
        refresh();
    };
    addAndMakeVisible (clearAudioPromptButton);

    dropModeButton.setClickingTogglesState (true);
    dropModeButton.setToggleState (processor.getDropFits(), juce::dontSendNotification);
    dropModeButton.setTooltip ("What a dropped file is for: Vary it (an audio prompt for Generate) or Fit to song "
                               "(the file itself, fitted to the host's tempo, meter and Length)");
    dropModeButton.onClick = [this] {
        processor.setDropFits (dropModeButton.getToggleState());
        audioPromptMessage.clear();
        refresh();
    };
    addAndMakeVisible (dropModeButton);

    setupLabel (taskLabel, "On the sample");
    setupLabel (continueBarsLabel, "bars");
    setupLabel (replaceLabel, "bars, to");
    const juce::StringArray tooltips {
        "Continue: the sample, then Continue bars more of it (prompt: what comes next)",
        "Replace: make bars From to To of the sample anew (prompt: what goes there); the rest stays as it is",
        "Transform: the sample remade after the prompt; Prompt strength says how far",
        "Extract: pull the chosen track (drums, bass, vocals...) out of the sample",
        "Add a part: a new track (the chosen one, and the prompt) that fits the sample, alone",
    };
    for (int index = 0; index < kNumTaskChoices; ++index)
    {
        auto* button = taskButtons.add (new juce::TextButton (kTaskChoices[index].label));
        button->setTooltip (tooltips[index]);
        button->onClick = [this, index] { processor.runTask (index); };
        addChildComponent (button);
    }
    for (auto* slider : { &continueBarsSlider, &replaceFromSlider, &replaceToSlider })
    {
        slider->setSliderStyle (juce::Slider::LinearBar);
        slider->setColour (juce::Slider::trackColourId, kAccent.withAlpha (0.4f));
        addChildComponent (slider);
    }
    continueBarsAttachment = std::make_unique<juce::AudioProcessorValueTreeState::SliderAttachment> (apvts, ParamIDs::continueBars.getParamID(), continueBarsSlider);
    replaceFromAttachment = std::make_unique<juce::AudioProcessorValueTreeState::SliderAttachment> (apvts, ParamIDs::replaceFrom.getParamID(), replaceFromSlider);
    replaceToAttachment = std::make_unique<juce::AudioProcessorValueTreeState::SliderAttachment> (apvts, ParamIDs::replaceTo.getParamID(), replaceToSlider);
    for (int index = 0; index < kNumTrackChoices; ++index)
        trackBox.addItem (trackLabel (index), index + 1);
    trackBox.setTooltip ("The track Extract pulls out and Add a part makes");
    addChildComponent (trackBox);
    trackAttachment = std::make_unique<juce::AudioProcessorValueTreeState::ComboBoxAttachment> (apvts, ParamIDs::track.getParamID(), trackBox);

    addAndMakeVisible (waveform);

    setSize (820, 506);
    refresh();
    startTimerHz (15);
}

LoopBridgeEditor::~LoopBridgeEditor()
{
    stopTimer();
    setLookAndFeel (nullptr);
}

void LoopBridgeEditor::addKnob (Knob& knob, const juce::ParameterID& id, const juce::String& name)
{
    knob.slider.setTextBoxStyle (juce::Slider::TextBoxBelow, false, 80, 18);
    knob.slider.setColour (juce::Slider::rotarySliderFillColourId, kAccent);
    knob.label.setText (name, juce::dontSendNotification);
    knob.label.setJustificationType (juce::Justification::centred);
    knob.label.setFont (juce::Font (13.0f));
    addAndMakeVisible (knob.slider);
    addAndMakeVisible (knob.label);
    knob.attachment = std::make_unique<juce::AudioProcessorValueTreeState::SliderAttachment> (processor.getValueTreeState(), id.getParamID(), knob.slider);
}

void LoopBridgeEditor::paint (juce::Graphics& g)
{
    g.fillAll (kBackground);
    g.setColour (kPanel);
    g.fillRoundedRectangle (getLocalBounds().reduced (8).withTrimmedTop (44).removeFromTop (124).toFloat(), 6.0f);
}

void LoopBridgeEditor::resized()
{
    auto area = getLocalBounds().reduced (12);
    auto top = area.removeFromTop (32);
    title.setBounds (top.removeFromLeft (160));
    statusLabel.setBounds (top);
    area.removeFromTop (10);

    auto fields = area.removeFromTop (116).reduced (6, 4);
    auto row = [&fields] { return fields.removeFromTop (24); };
    auto place = [] (juce::Rectangle<int> r, juce::Label& label, juce::Component& editor) {
        label.setBounds (r.removeFromLeft (96));
        editor.setBounds (r);
    };
    place (row(), promptLabel, promptEditor);
    fields.removeFromTop (4);
    place (row(), morphPromptLabel, morphPromptEditor);
    fields.removeFromTop (4);
    auto modelRow = row();
    modelLabel.setBounds (modelRow.removeFromLeft (96));
    modelBox.setBounds (modelRow.removeFromLeft (200));
    modelRow.removeFromLeft (16);
    endpointLabel.setBounds (modelRow.removeFromLeft (56));
    endpointEditor.setBounds (modelRow);
    fields.removeFromTop (4);
    auto promptRow = row();
    dropModeButton.setBounds (promptRow.removeFromLeft (96));
    promptRow.removeFromLeft (8);
    clearAudioPromptButton.setBounds (promptRow.removeFromRight (24));
    audioPromptLabel.setBounds (promptRow);

    area.removeFromTop (8);
    auto controls = area.removeFromTop (118);
    auto side = controls.removeFromRight (150);
    generateButton.setBounds (side.removeFromTop (44).reduced (4));
    lengthLabel.setBounds (side.removeFromTop (16));
    auto combos = side.removeFromTop (26);
    lengthBox.setBounds (combos.removeFromLeft (72).reduced (2, 0));
    kindBox.setBounds (combos.reduced (2, 0));
    kindLabel.setBounds (lengthLabel.getBounds().withX (kindBox.getX()));
    lengthLabel.setBounds (lengthLabel.getBounds().withWidth (72));
    side.removeFromTop (4);
    auto keyRow = side.removeFromTop (26);
    keyLabel.setBounds (keyRow.removeFromLeft (36));
    keyBox.setBounds (keyRow.reduced (2, 0));

    Knob* knobs[] = { &variation, &morph, &seed, &quality, &pitch, &strength, &gain, &loudness };
    const auto knobWidth = controls.getWidth() / (int) std::size (knobs);
    for (auto* knob : knobs)
    {
        auto column = controls.removeFromLeft (knobWidth);
        knob->label.setBounds (column.removeFromTop (16));
        knob->slider.setBounds (column);
    }

    area.removeFromTop (8);
    auto tasks = area.removeFromTop (28);
    taskLabel.setBounds (tasks.removeFromLeft (96));
    for (int index = 0; index < taskButtons.size(); ++index)
    {
        auto* button = taskButtons[index];
        button->setBounds (tasks.removeFromLeft (index == 4 ? 84 : 76).reduced (2, 1));
        if (index == 0)
        {
            continueBarsSlider.setBounds (tasks.removeFromLeft (52).reduced (2, 3));
            continueBarsLabel.setBounds (tasks.removeFromLeft (32));
        }
        else if (index == 1)
        {
            replaceFromSlider.setBounds (tasks.removeFromLeft (52).reduced (2, 3));
            replaceLabel.setBounds (tasks.removeFromLeft (52));
            replaceToSlider.setBounds (tasks.removeFromLeft (52).reduced (2, 3));
        }
    }
    trackBox.setBounds (tasks.reduced (2, 2));

    area.removeFromTop (8);
    waveform.setBounds (area);
}

void LoopBridgeEditor::refresh()
{
    const auto status = processor.getEngineStatus();
    const auto session = processor.getSession();

    juce::String text;
    juce::Colour colour = juce::Colours::lightgrey;
    switch (status.connection)
    {
        case EngineStatus::Connection::connected:
            text << "Engine connected";
            colour = juce::Colour (0xff81c784);
            break;
        case EngineStatus::Connection::connecting:
            text << "Connecting to " << status.endpoint << "...";
            break;
        case EngineStatus::Connection::notRunning:
            text << "Engine not running at " << status.endpoint << " ("
                 << (status.retryInSeconds >= 0.5 ? "retry in " + juce::String (juce::roundToInt (status.retryInSeconds)) + " s" : juce::String ("retrying"))
                 << "); playing the last sample";
            colour = juce::Colour (0xffffb74d);
            break;
    }
    text << "  |  model " << session.model;
    if (status.progress >= 0.0)
        text << "  |  " << status.activity;
    else if (status.activity.isNotEmpty())
        text << "  |  " << status.activity;
    if (! status.notes.isEmpty())
        text << "  |  " << status.notes.joinIntoString ("; "); // the engine's: what it could not make exactly as asked
    if (status.lastError.isNotEmpty())
    {
        text << "  |  " << status.lastError;
        colour = juce::Colour (0xffe57373);
    }
    statusLabel.setText (text, juce::dontSendNotification);
    statusLabel.setColour (juce::Label::textColourId, colour);
    statusLabel.setTooltip (text);

    if (status.models != shownModels)
    {
        shownModels = status.models;
        const auto current = modelBox.getText();
        modelBox.clear (juce::dontSendNotification);
        modelBox.addItemList (shownModels, 1);
        modelBox.setText (current, juce::dontSendNotification);
    }

    const bool fits = processor.getDropFits();
    dropModeButton.setButtonText (fits ? "Fit to song" : "Vary it");
    dropModeButton.setToggleState (fits, juce::dontSendNotification);
    const auto prompt = fits ? juce::String ("Drop an audio file here to fit it to the song (its tempo, meter and Length)")
                        : session.audioPromptName.isNotEmpty() ? "Audio prompt: " + session.audioPromptName + " (Prompt strength knob)"
                                                               : juce::String ("Drop a WAV here to vary it (audio prompt)");
    audioPromptLabel.setText (audioPromptMessage.isNotEmpty() ? audioPromptMessage : prompt, juce::dontSendNotification);
    clearAudioPromptButton.setVisible (session.audioPromptName.isNotEmpty());

    // The task buttons the chosen model offers (its capabilities' tasks), on a sample that is there.
    const auto offered = processor.currentModelTasks();
    const auto latest = processor.getLatestSample();
    bool anyTask = false, trackTask = false;
    for (int index = 0; index < taskButtons.size(); ++index)
    {
        const auto wire = taskWireName (index);
        const bool shown = offered.tasks.contains (wire);
        taskButtons[index]->setVisible (shown);
        taskButtons[index]->setEnabled (latest != nullptr);
        anyTask = anyTask || shown;
        trackTask = trackTask || (shown && (wire == protocol::task::kExtract || wire == protocol::task::kAdd));
    }
    continueBarsSlider.setVisible (offered.tasks.contains (protocol::task::kContinue));
    continueBarsLabel.setVisible (continueBarsSlider.isVisible());
    replaceFromSlider.setVisible (offered.tasks.contains (protocol::task::kReplace));
    replaceToSlider.setVisible (replaceFromSlider.isVisible());
    replaceLabel.setVisible (replaceFromSlider.isVisible());
    trackBox.setVisible (trackTask);
    for (int index = 0; index < kNumTrackChoices; ++index)
        trackBox.setItemEnabled (index + 1, offered.tracks.contains (protocol::track::kTrackNames[index]));
    taskLabel.setText (anyTask ? "On the sample" : "", juce::dontSendNotification);

    waveform.setSample (latest, latest != nullptr && processor.getPlayingSampleIdentity() == latest.get());
}

bool LoopBridgeEditor::isInterestedInFileDrag (const juce::StringArray& files)
{
    if (files.size() != 1)
        return false;
    if (! processor.getDropFits())
        return files[0].endsWithIgnoreCase (".wav"); // an audio prompt is read here, as a WAV
    // a file to fit goes to the engine as it is: whatever it reads
    for (const auto* suffix : { ".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3" })
        if (files[0].endsWithIgnoreCase (suffix))
            return true;
    return false;
}

void LoopBridgeEditor::filesDropped (const juce::StringArray& files, int, int)
{
    const juce::File file (files[0]);
    if (processor.getDropFits())
    {
        const auto error = processor.fitFile (file);
        audioPromptMessage = error.isNotEmpty() ? error : "Fitting " + file.getFileName() + " to the song...";
    }
    else
        audioPromptMessage = processor.setAudioPromptFile (file);
    refresh();
}

} // namespace loopbridge
