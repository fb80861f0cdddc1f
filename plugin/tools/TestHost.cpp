// A minimal VST3 host for the host tests: it plays the song the test describes on its play head,
// which pedalboard cannot (its play head always says 120 BPM in 4/4).
//
//   loopbridge-test-host PLUGIN.vst3 STATE_IN STATE_OUT [--tempo BPM] [--meter N/D] [--rate HZ]
//                        [--block FRAMES] [--timeout-s S]
//
// It loads the built bundle through JUCE's VST3 hosting (as pedalboard does), restores STATE_IN
// (a host's saved state, e.g. pedalboard's raw_state: the session's prompt, model and endpoint, the
// knobs), runs the transport at the tempo and meter given, presses Generate and renders until the
// plugin holds a new sample from the engine, then writes the host's state to STATE_OUT and prints
// one JSON line ({"sample_key": ..., "blocks": ..., "seconds": ...}). Exit status 0: a new sample
// arrived; 1: it did not within the timeout (STATE_OUT is still written) or the plugin did not
// load; 2: bad arguments.
#include <juce_audio_processors/juce_audio_processors.h>

#include <cstdio>

namespace
{
/** The song: a steady tempo in one meter, playing from the start; the test's block count moves it. */
struct SongPlayHead final : public juce::AudioPlayHead
{
    double bpm = 120.0, sampleRate = 48000.0;
    int numerator = 4, denominator = 4;
    juce::int64 timeInSamples = 0;

    juce::Optional<PositionInfo> getPosition() const override
    {
        PositionInfo info;
        const auto ppq = (double) timeInSamples / sampleRate * bpm / 60.0;
        const auto quartersPerBar = numerator * 4.0 / denominator;
        info.setBpm (bpm);
        info.setTimeSignature (TimeSignature { numerator, denominator });
        info.setTimeInSamples (timeInSamples);
        info.setTimeInSeconds ((double) timeInSamples / sampleRate);
        info.setPpqPosition (ppq);
        info.setPpqPositionOfLastBarStart (std::floor (ppq / quartersPerBar) * quartersPerBar);
        info.setIsPlaying (true);
        return info;
    }
};

/** The key of the sample the plugin's own state (inside a VST3 host's state) holds; empty if none. */
juce::String sampleKeyIn (const juce::MemoryBlock& hostState)
{
    const auto host = juce::AudioProcessor::getXmlFromBinary (hostState.getData(), (int) hostState.getSize());
    const auto* component = host != nullptr ? host->getChildByName ("IComponent") : nullptr;
    if (component == nullptr)
        return {};
    juce::MemoryBlock pluginState;
    if (! pluginState.fromBase64Encoding (component->getAllSubText().trim()))
        return {};
    const auto plugin = juce::AudioProcessor::getXmlFromBinary (pluginState.getData(), (int) pluginState.getSize());
    const auto* sample = plugin != nullptr ? plugin->getChildByName ("SAMPLE") : nullptr;
    return sample != nullptr ? sample->getStringAttribute ("key") : juce::String();
}

juce::AudioProcessorParameter* parameterNamed (juce::AudioProcessor& processor, const juce::String& name)
{
    for (auto* parameter : processor.getParameters())
        if (parameter->getName (100) == name)
            return parameter;
    return nullptr;
}

int fail (const juce::String& message, int status = 1)
{
    std::fprintf (stderr, "loopbridge-test-host: %s\n", message.toRawUTF8());
    return status;
}
} // namespace

int main (int argc, char** argv)
{
    juce::ScopedJuceInitialiser_GUI juceInitialiser;
    juce::StringArray args;
    for (int i = 1; i < argc; ++i)
        args.add (juce::String::fromUTF8 (argv[i]));
    if (args.size() < 3)
        return fail ("usage: loopbridge-test-host PLUGIN.vst3 STATE_IN STATE_OUT [--tempo BPM] [--meter N/D] [--rate HZ] "
                     "[--block FRAMES] [--timeout-s S]",
                     2);
    const auto cwd = juce::File::getCurrentWorkingDirectory();
    const auto pluginPath = cwd.getChildFile (args[0]).getFullPathName();
    const auto stateIn = cwd.getChildFile (args[1]);
    const auto stateOut = cwd.getChildFile (args[2]);

    SongPlayHead head;
    int block = 512;
    double timeoutS = 300.0;
    for (int i = 3; i < args.size(); i += 2)
    {
        const auto& option = args[i];
        const auto value = i + 1 < args.size() ? args[i + 1] : juce::String();
        if (option == "--tempo")
            head.bpm = value.getDoubleValue();
        else if (option == "--meter")
        {
            head.numerator = value.upToFirstOccurrenceOf ("/", false, false).getIntValue();
            head.denominator = value.fromFirstOccurrenceOf ("/", false, false).getIntValue();
        }
        else if (option == "--rate")
            head.sampleRate = value.getDoubleValue();
        else if (option == "--block")
            block = value.getIntValue();
        else if (option == "--timeout-s")
            timeoutS = value.getDoubleValue();
        else
            return fail ("unknown option " + option, 2);
    }
    if (head.bpm <= 0.0 || head.numerator <= 0 || head.denominator <= 0 || head.sampleRate <= 0.0 || block <= 0 || timeoutS <= 0.0)
        return fail ("--tempo, --meter N/D, --rate, --block and --timeout-s take positive numbers", 2);

    juce::MemoryBlock state;
    if (! stateIn.loadFileAsData (state))
        return fail ("cannot read " + stateIn.getFullPathName(), 2);

    juce::AudioPluginFormatManager formats;
    formats.addFormat (new juce::VST3PluginFormat());
    juce::OwnedArray<juce::PluginDescription> types;
    formats.getFormat (0)->findAllTypesForFile (types, pluginPath);
    if (types.isEmpty())
        return fail ("no VST3 plugin in " + pluginPath);
    juce::String error;
    auto plugin = formats.createPluginInstance (*types[0], head.sampleRate, block, error);
    if (plugin == nullptr)
        return fail ("cannot load " + pluginPath + ": " + error);
    auto* generate = parameterNamed (*plugin, "Generate");
    if (generate == nullptr)
        return fail ("the plugin has no Generate parameter");

    plugin->setStateInformation (state.getData(), (int) state.getSize());
    plugin->setPlayHead (&head);
    plugin->enableAllBuses();
    plugin->prepareToPlay (head.sampleRate, block);

    juce::AudioBuffer<float> buffer (juce::jmax (2, plugin->getTotalNumOutputChannels()), block);
    juce::MidiBuffer midi;
    int blocks = 0;
    const auto render = [&] {
        buffer.clear();
        midi.clear();
        plugin->processBlock (buffer, midi);
        head.timeInSamples += block;
        ++blocks;
    };

    // A press as a host sends one: the parameter on, a block, off again (the plugin counts edges).
    juce::MemoryBlock current;
    plugin->getStateInformation (current);
    const auto keyBefore = sampleKeyIn (current);
    render();
    generate->setValue (1.0f);
    render();
    generate->setValue (0.0f);
    render();

    const auto started = juce::Time::getMillisecondCounterHiRes();
    const auto elapsedS = [&] { return (juce::Time::getMillisecondCounterHiRes() - started) * 0.001; };
    juce::String key;
    while (elapsedS() < timeoutS)
    {
        render();
        juce::Thread::sleep (2); // the plugin's network thread does the work; the blocks only drive it
        if (blocks % 25 != 0)
            continue;
        plugin->getStateInformation (current);
        key = sampleKeyIn (current);
        if (key.isNotEmpty() && key != keyBefore)
            break;
    }
    plugin->getStateInformation (current);
    key = sampleKeyIn (current);
    plugin->releaseResources();
    plugin->setPlayHead (nullptr);
    plugin.reset();

    if (! stateOut.replaceWithData (current.getData(), current.getSize()))
        return fail ("cannot write " + stateOut.getFullPathName());
    const bool arrived = key.isNotEmpty() && key != keyBefore;
    std::printf ("{\"sample_key\": %s, \"blocks\": %d, \"seconds\": %.3f}\n", juce::JSON::toString (arrived ? key : juce::String()).toRawUTF8(),
                 blocks, elapsedS());
    return arrived ? 0 : fail ("no new sample within " + juce::String (timeoutS) + " s");
}
