// The plugin's Fit to song path against a real `loopbridge serve`: run by tests/plugin/test_host_engine.py,
// which starts the engine and names it and an audio file in LOOPBRIDGE_TEST_ENGINE and LOOPBRIDGE_TEST_FILE
// (`loopbridge-tests loopbridge-real-engine`, and `loopbridge-real-engine-key` with chords in C major;
// not in the default category, which needs no engine).
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

} // namespace loopbridge
