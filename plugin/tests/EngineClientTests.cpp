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

void setParam (LoopBridgeProcessor& p, const juce::ParameterID& id, float plainValue)
{
    auto* param = p.getValueTreeState().getParameter (id.getParamID());
    param->setValueNotifyingHost (param->convertTo0to1 (plainValue));
}

void setVariation (LoopBridgeProcessor& p, int variation) { setParam (p, ParamIDs::variation, (float) variation); }

std::shared_ptr<const Sample> decode (const juce::MemoryBlock& wav, const SampleInfo& info)
{
    juce::String error;
    auto sample = Sample::fromWav (wav.getData(), wav.getSize(), info, error);
    jassert (sample != nullptr);
    return std::shared_ptr<const Sample> (std::move (sample));
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
            peer.setNotes ({ "made shorter than asked" });
            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));
            expect (waitFor ([&] { return peer.prefetches.load() >= 1; }, 3000), "variation 1 fetched in the background");
            peer.setNotes ({});
            juce::Thread::sleep (200); // its reply decoded
            const auto jobsBefore = peer.jobs.load();

            setVariation (p, 1);
            expect (waitFor ([&] { return p.getLatestSample()->variation == 1; }, 3000));
            expect (p.getLatestSample()->wavBytes == wavs[1]);
            expectEquals (peer.jobs.load(), jobsBefore, "served from what was fetched ahead");
            expect (waitFor ([&] { return p.getEngineStatus().activity.contains ("fetched ahead"); }, 2000));
            expectEquals (p.getEngineStatus().notes.joinIntoString ("; "), juce::String ("made shorter than asked"),
                          "the notes of the reply that brought it");

            p.setPrefetchDepth (0);
            juce::Thread::sleep (100);
            setVariation (p, 3);
            expect (waitFor ([&] { return p.getLatestSample()->variation == 3; }, 3000));
            expectEquals (peer.jobs.load(), jobsBefore + 1, "not fetched ahead: asked for");
        }

        beginTest ("a Generate or a Variation turn right after a project is restored goes out; the restore alone asks nothing");
        {
            test::ScriptedPeer peer (wavs);
            juce::MemoryBlock saved;
            {
                // The project is made away from the peer (its own Variation turn would reach it), and
                // saved with the peer as its endpoint, so the restore stays connected to the peer.
                LoopBridgeProcessor source;
                source.setEndpoint ("tcp://127.0.0.1:9");
                source.setPrompt ("warm rhodes loop");
                setVariation (source, 2);
                SampleInfo info;
                info.key = "k2";
                info.renderKey = "r2";
                info.variation = 2;
                source.publishSample (decode (wavs[2], info));
                juce::MemoryBlock made;
                source.getStateInformation (made);
                auto xml = juce::AudioProcessor::getXmlFromBinary (made.getData(), (int) made.getSize());
                expect (xml != nullptr && xml->getChildByName ("SESSION") != nullptr);
                xml->getChildByName ("SESSION")->setAttribute ("endpoint", juce::String (peer.endpoint));
                juce::AudioProcessor::copyXmlToBinary (*xml, saved);
            }
            LoopBridgeProcessor p;
            p.setPrefetchDepth (0);
            p.setEndpoint (peer.endpoint);
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));

            // As a host does it: the project is restored, and the very next thing is a press.
            for (int round = 0; round < 3; ++round)
            {
                const auto before = peer.jobs.load();
                p.setStateInformation (saved.getData(), (int) saved.getSize());
                press (p);
                expect (waitFor ([&] { return peer.jobs.load() == before + 1; }, 5000), "the press after restore " + juce::String (round));
                const auto generates = peer.requestsOfType ("generate");
                expectEquals ((int) generates.size(), round + 1);
            }

            const auto before = peer.jobs.load();
            p.setStateInformation (saved.getData(), (int) saved.getSize());
            setVariation (p, 3);
            expect (waitFor ([&] { return peer.jobs.load() == before + 1; }, 5000), "the Variation turn after the restore");
            const auto variations = peer.requestsOfType ("variation");
            expect (variations.size() == 1 && (int) variations.back()["variation"] == 3);

            expect (waitFor ([&] { return p.getLatestSample() != nullptr && p.getLatestSample()->variation == 3; }, 5000));
            const auto quiet = peer.jobs.load();
            const auto conforms = peer.conforms.load();
            p.setStateInformation (saved.getData(), (int) saved.getSize());
            juce::Thread::sleep (300); // many turns of the client's loop
            expectEquals (peer.jobs.load(), quiet, "a restore asks for nothing: the saved sample is what its knobs made");
            expectEquals (peer.conforms.load(), conforms);
            expectEquals (p.getLatestSample()->renderKey, juce::String ("r2"));
        }

        beginTest ("the host's tempo, meter and rate go with the request; a new tempo, Pitch or rate re-conforms without a model run");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            p.setPrefetchDepth (0);
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("dusty breakbeat");
            setParam (p, ParamIDs::kind, 1.0f);
            juce::AudioBuffer<float> out (2, 512);
            juce::MidiBuffer midi;
            head.set (97.0, 3, 4, 0.0, true); // neither the engine's default tempo nor its meter
            p.processBlock (out, midi);
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));

            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));
            const auto generates = peer.requestsOfType ("generate");
            expectEquals ((int) generates.size(), 1);
            if (generates.size() == 1)
            {
                expectEquals ((double) generates.front()["tempo_bpm"], 97.0);
                expectEquals ((int) generates.front()["meter_numerator"], 3);
                expectEquals ((int) generates.front()["meter_denominator"], 4);
                expect (! generates.front().hasProperty ("beats_per_bar"), "the engine works out its bar");
                expectEquals ((int) generates.front()["sample_rate"], 48000);
                expectEquals ((double) generates.front()["bars"], 1.0, "Length \"1 bar\"");
            }
            expectEquals (p.getLatestSample()->tempoBpm, 97.0);

            // The song's tempo changes: the stored render is fitted to it, the model does not run.
            head.set (104.0, 3, 4, 1.0, true);
            p.processBlock (out, midi);
            expect (waitFor ([&] { return peer.conforms.load() == 1; }, 5000), "a conform for the new tempo");
            auto conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 1)
            {
                expectEquals (conforms.back()["render_key"].toString(), juce::String ("r0"));
                expectEquals ((double) conforms.back()["tempo_bpm"], 104.0);
                expectEquals ((int) conforms.back()["meter_numerator"], 3);
                expectEquals ((int) conforms.back()["meter_denominator"], 4);
                expectEquals ((double) conforms.back()["bars"], 1.0);
                expect (! conforms.back().hasProperty ("beats_per_bar"));
                expectEquals ((int) conforms.back()["sample_rate"], 48000);
            }
            expect (waitFor ([&] { return p.getLatestSample()->tempoBpm == 104.0; }, 5000), "the conformed sample plays");
            expectEquals (p.getLatestSample()->renderKey, juce::String ("r0"));

            setParam (p, ParamIDs::pitch, 2.0f);
            expect (waitFor ([&] { return peer.conforms.load() == 2; }, 5000), "a conform for the new Pitch");
            conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 2)
            {
                expectEquals ((double) conforms.back()["pitch_semitones"], 2.0);
                expectEquals ((double) conforms.back()["tempo_bpm"], 104.0);
            }
            expect (waitFor ([&] { return p.getLatestSample()->pitchSemitones == 2.0; }, 5000));

            p.prepareToPlay (44100.0, 512); // the host's rate changes
            expect (waitFor ([&] { return peer.conforms.load() == 3; }, 5000), "a conform for the new rate");
            conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 3)
                expectEquals ((int) conforms.back()["sample_rate"], 44100);
            expectEquals (peer.jobs.load(), 1, "no model run after the first");
            p.setPlayHead (nullptr);
        }

        beginTest ("Key and Loudness go with every request; a change re-conforms without a model run; the status shows the sample's key");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            p.setPrefetchDepth (0);
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("pluck arp");
            setParam (p, ParamIDs::kind, 1.0f);
            juce::AudioBuffer<float> out (2, 512);
            juce::MidiBuffer midi;
            head.set (120.0, 4, 4, 0.0, true);
            p.processBlock (out, midi);
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));

            // Key Off: no key asked; the engine hears none in this sample, and the status says so
            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));
            auto generates = peer.requestsOfType ("generate");
            expectEquals ((int) generates.size(), 1);
            if (generates.size() == 1)
            {
                expect (! generates.front().hasProperty ("key"), "Off: no key");
                expectEquals ((double) generates.front()["loudness_lufs"], -14.0);
            }
            expect (p.getLatestSample()->saysNoKey);
            expect (waitFor ([&] { return p.getEngineStatus().activity.endsWith (", no key"); }, 2000), p.getEngineStatus().activity);

            // A key is picked: the current sample is conformed to it, the model does not run
            setParam (p, ParamIDs::key, 22.0f); // A minor
            expect (waitFor ([&] { return peer.conforms.load() == 1; }, 5000), "a conform for the new key");
            auto conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 1)
            {
                expectEquals (conforms.back()["key"].toString(), juce::String ("Am"));
                expectEquals (conforms.back()["render_key"].toString(), juce::String ("r0"));
                expectEquals ((double) conforms.back()["tempo_bpm"], 120.0);
            }
            expect (waitFor ([&] { return p.getLatestSample()->musicalKey == "Am"; }, 5000), "the sample in A minor plays");
            expectEquals (p.getLatestSample()->keyAsked, juce::String ("Am"));
            expect (waitFor ([&] { return p.getEngineStatus().activity.endsWith (", Am"); }, 2000), p.getEngineStatus().activity);
            juce::Thread::sleep (150);
            expectEquals (peer.conforms.load(), 1, "one conform: the sample now is in the key asked");

            // Loudness: a re-conform too, with the key still asked
            setParam (p, ParamIDs::loudness, -20.0f);
            expect (waitFor ([&] { return peer.conforms.load() == 2; }, 5000), "a conform for the new loudness");
            conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 2)
            {
                expectEquals ((double) conforms.back()["loudness_lufs"], -20.0);
                expectEquals (conforms.back()["key"].toString(), juce::String ("Am"));
            }
            expect (waitFor ([&] { return p.getLatestSample()->loudnessLufs == -20.0; }, 5000));

            // Generate and Variation carry the key too
            setVariation (p, 1);
            expect (waitFor ([&] { return p.getLatestSample()->variation == 1; }, 5000));
            const auto variations = peer.requestsOfType ("variation");
            expect (! variations.empty() && variations.back()["key"].toString() == "Am" && (double) variations.back()["loudness_lufs"] == -20.0);

            // Off again: the sample goes back to the key it was made in
            setParam (p, ParamIDs::key, 0.0f);
            expect (waitFor ([&] { return peer.conforms.load() == 3; }, 5000), "a conform without a key");
            conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 3)
                expect (! conforms.back().hasProperty ("key"));
            expect (waitFor ([&] { return p.getLatestSample()->keyAsked.isEmpty(); }, 5000));
            expectEquals (peer.jobs.load(), 2, "the model ran for Generate and Variation only");
            p.setPlayHead (nullptr);
        }

        beginTest ("a file dropped to fit the song goes as its bytes; its sample plays and a new tempo re-conforms it");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            p.setPrefetchDepth (0);
            p.setEndpoint (peer.endpoint);
            juce::AudioBuffer<float> out (2, 512);
            juce::MidiBuffer midi;
            head.set (93.0, 4, 4, 0.0, true);
            p.processBlock (out, midi);
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));

            const juce::TemporaryFile temp (".flac");
            const auto file = temp.getFile().getSiblingFile ("my break.flac");
            const auto bytes = test::makeWav (44100.0, 44100, 2, 330.0, 120.0, 1.0, 60, true); // any bytes: the engine reads them
            expect (file.replaceWithData (bytes.getData(), bytes.getSize()));
            expectEquals (p.fitFile (file.getSiblingFile ("missing.wav")), "cannot read " + file.getSiblingFile ("missing.wav").getFullPathName());
            expectEquals (p.fitFile (file), juce::String());
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000), "the fitted sample plays");
            const auto sent = peer.requestsOfType ("conform_file");
            expectEquals ((int) sent.size(), 1);
            if (sent.size() == 1)
            {
                expectEquals (sent.front()["name"].toString(), juce::String ("my break"));
                expectEquals ((double) sent.front()["tempo_bpm"], 93.0);
                expectEquals ((int) sent.front()["audio_frame"], 1);
            }
            const auto files = peer.fittedFiles();
            expect (files.size() == 1 && files.front() == bytes, "the file's bytes as they are, in binary frame 1");
            expectEquals (p.getLatestSample()->renderKey, juce::String ("file-r1"));
            expectEquals (peer.jobs.load(), 0, "no model runs");

            head.set (101.0, 4, 4, 1.0, true);
            p.processBlock (out, midi);
            expect (waitFor ([&] { return peer.conforms.load() == 1; }, 5000), "a conform of the file's render for the new tempo");
            const auto conforms = peer.requestsOfType ("conform");
            if (conforms.size() == 1)
            {
                expectEquals (conforms.back()["render_key"].toString(), juce::String ("file-r1"));
                expectEquals ((double) conforms.back()["tempo_bpm"], 101.0);
            }
            expect (waitFor ([&] { return p.getLatestSample()->tempoBpm == 101.0; }, 5000));
            file.deleteFile();
            p.setPlayHead (nullptr);
        }

        beginTest ("the host's meter goes as it is, the Length in its bars; the engine's notes reach the status; its 6/8 loop plays on the bar lines");
        {
            // One bar of 6/8 at 120 BPM, as the engine makes it: 3 quarter notes, 1.5 s.
            const auto bar = test::makeWav (48000.0, 72000, 1, 0.0, 120.0, 3.0, 60, true);
            test::ScriptedPeer peer ({ bar });
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            p.setPrefetchDepth (0);
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("waltzing shaker");
            setParam (p, ParamIDs::kind, 1.0f);
            juce::AudioBuffer<float> out (2, 512);
            juce::MidiBuffer midi;
            head.set (120.0, 4, 4, 0.0, false);
            p.processBlock (out, midi);
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));

            // what engine/host.py says for it (the plugin shows it, it does not work it out)
            const juce::String inexact ("0.286 bars of 7/8 cannot be made exactly: 1.75 quarter notes instead of 1 (0.25 bars of 7 beats)");
            struct Row
            {
                int numerator, denominator;
                int lengthIndex; // 2: "1 bar", 3: "2 bars", 0: "1 beat"
                double bars;     // of the host's meter
                bool noted;      // the (scripted) engine answers with a note
            };
            const Row rows[] = {
                { 4, 4, 2, 1.0, false }, { 3, 4, 2, 1.0, false }, { 2, 2, 2, 1.0, false },
                { 7, 8, 3, 2.0, false },
                { 7, 8, 0, 1.0 / 3.5, true }, // one quarter note of 7/8
                { 6, 8, 2, 1.0, false },      // last: its sample is played below
            };
            for (const auto& row : rows)
            {
                const auto what = juce::String (row.numerator) + "/" + juce::String (row.denominator) + ", length choice "
                                  + juce::String (row.lengthIndex);
                peer.setNotes (row.noted ? juce::StringArray (inexact) : juce::StringArray());
                setParam (p, ParamIDs::length, (float) row.lengthIndex);
                head.set (120.0, row.numerator, row.denominator, 0.0, false);
                p.processBlock (out, midi);
                const auto received = p.getEngineStatus().samplesReceived;
                const auto before = peer.jobs.load();
                press (p);
                expect (waitFor ([&] { return peer.jobs.load() == before + 1; }, 5000), what);
                const auto generates = peer.requestsOfType ("generate");
                if (generates.empty())
                    continue;
                const auto& h = generates.back();
                expectEquals ((int) h["meter_numerator"], row.numerator, what);
                expectEquals ((int) h["meter_denominator"], row.denominator, what);
                expectWithinAbsoluteError ((double) h["bars"], row.bars, 1.0e-9, what);
                expect (! h.hasProperty ("beats_per_bar"), what);
                expectEquals ((double) h["tempo_bpm"], 120.0, what);
                expect (waitFor ([&] { return p.getEngineStatus().samplesReceived > received; }, 5000), what);
                const auto status = p.getEngineStatus();
                expectEquals (status.notes.joinIntoString ("; "), row.noted ? inexact : juce::String(), what + ": the status shows the reply's notes");
                expectEquals (status.lastError, juce::String(), what);
            }
            expect (waitFor ([&] { return p.getLatestSample() != nullptr && p.getLatestSample()->getLoopBeats() == 3.0; }, 5000),
                    "the engine's one bar of 6/8 is 3 beats long");

            for (const auto barLine : { 0.0, 3.0, 12.0 })
            {
                head.set (120.0, 6, 8, barLine, true);
                out.clear();
                p.processBlock (out, midi);
                for (int i = 200; i < 512; i += 50)
                    expectWithinAbsoluteError (out.getSample (0, i), p.getLatestSample()->audio.getSample (0, i), 1.0e-4f,
                                               "the loop's start on the 6/8 bar line at " + juce::String (barLine));
            }
            head.set (120.0, 6, 8, 4.5, true); // half way through the second bar
            out.clear();
            p.processBlock (out, midi);
            for (int i = 200; i < 512; i += 50)
                expectWithinAbsoluteError (out.getSample (0, i), p.getLatestSample()->audio.getSample (0, 36000 + i), 1.0e-4f);
            p.setPlayHead (nullptr);
        }

        beginTest ("an engine error shows until the next request succeeds");
        {
            test::ScriptedPeer peer (wavs);
            LoopBridgeProcessor p;
            p.setPrefetchDepth (0);
            p.setEndpoint (peer.endpoint);
            p.setPrompt ("warm rhodes loop");
            expect (waitFor ([&] { return p.getEngineStatus().connection == EngineStatus::Connection::connected; }, 8000));

            peer.refuseJobs = true;
            press (p);
            expect (waitFor ([&] { return p.getEngineStatus().lastError.contains ("bad_request"); }, 5000), "the engine's error is shown");
            expect (p.getEngineStatus().lastError.contains ("steps=999"), p.getEngineStatus().lastError);

            peer.refuseJobs = false;
            press (p);
            expect (waitFor ([&] { return p.getLatestSample() != nullptr; }, 5000));
            expectEquals (p.getEngineStatus().lastError, juce::String(), "a request that worked clears the old error");

            // A variation served from what was fetched ahead is a success too.
            peer.refuseJobs = true;
            setVariation (p, 2);
            expect (waitFor ([&] { return p.getEngineStatus().lastError.isNotEmpty(); }, 5000));
            peer.refuseJobs = false;
            setVariation (p, 0); // decoded and kept when it first arrived
            expect (waitFor ([&] { return p.getLatestSample()->variation == 0 && p.getEngineStatus().lastError.isEmpty(); }, 5000),
                    p.getEngineStatus().lastError);
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
