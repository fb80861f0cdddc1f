#include "PluginProcessor.h"
#include "PluginEditor.h"
#include "PluginState.h"

namespace loopbridge
{
namespace p = loopbridge::protocol;

juce::String LoopBridgeProcessor::defaultEndpoint()
{
    // A studio that runs the engine elsewhere (or a test on a free port) sets LOOPBRIDGE_ENDPOINT;
    // a project's saved endpoint wins over both.
    const auto fromEnvironment = juce::SystemStats::getEnvironmentVariable ("LOOPBRIDGE_ENDPOINT", {});
    if (fromEnvironment.isNotEmpty())
        return fromEnvironment;
    return "tcp://" + juce::String (p::kDefaultZmqHost) + ":" + juce::String (p::kDefaultZmqPort);
}

LoopBridgeProcessor::LoopBridgeProcessor()
    : AudioProcessor (BusesProperties().withOutput ("Output", juce::AudioChannelSet::stereo(), true)),
      apvts (*this, nullptr, "PARAMETERS", createParameterLayout()),
      params (apvts),
      client (*this, defaultEndpoint())
{
    session.endpoint = client.getEndpoint();
    client.start();
}

LoopBridgeProcessor::~LoopBridgeProcessor()
{
    // Stop the network thread while this object is whole: it calls back into it.
    client.stop();
}

bool LoopBridgeProcessor::isBusesLayoutSupported (const BusesLayout& layouts) const
{
    const auto& out = layouts.getMainOutputChannelSet();
    return out == juce::AudioChannelSet::mono() || out == juce::AudioChannelSet::stereo();
}

void LoopBridgeProcessor::prepareToPlay (double sampleRate, int)
{
    hostSampleRate = sampleRate;
    player.prepare (sampleRate);
    gain.reset (sampleRate, 0.02);
    gain.setCurrentAndTargetValue (juce::Decibels::decibelsToGain (params.gainDb.load(), kGainMinDb));
}

void LoopBridgeProcessor::processBlock (juce::AudioBuffer<float>& buffer, juce::MidiBuffer& midi)
{
    // Audio thread: atomics, the lock-free exchange and arithmetic only.
    juce::ScopedNoDenormals noDenormals;
    buffer.clear();

    TransportState transport;
    if (auto* hostPlayHead = getPlayHead())
    {
        if (const auto position = hostPlayHead->getPosition())
        {
            if (const auto bpm = position->getBpm(); bpm.hasValue() && *bpm > 0.0)
            {
                transport.bpm = *bpm;
                hostTempoBpm.store (*bpm, std::memory_order_relaxed);
            }
            if (const auto sig = position->getTimeSignature(); sig.hasValue() && sig->numerator > 0 && sig->denominator > 0)
            {
                transport.timeSigNumerator = sig->numerator;
                transport.timeSigDenominator = sig->denominator;
                hostTimeSignature.store (((std::uint32_t) juce::jmin (sig->numerator, 0xffff) << 16)
                                             | (std::uint32_t) juce::jmin (sig->denominator, 0xffff),
                                         std::memory_order_relaxed);
            }
            if (const auto ppq = position->getPpqPosition())
            {
                transport.ppqPosition = *ppq;
                transport.hasPpq = true;
            }
            if (const auto barStart = position->getPpqPositionOfLastBarStart())
            {
                transport.ppqLastBarStart = *barStart;
                transport.hasLastBarStart = true;
            }
            if (const auto samples = position->getTimeInSamples())
            {
                transport.timeInSamples = *samples;
                transport.hasTimeInSamples = true;
            }
            if (const auto bars = position->getBarCount())
            {
                transport.barCount = *bars;
                transport.hasBarCount = true;
            }
            transport.isPlaying = position->getIsPlaying();
        }
    }

    player.render (buffer, midi, params.getKind(), transport, params.getPitchSemitones());

    gain.setTargetValue (juce::Decibels::decibelsToGain (params.gainDb.load (std::memory_order_relaxed), kGainMinDb));
    if (gain.isSmoothing())
        gain.applyGain (buffer, buffer.getNumSamples());
    else
        buffer.applyGain (gain.getTargetValue());
    midi.clear();
}

juce::AudioProcessorEditor* LoopBridgeProcessor::createEditor() { return new LoopBridgeEditor (*this); }

// ---- session ------------------------------------------------------------------------------

Session LoopBridgeProcessor::getSession() const
{
    const juce::ScopedLock lock (sessionLock);
    return session;
}

void LoopBridgeProcessor::setPrompt (const juce::String& text)
{
    const juce::ScopedLock lock (sessionLock);
    session.prompt = text.substring (0, 500);
}

void LoopBridgeProcessor::setMorphPrompt (const juce::String& text)
{
    const juce::ScopedLock lock (sessionLock);
    session.morphPrompt = text.substring (0, 500);
}

void LoopBridgeProcessor::setModel (const juce::String& modelId)
{
    const juce::ScopedLock lock (sessionLock);
    session.model = modelId.trim().isEmpty() ? juce::String ("default") : modelId.trim();
}

void LoopBridgeProcessor::setEndpoint (const juce::String& endpoint)
{
    const auto trimmed = endpoint.trim().isEmpty() ? defaultEndpoint() : endpoint.trim();
    {
        const juce::ScopedLock lock (sessionLock);
        session.endpoint = trimmed;
    }
    client.setEndpoint (trimmed);
}

juce::String LoopBridgeProcessor::setAudioPromptFile (const juce::File& file)
{
    juce::MemoryBlock bytes;
    if (! file.loadFileAsData (bytes))
        return "cannot read " + file.getFullPathName();
    juce::String error;
    if (Sample::fromWav (bytes.getData(), bytes.getSize(), {}, error) == nullptr)
        return file.getFileName() + ": " + error;
    const juce::ScopedLock lock (sessionLock);
    session.audioPrompt = std::move (bytes);
    session.audioPromptName = file.getFileName();
    return {};
}

juce::String LoopBridgeProcessor::fitFile (const juce::File& file)
{
    if (! file.existsAsFile())
        return "cannot read " + file.getFullPathName();
    if (file.getSize() > (juce::int64) p::kMaxBinaryFrameBytes)
        return file.getFileName() + ": larger than the engine takes (" + juce::String (p::kMaxBinaryFrameBytes) + " bytes)";
    juce::MemoryBlock bytes;
    if (! file.loadFileAsData (bytes) || bytes.getSize() == 0)
        return "cannot read " + file.getFullPathName();
    {
        const juce::ScopedLock lock (sessionLock);
        fitBytes = std::move (bytes);
        fitName = file.getFileNameWithoutExtension();
    }
    fitCount.fetch_add (1);
    return {};
}

void LoopBridgeProcessor::runTask (int taskIndex)
{
    auto* task = apvts.getParameter (ParamIDs::task.getParamID());
    task->setValueNotifyingHost (task->convertTo0to1 ((float) juce::jlimit (0, kNumTaskChoices - 1, taskIndex)));
    // a press is the off -> on edge; released at once, like a click on Generate
    params.runTask.setValueNotifyingHost (1.0f);
    params.runTask.setValueNotifyingHost (0.0f);
}

codec::ModelTasks LoopBridgeProcessor::currentModelTasks() const
{
    const auto status = client.getStatus();
    const auto found = status.modelTasks.find (getSession().model);
    return found != status.modelTasks.end() ? found->second : codec::ModelTasks {};
}

juce::MemoryBlock LoopBridgeProcessor::fitFileBytes (juce::String& name)
{
    const juce::ScopedLock lock (sessionLock);
    name = fitName;
    return fitBytes;
}

void LoopBridgeProcessor::clearAudioPrompt()
{
    const juce::ScopedLock lock (sessionLock);
    session.audioPrompt.reset();
    session.audioPromptName.clear();
}

juce::MemoryBlock LoopBridgeProcessor::audioPromptBytes()
{
    const juce::ScopedLock lock (sessionLock);
    return session.audioPrompt;
}

codec::RequestSettings LoopBridgeProcessor::currentSettings()
{
    codec::RequestSettings s;
    {
        const juce::ScopedLock lock (sessionLock);
        s.prompt = session.prompt;
        s.morphPrompt = session.morphPrompt;
        s.model = session.model;
        s.hasAudioPrompt = session.audioPrompt.getSize() > 0;
    }
    s.isLoop = params.getKind() == SampleKind::loop;
    s.seed = params.getSeed();
    s.variation = params.getVariation();
    const auto meter = hostTimeSignature.load();
    s.meterNumerator = juce::jmax (1, (int) (meter >> 16));
    s.meterDenominator = juce::jmax (1, (int) (meter & 0xffff));
    // Bars of the host's meter, sent with the meter as it is: the engine works out its own bars.
    s.bars = lengthInBars (params.getLengthIndex(), s.meterNumerator * 4.0 / s.meterDenominator);
    s.tempoBpm = juce::jlimit (20.0, 999.0, hostTempoBpm.load());
    s.steps = params.getQualitySteps();
    s.morphAmount = juce::jlimit (0.0, 1.0, (double) params.morph.load());
    s.audioPromptStrength = juce::jlimit (0.0, 1.0, (double) params.strength.load());
    const auto rate = hostSampleRate.load();
    s.sampleRate = rate > 0.0 ? juce::jlimit (8000, 192000, juce::roundToInt (rate)) : p::kDefaultSampleRate;
    s.pitchSemitones = (double) params.getPitchSemitones();
    s.key = keyWireName (params.getKeyIndex());
    s.loudnessLufs = juce::jlimit (protocol::kLoudnessMinLufs, protocol::kLoudnessMaxLufs, (double) params.loudnessLufs.load());
    s.task = taskWireName (params.getTaskIndex());
    s.continueBars = (double) params.continueBars.load();
    s.replaceFromBar = (double) params.replaceFrom.load();
    s.replaceToBar = (double) params.replaceTo.load();
    s.track = protocol::track::kTrackNames[params.getTrackIndex()];
    return s;
}

void LoopBridgeProcessor::publishSample (std::shared_ptr<const Sample> sample) { exchange.publish (std::move (sample)); }

juce::File LoopBridgeProcessor::writeCurrentSampleForDrag() const
{
    const auto sample = exchange.latest();
    if (sample == nullptr || sample->wavBytes.getSize() == 0)
        return {};
    auto name = juce::File::createLegalFileName (sample->fileName);
    if (name.isEmpty() || ! name.endsWithIgnoreCase (".wav"))
        name = "loopbridge-" + (sample->key.isNotEmpty() ? sample->key.substring (0, 12) : juce::String ("sample"))
               + (sample->tempoBpm > 0 ? "-" + juce::String (juce::roundToInt (sample->tempoBpm)) + "bpm" : juce::String()) + ".wav";
    const auto folder = juce::File::getSpecialLocation (juce::File::tempDirectory).getChildFile ("loopbridge-drag");
    folder.createDirectory();
    const auto file = folder.getChildFile (name);
    // Written whole and then renamed, so a DAW never reads a half-written file.
    juce::TemporaryFile temp (file);
    if (! temp.getFile().replaceWithData (sample->wavBytes.getData(), sample->wavBytes.getSize()) || ! temp.overwriteTargetFileWithTemporary())
        return {};
    return file;
}

// ---- state --------------------------------------------------------------------------------

void LoopBridgeProcessor::getStateInformation (juce::MemoryBlock& destData)
{
    const auto xml = state::toXml (apvts, getSession(), exchange.latest().get());
    copyXmlToBinary (*xml, destData);
}

void LoopBridgeProcessor::setStateInformation (const void* data, int sizeInBytes)
{
    const auto xml = getXmlFromBinary (data, sizeInBytes);
    if (xml == nullptr)
        return;
    // The client takes the knobs as restored here as its starting point: the restored sample is
    // what they made. A Generate pressed right after this returns is still a press.
    client.restoreSession ([&] {
        state::Restored restored;
        if (! state::fromXml (*xml, apvts, restored))
            return false;
        {
            const juce::ScopedLock lock (sessionLock);
            session.prompt = restored.session.prompt;
            session.morphPrompt = restored.session.morphPrompt;
            session.model = restored.session.model;
            session.audioPrompt = restored.session.audioPrompt;
            session.audioPromptName = restored.session.audioPromptName;
            if (restored.session.endpoint.isNotEmpty())
                session.endpoint = restored.session.endpoint;
        }
        client.setEndpoint (getSession().endpoint);
        if (restored.sample != nullptr)
            publishSample (std::move (restored.sample));
        return true;
    });
}

} // namespace loopbridge

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new loopbridge::LoopBridgeProcessor(); }
