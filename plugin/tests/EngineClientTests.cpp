// The engine client against a scripted ZeroMQ peer that follows the protocol: hello and models,
// Generate and Variation requests, variations fetched ahead, an engine that goes silent (status,
// the sample keeps playing, the request waits) and comes back (reconnect, the request is sent).
#include "PluginProcessor.h"
#include "ScriptedPeer.h"
#include "TestUtilities.h"

namespace loopbridge
{
namespace
{
template <typename Condition>
bool waitFor (Condition&& condition, int timeoutMs)
{
    const auto deadline = juce::Time::getMillisecondCounter() + (juce::uint32) timeoutMs;
    while (! condition())
    {
        if (juce::Time::getMillisecondCounter() > deadline)
            return false;
        juce::Thread::sleep (5);
    }
    return true;
}

void press (LoopBridgeProcessor& p)
{
    p.getParameters().generate.setValueNotifyingHost (1.0f);
    p.getParameters().generate.setValueNotifyingHost (0.0f);
}

void setVariation (LoopBridgeProcessor& p, int variation)
{
    auto* param = p.getValueTreeState().getParameter ("variation");
    param->setValueNotifyingHost (param->convertTo0to1 ((float) variation));
}
} // namespace

class EngineClientTests final : public juce::UnitTest
{
public:
    EngineClientTests() : juce::UnitTest ("Engine client", "loopbridge") {}

    void runTest() override
    {
        std::vector<juce::MemoryBlock> wavs;
        for (int v = 0; v < 4; ++v)
            wavs.push_back (test::makeWav (48000.0, 24000, 2, 200.0 + 100.0 * v, 120.0, 1.0, 60, true));

        beginTest ("hello, models, Generate: the engine's WAV is what plays");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("warm rhodes loop");
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));
            expect (waitFor ([&] { return p.getEngineStatus().models.contains ("tiny-dd"); }, 3000), "models from the hello reply");

            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));
            const auto sample = p.getLatestSample();
            expect (sample->wavBytes == wavs[0]);
            expectEquals (sample->variation, 0);
            expectEquals (sample->renderKey, juce::String ("r0"));
            expectEquals (peer.jobs.load(), 1);
        }

        beginTest ("a neighbouring variation is fetched ahead and plays without asking the engine again");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("warm rhodes loop");
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));
            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));
            expect (waitFor ([&] { return peer.prefetches.load() >= 1; }, 3000), "variation 1 fetched in the background");
            juce::Thread::sleep (200); // its reply decoded
            const auto jobsBefore = peer.jobs.load();

            setVariation (p, 1);
            expect (waitFor ([&] { return p.getLatestSample()->variation == 1; }, 3000));
            expect (p.getLatestSample()->wavBytes == wavs[1]);
            expectEquals (peer.jobs.load(), jobsBefore, "served from what was fetched ahead");

            p.setPrefetchDepth (0);
            juce::Thread::sleep (100);
            setVariation (p, 3);
            expect (waitFor ([&] { return p.getLatestSample()->variation == 3; }, 3000));
            expectEquals (peer.jobs.load(), jobsBefore + 1, "not fetched ahead: asked for");
        }

        beginTest ("an engine that goes silent: status says so, the sample plays on, the request waits and is sent on return");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            p.prepareToPlay (48000.0, 512);
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("warm rhodes loop");
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));
            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));

            peer.silent = true;
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::notRunning; }, 8000),
                    "three missed heartbeats");
            juce::AudioBuffer<float> out (2, 512);
            juce::MidiBuffer midi;
            midi.addEvent (juce::MidiMessage::noteOn (1, 60, 1.0f), 0);
            p.processBlock (out, midi);
            expectGreaterThan (out.getMagnitude (0, 0, 512), 0.01f, "still playing what it has");

            const auto jobsBefore = peer.jobs.load();
            p.setPrefetchDepth (0);
            setVariation (p, 2);
            expect (waitFor ([&] { return p.getEngineStatus().activity.contains ("waiting for the engine"); }, 2000),
                    p.getEngineStatus().activity);

            peer.silent = false;
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 10000),
                    "reconnects after its back-off");
            expect (waitFor ([&] { return p.getLatestSample()->variation == 2; }, 5000), "the waiting request went out");
            expectEquals (peer.jobs.load(), jobsBefore + 1);
            expectGreaterThan (peer.hellos.load(), 1, "a fresh socket says hello again");
            expect (waitFor ([&] { return peer.heartbeats.load() > 0; }, 3000), "heartbeats while connected");
        }
    }
};

static EngineClientTests engineClientTests;

} // namespace loopbridge
