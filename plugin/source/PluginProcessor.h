// The loopbridge instrument: automatable knobs, host tempo, playback of the engine's samples.
#pragma once

#include "EngineClient.h"
#include "Parameters.h"
#include "SampleExchange.h"
#include "SamplePlayer.h"
#include "Session.h"

#include <juce_audio_processors/juce_audio_processors.h>

#include <atomic>

namespace loopbridge
{
class LoopBridgeProcessor final : public juce::AudioProcessor, private EngineClient::Delegate
{
public:
    LoopBridgeProcessor();
    ~LoopBridgeProcessor() override;

    // ---- AudioProcessor -------------------------------------------------------------------
    void prepareToPlay (double sampleRate, int samplesPerBlock) override;
    void releaseResources() override {}
    bool isBusesLayoutSupported (const BusesLayout& layouts) const override;
    void processBlock (juce::AudioBuffer<float>&, juce::MidiBuffer&) override;
    using AudioProcessor::processBlock;

    juce::AudioProcessorEditor* createEditor() override;
    bool hasEditor() const override { return true; }

    const juce::String getName() const override { return JucePlugin_Name; }
    bool acceptsMidi() const override { return true; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    double getTailLengthSeconds() const override { return 0.0; }

    // One program, the plugin's state as it is; hosts list it (VST3 validators want it named).
    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram (int) override {}
    const juce::String getProgramName (int) override { return "Default"; }
    void changeProgramName (int, const juce::String&) override {}

    void getStateInformation (juce::MemoryBlock& destData) override;
    void setStateInformation (const void* data, int sizeInBytes) override;

    // ---- for the editor, tests and the benchmark (never the audio thread) ----------------
    juce::AudioProcessorValueTreeState& getValueTreeState() noexcept { return apvts; }
    const ParameterPointers& getParameters() const noexcept { return params; }

    Session getSession() const;
    void setPrompt (const juce::String& text);
    void setMorphPrompt (const juce::String& text);
    void setModel (const juce::String& modelId);
    void setEndpoint (const juce::String& endpoint);
    /** Reads a WAV to vary from; returns an error message, empty when it worked. */
    juce::String setAudioPromptFile (const juce::File& file);
    void clearAudioPrompt();
    /** Sends a file to the engine to fit to the song (the host's tempo, meter, Length and rate): the
        sample that comes back plays, and follows the host's tempo like any other. Its bytes go as
        they are (WAV, FLAC, AIFF, OGG, MP3: the engine reads them). Returns an error message, empty
        when the file was handed to the engine's connection. */
    juce::String fitFile (const juce::File& file);
    /** What a file dropped on the editor is for: varied (an audio prompt), or fitted to the song. */
    void setDropFits (bool fits) noexcept { dropFits.store (fits); }
    bool getDropFits() const noexcept { return dropFits.load(); }
    /** Runs Task choice `taskIndex` (kTaskChoices) on the sample that plays, with the task knobs as
        they are: sets Task and presses Run task, as a host or the editor's buttons do. The
        engine's reply (or the reason it was not sent) shows in the status like any request's. */
    void runTask (int taskIndex);
    /** What the model chosen now can do with the user's audio (empty until the engine says). */
    codec::ModelTasks currentModelTasks() const;
    /** Files handed to fitFile so far. */
    std::uint32_t fitFileCount() override { return fitCount.load(); }

    EngineStatus getEngineStatus() const { return client.getStatus(); }
    std::shared_ptr<const Sample> getLatestSample() const { return exchange.latest(); }
    /** The sample the audio thread plays now (identity only: compare with a Sample's address). */
    const void* getPlayingSampleIdentity() const noexcept { return player.currentIdentity.load(); }
    int getActiveVoices() const noexcept { return player.activeVoices.load(); }

    /** Hands a decoded sample to the audio thread, as a reply from the engine does. */
    void publishSample (std::shared_ptr<const Sample> sample);

    /** The conformed WAV of the current sample as a file to drag out (written to a temp folder). */
    juce::File writeCurrentSampleForDrag() const;

    /** The request the next Generate would send, as the network thread builds it. */
    codec::RequestSettings currentSettings() override;

    double getHostTempoBpm() const noexcept { return hostTempoBpm.load(); }

    /** Variations fetched ahead on each side of the current one (0: none). */
    void setPrefetchDepth (int variationsEachSide) { client.setPrefetchDepth (variationsEachSide); }

    static juce::String defaultEndpoint();

private:
    // ---- EngineClient::Delegate (network thread) -----------------------------------------
    std::uint32_t generatePressCount() override { return params.generate.getPressCount(); }
    std::uint32_t taskPressCount() override { return params.runTask.getPressCount(); }
    juce::MemoryBlock audioPromptBytes() override;
    juce::MemoryBlock fitFileBytes (juce::String& name) override;
    std::shared_ptr<const Sample> latestSample() override { return exchange.latest(); }
    void sampleArrived (std::shared_ptr<const Sample> sample) override { publishSample (std::move (sample)); }
    void housekeeping() override { exchange.collectGarbage(); }

    juce::AudioProcessorValueTreeState apvts;
    ParameterPointers params;

    SampleExchange exchange; // before the player: the player hands its samples back on destruction
    SamplePlayer player { exchange };

    mutable juce::CriticalSection sessionLock;
    Session session;
    // the newest file to fit (under sessionLock; not saved with the project: its sample is)
    juce::MemoryBlock fitBytes;
    juce::String fitName;
    std::atomic<std::uint32_t> fitCount { 0 };
    std::atomic<bool> dropFits { false };

    // What the host says, written by the audio thread, read by the network thread.
    std::atomic<double> hostTempoBpm { 120.0 };
    // numerator << 16 | denominator: one word, so a meter change is never read half old, half new
    std::atomic<std::uint32_t> hostTimeSignature { (4u << 16) | 4u };
    std::atomic<double> hostSampleRate { 0.0 };

    juce::LinearSmoothedValue<float> gain { 1.0f };

    EngineClient client; // last: its thread uses everything above, and stops first

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (LoopBridgeProcessor)
};

} // namespace loopbridge
