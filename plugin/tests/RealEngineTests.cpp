// The plugin's Fit to song path against a real `loopbridge serve`: run by tests/plugin/test_host_engine.py,
// which starts the engine and names it and an audio file in LOOPBRIDGE_TEST_ENGINE and LOOPBRIDGE_TEST_FILE
// (`loopbridge-tests loopbridge-real-engine`, and `loopbridge-real-engine-key` with chords in C major;
// not in the default category, which needs no engine); `loopbridge-real-engine-tasks` runs the task
// buttons against an engine serving tiny-ace-step and tiny-stable-audio-3, on a one-bar loop at 240 BPM
// that tiny-ace-step makes.
#include "PluginProcessor.h"
#include "TestUtilities.h"

namespace loopbridge
{
namespace
{
template <typename Condition>
bool waitUntil (Condition&& condition, int timeoutMs)
{
    const auto deadline = juce::Time::getMillisecondCounter() + (juce::uint32) timeoutMs;
    while (! condition())
    {
        if (juce::Time::getMillisecondCounter() > deadline)
            return false;
        juce::Thread::sleep (10);
    }
    return true;
}
} // namespace

class RealEngineTests final : public juce::UnitTest
{
public:
    RealEngineTests() : juce::UnitTest ("Plugin against a real engine", "loopbridge-real-engine") {}

    void runTest() override
    {
        beginTest ("a file dropped to fit the song: the engine's loop at the host's tempo and rate; a new tempo re-conforms it");
        const auto endpoint = juce::SystemStats::getEnvironmentVariable ("LOOPBRIDGE_TEST_ENGINE", {});
        const juce::File file (juce::SystemStats::getEnvironmentVariable ("LOOPBRIDGE_TEST_FILE", {}));
        expect (endpoint.isNotEmpty() && file.existsAsFile(), "LOOPBRIDGE_TEST_ENGINE names a running engine, LOOPBRIDGE_TEST_FILE an audio file");
        if (endpoint.isEmpty() || ! file.existsAsFile())
            return;

        constexpr double rate = 44100.0;
        LoopBridgeProcessor p;
        test::TestPlayHead head;
        p.setPlayHead (&head);
        p.prepareToPlay (rate, 512);
        p.setPrefetchDepth (0);
        p.setEndpoint (endpoint);
        juce::AudioBuffer<float> out (2, 512);
        juce::MidiBuffer midi;
        head.set (100.0, 4, 4, 0.0, true);
        p.processBlock (out, midi);
        expect (waitUntil ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 30000), "connected");

        p.setDropFits (true);
        expectEquals (p.fitFile (file), juce::String());
        expect (waitUntil ([&] { return p.getLatestSample() != nullptr; }, 120000), "the engine's answer: " + p.getEngineStatus().lastError);
        const auto fitted = p.getLatestSample();
        if (fitted == nullptr)
            return;
        const auto bars = p.currentSettings().bars; // the Length, in bars of 4/4
        expect (fitted->isLoop, "a recorded loop is conformed as a loop");
        expect (fitted->renderKey.isNotEmpty());
        expectEquals (fitted->tempoBpm, 100.0);
        expectEquals (fitted->sampleRate, rate);
        expectEquals ((int) fitted->getNumFrames(), juce::roundToInt (bars * 4.0 * 60.0 / 100.0 * rate), "exactly the Length's bars at 100 BPM");

        head.set (90.0, 4, 4, 1.0, true);
        p.processBlock (out, midi);
        expect (waitUntil ([&] { const auto s = p.getLatestSample(); return s != nullptr && s->tempoBpm == 90.0; }, 120000),
                "re-conformed to 90 BPM: " + p.getEngineStatus().lastError);
        const auto again = p.getLatestSample();
        expectEquals (again->renderKey, fitted->renderKey, "the same stored file, fitted again: no new upload");
        expectEquals ((int) again->getNumFrames(), juce::roundToInt (bars * 4.0 * 60.0 / 90.0 * rate));
        p.setPlayHead (nullptr);
    }
};

static RealEngineTests realEngineTests;

class RealEngineKeyTests final : public juce::UnitTest
{
public:
    RealEngineKeyTests() : juce::UnitTest ("Plugin's Key against a real engine", "loopbridge-real-engine-key") {}

    void runTest() override
    {
        beginTest ("chords in C fitted with Key D major come back in D; Key Off brings them back to C, no upload");
        const auto endpoint = juce::SystemStats::getEnvironmentVariable ("LOOPBRIDGE_TEST_ENGINE", {});
        const juce::File file (juce::SystemStats::getEnvironmentVariable ("LOOPBRIDGE_TEST_FILE", {}));
        expect (endpoint.isNotEmpty() && file.existsAsFile(), "LOOPBRIDGE_TEST_ENGINE names a running engine, LOOPBRIDGE_TEST_FILE chords in C major");
        if (endpoint.isEmpty() || ! file.existsAsFile())
            return;

        LoopBridgeProcessor p;
        test::TestPlayHead head;
        p.setPlayHead (&head);
        p.prepareToPlay (44100.0, 512);
        p.setPrefetchDepth (0);
        p.setEndpoint (endpoint);
        auto setParam = [&p] (const juce::ParameterID& id, float plainValue) {
            auto* param = p.getValueTreeState().getParameter (id.getParamID());
            param->setValueNotifyingHost (param->convertTo0to1 (plainValue));
        };
        setParam (ParamIDs::length, 3.0f); // 2 bars: the file's eight beats
        setParam (ParamIDs::key, 3.0f);    // D major
        juce::AudioBuffer<float> out (2, 512);
        juce::MidiBuffer midi;
        head.set (120.0, 4, 4, 0.0, true);
        p.processBlock (out, midi);
        expect (waitUntil ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 30000), "connected");

        p.setDropFits (true);
        expectEquals (p.fitFile (file), juce::String());
        expect (waitUntil ([&] { return p.getLatestSample() != nullptr; }, 120000), "the engine's answer: " + p.getEngineStatus().lastError);
        const auto inD = p.getLatestSample();
        if (inD == nullptr)
            return;
        expectEquals (inD->keyAsked, juce::String ("D"));
        // moved up a whole tone (B minor, D's relative, would be a match too)
        expect (inD->musicalKey == "D" || inD->musicalKey == "Bm", "the engine hears " + inD->musicalKey);
        expect (inD->keyConfidence > 0.0 && inD->keyConfidence <= 1.0);
        expect (waitUntil ([&] { return p.getEngineStatus().activity.endsWith (", " + inD->musicalKey); }, 5000),
                "the status names the key: " + p.getEngineStatus().activity);

        setParam (ParamIDs::key, 0.0f); // Off: the file's own key again, from the store
        expect (waitUntil ([&] { const auto s = p.getLatestSample(); return s != inD && s->keyAsked.isEmpty(); }, 120000),
                "re-conformed without a key: " + p.getEngineStatus().lastError);
        const auto own = p.getLatestSample();
        expectEquals (own->renderKey, inD->renderKey, "the same stored file, fitted again: no new upload");
        expect (own->musicalKey == "C" || own->musicalKey == "Am", "the file's own key, C major: the engine hears " + own->musicalKey);
        p.setPlayHead (nullptr);
    }
};

static RealEngineKeyTests realEngineKeyTests;

class RealEngineTaskTests final : public juce::UnitTest
{
public:
    RealEngineTaskTests() : juce::UnitTest ("Plugin's task buttons against a real engine", "loopbridge-real-engine-tasks") {}

    void runTest() override
    {
        beginTest ("the model's tasks on the sample that plays: Continue and Extract land like any sample, a new tempo re-conforms them");
        const auto endpoint = juce::SystemStats::getEnvironmentVariable ("LOOPBRIDGE_TEST_ENGINE", {});
        expect (endpoint.isNotEmpty(), "LOOPBRIDGE_TEST_ENGINE names a running engine serving tiny-ace-step and tiny-stable-audio-3");
        if (endpoint.isEmpty())
            return;

        constexpr double rate = 48000.0;
        LoopBridgeProcessor p;
        test::TestPlayHead head;
        p.setPlayHead (&head);
        p.prepareToPlay (rate, 512);
        p.setPrefetchDepth (0);
        p.setEndpoint (endpoint);
        p.setModel ("tiny-ace-step");
        p.setPrompt ("rolling bass");
        auto setParam = [&p] (const juce::ParameterID& id, float plainValue) {
            auto* param = p.getValueTreeState().getParameter (id.getParamID());
            param->setValueNotifyingHost (param->convertTo0to1 (plainValue));
        };
        setParam (ParamIDs::quality, 2.0f); // two steps keep the tiny models quick
        juce::AudioBuffer<float> out (2, 512);
        juce::MidiBuffer midi;
        head.set (240.0, 4, 4, 0.0, true);
        p.processBlock (out, midi);
        // the buttons follow the model's capabilities, from the engine's models reply
        expect (waitUntil ([&] { return p.currentModelTasks().tasks.contains ("continue"); }, 30000), "the engine's models reply");
        expectEquals (p.currentModelTasks().tasks.joinIntoString (","), juce::String ("generate,continue,replace,transform,extract,add"));
        expect (p.currentModelTasks().tracks.contains ("drums"));

        // a task before any sample: said, nothing sent
        p.runTask (0);
        expect (waitUntil ([&] { return p.getEngineStatus().lastError.startsWith ("continue: no sample to work on"); }, 5000),
                p.getEngineStatus().lastError);

        // the sample to work on: a one-bar loop of the model's own (a dropped file fitted to the song
        // is one the same way: loopbridge-real-engine)
        setParam (ParamIDs::kind, 1.0f);
        p.getParameters().generate.setValueNotifyingHost (1.0f);
        p.getParameters().generate.setValueNotifyingHost (0.0f);
        expect (waitUntil ([&] { return p.getLatestSample() != nullptr; }, 300000), "the generated loop: " + p.getEngineStatus().lastError);
        const auto fitted = p.getLatestSample();
        if (fitted == nullptr)
            return;
        expectEquals ((int) fitted->getNumFrames(), (int) rate, "one bar at 240 BPM");

        setParam (ParamIDs::continueBars, 1.0f);
        p.runTask (0); // Continue
        expect (waitUntil ([&] { return p.getLatestSample() != fitted; }, 300000), "the continued loop: " + p.getEngineStatus().lastError);
        const auto continued = p.getLatestSample();
        expect (continued->isLoop);
        expect (continued->renderKey.isNotEmpty() && continued->renderKey != fitted->renderKey, "a render of its own (history, recall)");
        expectEquals ((int) continued->getNumFrames(), (int) (2 * rate), "the sample's bar and one more, to the frame");
        expect (p.getEngineStatus().activity.startsWith ("playing continue result: loop"), p.getEngineStatus().activity);
        const auto dragged = p.writeCurrentSampleForDrag();
        expect (dragged.existsAsFile() && dragged.getSize() == (juce::int64) continued->wavBytes.getSize(), "drags out as any sample");

        // what the model lacks is refused by the plugin, naming what it offers
        p.setModel ("tiny-stable-audio-3");
        p.runTask (3); // Extract
        expect (waitUntil ([&] { return p.getEngineStatus().lastError.contains ("tiny-stable-audio-3 cannot extract"); }, 5000),
                p.getEngineStatus().lastError);
        expect (p.getEngineStatus().lastError.contains ("it can: continue, replace, transform"), p.getEngineStatus().lastError);
        expect (p.getLatestSample() == continued);

        p.setModel ("tiny-ace-step");
        setParam (ParamIDs::track, 2.0f); // drums
        p.runTask (3);
        expect (waitUntil ([&] { return p.getLatestSample() != continued; }, 300000), "the drums: " + p.getEngineStatus().lastError);
        const auto drums = p.getLatestSample();
        expectEquals ((int) drums->getNumFrames(), (int) (2 * rate), "the source's two bars");

        // a new host tempo re-conforms the result from the store: its own bars, no model run
        head.set (120.0, 4, 4, 1.0, true);
        p.processBlock (out, midi);
        expect (waitUntil ([&] { const auto s = p.getLatestSample(); return s != nullptr && s->tempoBpm == 120.0; }, 120000),
                "re-conformed to 120 BPM: " + p.getEngineStatus().lastError);
        const auto slower = p.getLatestSample();
        expectEquals (slower->renderKey, drums->renderKey);
        expectEquals ((int) slower->getNumFrames(), (int) (4 * rate), "two bars at 120 BPM");

        // saved with the project: the task knobs and the result
        juce::MemoryBlock state;
        p.getStateInformation (state);
        LoopBridgeProcessor restored;
        restored.setStateInformation (state.getData(), (int) state.getSize());
        expectEquals (restored.getParameters().continueBars.load(), 1.0f);
        expectEquals (restored.getParameters().getTrackIndex(), 2);
        expect (restored.getLatestSample() != nullptr && restored.getLatestSample()->renderKey == drums->renderKey);
        p.setPlayHead (nullptr);
    }
};

static RealEngineTaskTests realEngineTaskTests;

} // namespace loopbridge
