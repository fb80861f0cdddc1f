// The real processor, constructed directly: parameters, host tempo in requests, playback of
// one-shots and transport-locked loops, state round trip, no allocation on the audio thread, and
// the editor painting headless.
#include "PluginEditor.h"
#include "PluginProcessor.h"
#include "TestUtilities.h"

namespace loopbridge
{
namespace
{
std::shared_ptr<const Sample> decode (const juce::MemoryBlock& wav, const SampleInfo& info = {})
{
    juce::String error;
    auto sample = Sample::fromWav (wav.getData(), wav.getSize(), info, error);
    jassert (sample != nullptr);
    return std::shared_ptr<const Sample> (std::move (sample));
}

void setParam (LoopBridgeProcessor& p, const juce::ParameterID& id, float plainValue)
{
    auto* param = p.getValueTreeState().getParameter (id.getParamID());
    param->setValueNotifyingHost (param->convertTo0to1 (plainValue));
}

juce::AudioBuffer<float> renderBlock (LoopBridgeProcessor& p, int numSamples, juce::MidiBuffer midi = {})
{
    juce::AudioBuffer<float> out (2, numSamples);
    p.processBlock (out, midi);
    return out;
}

juce::MidiBuffer noteOn (int note, float velocity = 1.0f, int offset = 0)
{
    juce::MidiBuffer midi;
    midi.addEvent (juce::MidiMessage::noteOn (1, note, velocity), offset);
    return midi;
}
} // namespace

class ProcessorTests final : public juce::UnitTest
{
public:
    ProcessorTests() : juce::UnitTest ("Processor", "loopbridge") {}

    void runTest() override
    {
        beginTest ("parameters: versioned IDs, automatable, Generate counts presses");
        {
            LoopBridgeProcessor p;
            const juce::StringArray expected { "generate", "variation", "morph", "seed", "quality", "length", "kind", "pitch", "strength", "gain",
                                               "key", "loudness" };
            // the task buttons' settings: saved with the project, not automatable (a click is the action)
            const juce::StringArray taskSettings { "run_task", "task", "continue_bars", "replace_from", "replace_to", "track" };
            // the order of the indices hosts record: new parameters come after the old ones
            const auto ordered = static_cast<juce::AudioProcessor&> (p).getParameters();
            expectEquals (ordered.size(), expected.size() + taskSettings.size());
            auto all = expected;
            all.addArray (taskSettings);
            for (int i = 0; i < juce::jmin (ordered.size(), all.size()); ++i)
                if (auto* withId = dynamic_cast<juce::AudioProcessorParameterWithID*> (ordered[i]))
                    expectEquals (withId->getParameterID(), all[i]);
            for (const auto& id : all)
            {
                auto* param = p.getValueTreeState().getParameter (id);
                expect (param != nullptr, id);
                if (param != nullptr)
                {
                    expect (param->isAutomatable() == expected.contains (id), id);
                    expectEquals (param->getVersionHint(), 1, id);
                }
            }
            // Task and Track name what the engine takes, in its order
            auto* task = dynamic_cast<juce::AudioParameterChoice*> (p.getValueTreeState().getParameter ("task"));
            auto* track = dynamic_cast<juce::AudioParameterChoice*> (p.getValueTreeState().getParameter ("track"));
            expect (task != nullptr && track != nullptr);
            if (task != nullptr && track != nullptr)
            {
                expectEquals (task->choices.joinIntoString (","), juce::String ("Continue,Replace,Transform,Extract,Add a part"));
                for (int i = 0; i < kNumTaskChoices; ++i)
                    expectEquals (taskWireName (i), juce::String (kTaskChoices[i].wireName));
                expectEquals (track->choices.size(), (int) std::size (protocol::track::kTrackNames));
                expectEquals (track->getCurrentChoiceName(), juce::String ("Drums"));
                expectEquals (trackLabel (1), juce::String ("Backing vocals"));
            }
            // Run task counts presses like Generate
            const auto runs = p.getParameters().runTask.getPressCount();
            p.getParameters().runTask.setValueNotifyingHost (1.0f);
            p.getParameters().runTask.setValueNotifyingHost (0.0f);
            expectEquals ((int) (p.getParameters().runTask.getPressCount() - runs), 1);
            expectEquals (p.getParameters().length.load(), (float) kDefaultLengthIndex);

            // Key: Off, the twelve major keys, the twelve minor keys, named as the engine takes them
            auto* key = dynamic_cast<juce::AudioParameterChoice*> (p.getValueTreeState().getParameter ("key"));
            expect (key != nullptr);
            if (key != nullptr)
            {
                expectEquals (key->choices.size(), 25);
                expectEquals (key->getIndex(), 0, "Off unless the user picks a key");
                expectEquals (key->choices[0], juce::String ("Off"));
                expectEquals (key->choices[1], juce::String ("C major"));
                expectEquals (key->choices[7], juce::String ("F# major"));
                expectEquals (key->choices[13], juce::String ("C minor"));
                expectEquals (key->choices[22], juce::String ("A minor"));
            }
            expectEquals (keyWireName (0), juce::String());
            expectEquals (keyWireName (7), juce::String ("F#"));
            expectEquals (keyWireName (10), juce::String ("A"));
            expectEquals (keyWireName (16), juce::String ("Ebm"));
            expectEquals (keyWireName (22), juce::String ("Am"));
            expectEquals (keyWireName (25), juce::String());
            // Loudness: LUFS, the engine's default
            auto* loudness = dynamic_cast<juce::AudioParameterFloat*> (p.getValueTreeState().getParameter ("loudness"));
            expect (loudness != nullptr);
            if (loudness != nullptr)
            {
                expectEquals (loudness->get(), -14.0f);
                expectEquals (loudness->range.start, -30.0f);
                expectEquals (loudness->range.end, -6.0f);
                expectEquals (loudness->getLabel(), juce::String ("LUFS"));
            }

            auto& trigger = p.getParameters().generate;
            const auto before = trigger.getPressCount();
            trigger.setValueNotifyingHost (1.0f);
            trigger.setValueNotifyingHost (1.0f); // held: still one press
            trigger.setValueNotifyingHost (0.0f);
            trigger.setValueNotifyingHost (1.0f);
            trigger.setValueNotifyingHost (0.0f);
            expectEquals ((int) (trigger.getPressCount() - before), 2);
        }

        beginTest ("requests carry the host's tempo, time signature and sample rate");
        {
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            head.set (97.0, 3, 4, 0.0, true);
            p.setPlayHead (&head);
            p.prepareToPlay (44100.0, 512);
            renderBlock (p, 512);
            setParam (p, ParamIDs::length, 3.0f); // "2 bars"
            setParam (p, ParamIDs::variation, 5.0f);
            setParam (p, ParamIDs::kind, 1.0f);
            setParam (p, ParamIDs::pitch, -3.0f);
            setParam (p, ParamIDs::quality, 30.0f);
            p.setPrompt ("dusty breakbeat");
            p.setModel ("default");

            const auto s = p.currentSettings();
            expectEquals (s.tempoBpm, 97.0);
            expectEquals (s.meterNumerator, 3);
            expectEquals (s.meterDenominator, 4);
            expectEquals (s.sampleRate, 44100);
            expectEquals (s.bars, 2.0);
            expectEquals (s.variation, 5);
            expect (s.isLoop);
            expectEquals (s.pitchSemitones, -3.0);
            expectEquals (s.steps, 30);
            expectEquals (s.prompt, juce::String ("dusty breakbeat"));
            expect (s.key.isEmpty(), "Key Off: no key asked");
            expectEquals (s.loudnessLufs, -14.0);
            setParam (p, ParamIDs::key, 22.0f); // A minor
            setParam (p, ParamIDs::loudness, -18.5f);
            expectEquals (p.currentSettings().key, juce::String ("Am"));
            expectEquals (p.currentSettings().loudnessLufs, -18.5);

            setParam (p, ParamIDs::length, 0.0f); // "1 beat" in 3/4: a third of a bar
            expectWithinAbsoluteError (p.currentSettings().bars, 1.0 / 3.0, 1.0e-9);
            head.set (140.0, 6, 8, 0.0, true);
            renderBlock (p, 512);
            expectWithinAbsoluteError (p.currentSettings().bars, 1.0 / 3.0, 1.0e-9, "a beat is a quarter note: a third of a bar of 6/8");
            head.set (140.0, 7, 8, 0.0, true);
            renderBlock (p, 512);
            expectEquals (p.currentSettings().tempoBpm, 140.0);
            expectEquals (p.currentSettings().meterNumerator, 7);
            expectEquals (p.currentSettings().meterDenominator, 8);
            expectWithinAbsoluteError (p.currentSettings().bars, 1.0 / 3.5, 1.0e-9, "a quarter note of a 3.5-quarter bar");
            p.setPlayHead (nullptr);
        }

        beginTest ("a MIDI note plays the one-shot; other notes pitch it relative to the root");
        {
            LoopBridgeProcessor p;
            p.prepareToPlay (48000.0, 512);
            const auto sample = decode (test::makeWav (48000.0, 4800, 1, 0.0, 120.0, 1.0, 60, false));
            p.publishSample (sample);

            auto out = renderBlock (p, 512, noteOn (60));
            for (int i = 0; i < 512; i += 37)
                expectWithinAbsoluteError (out.getSample (0, i), sample->audio.getSample (0, i), 1.0e-6f);
            expectWithinAbsoluteError (out.getSample (1, 100), sample->audio.getSample (0, 100), 1.0e-6f); // mono to both sides

            LoopBridgeProcessor q;
            q.prepareToPlay (48000.0, 512);
            q.publishSample (sample);
            out = renderBlock (q, 512, noteOn (72, 0.5f));
            const auto velocity = juce::MidiMessage::noteOn (1, 72, 0.5f).getFloatVelocity(); // 64/127 on the wire
            for (int i = 1; i < 512; i += 41)
                expectWithinAbsoluteError (out.getSample (0, i), velocity * sample->audio.getSample (0, 2 * i), 1.0e-5f);

            // It rings out to its end and then stops.
            for (int block = 0; block < 10; ++block)
                out = renderBlock (q, 512);
            expectEquals (out.getMagnitude (0, 512), 0.0f);
            expectEquals (q.getActiveVoices(), 0);
        }

        beginTest ("Loop mode follows the host transport, bar-aligned");
        {
            expectWithinAbsoluteError (loopPhaseBeats (TransportState { true, 120.0, 15.5, true, 15.0, true, 5, true, 3, 4 }, 4.0), 3.5, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (TransportState { true, 120.0, 9.0, true, 0.0, false, 0, false, 4, 4 }, 4.0), 1.0, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (TransportState { true, 120.0, -1.0, true, 0.0, false, 0, false, 4, 4 }, 4.0), 3.0, 1.0e-9);

            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            setParam (p, ParamIDs::kind, 1.0f);
            // 4 beats at 120 BPM = 2 s = 96000 frames, a ramp so each position has its own value
            const auto loop = decode (test::makeWav (48000.0, 96000, 2, 0.0, 120.0, 4.0, 60, true));
            p.publishSample (loop);

            head.set (120.0, 4, 4, 5.0, false); // stopped: silence
            expectEquals (renderBlock (p, 512).getMagnitude (0, 512), 0.0f);

            head.set (120.0, 4, 4, 5.0, true); // bar 2, beat 2: one beat into the loop
            const auto out = renderBlock (p, 512, noteOn (60)); // a note does not double the locked loop
            for (int i = 200; i < 512; i += 50)
                expectWithinAbsoluteError (out.getSample (0, i), loop->audio.getSample (0, 24000 + i), 1.0e-4f);

            // at another tempo the loop still spans its 4 beats: position scales with the host's tempo
            head.set (60.0, 4, 4, 2.0, true);
            const auto slow = renderBlock (p, 512);
            for (int i = 200; i < 512; i += 50)
                expectWithinAbsoluteError (slow.getSample (0, i), loop->audio.getSample (0, 48000 + i / 2), 1.0e-4f);
            p.setPlayHead (nullptr);
        }

        beginTest ("Loop mode plays sample-continuously in a host that rounds its song position (as Ardour does)");
        {
            // Ardour reports the song position rounded to 1/1920 quarter note: at 120 BPM and
            // 48 kHz up to 6 frames off at each block's start. The loop must not follow that jitter.
            constexpr double rate = 48000.0, bpm = 120.0, ticksPerQuarter = 1920.0;
            const auto roundedPpq = [&] (juce::int64 frame) {
                return std::round ((double) frame / rate * bpm / 60.0 * ticksPerQuarter) / ticksPerQuarter;
            };
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (rate, 1024);
            setParam (p, ParamIDs::kind, 1.0f);
            // 4 beats at 120 BPM; a 1 kHz sine moves by up to 0.065 a frame, so a frame's slip shows
            const auto loop = decode (test::makeWav (rate, 96000, 1, 1000.0, bpm, 4.0, 60, true));
            p.publishSample (loop);
            const auto& source = loop->audio;

            // Hosts' block sizes vary; these never divide the loop, so block starts fall anywhere.
            const int blockSizes[] = { 512, 441, 1024, 37, 700 };
            juce::int64 frame = 0;
            float worst = 0.0f, worstAtBlockStart = 0.0f;
            juce::int64 roundedAway = 0;
            for (int block = 0; frame < 3 * 96000; ++block) // three times round the loop
            {
                const auto size = blockSizes[block % (int) std::size (blockSizes)];
                const auto ppq = roundedPpq (frame);
                roundedAway = std::max (roundedAway, (juce::int64) std::llround (std::abs (ppq * 60.0 / bpm * rate - (double) frame)));
                head.set (bpm, 4, 4, ppq, true);
                const auto out = renderBlock (p, size);
                for (int i = frame == 0 ? 128 : 0; i < size; ++i) // (past the 2 ms fade-in at the start)
                {
                    const auto error = std::abs (out.getSample (0, i) - source.getSample (0, (int) ((frame + i) % 96000)));
                    worst = std::max (worst, error);
                    if (i == 0)
                        worstAtBlockStart = std::max (worstAtBlockStart, error);
                }
                frame += size;
            }
            expect (roundedAway >= 5, "the host's rounding moves block starts by frames (" + juce::String (roundedAway) + ")");
            expectWithinAbsoluteError (worst, 0.0f, 1.0e-3f, "every frame is the loop's own, block starts included");
            expectWithinAbsoluteError (worstAtBlockStart, 0.0f, 1.0e-3f);

            // A relocation (the user clicks bar 9, beat 3) is followed at once, and the count goes on from there.
            const auto jumpedTo = (juce::int64) (34.0 * 60.0 / bpm * rate); // 34 quarter notes: two beats into the loop
            for (int block = 0; block < 4; ++block)
            {
                head.set (bpm, 4, 4, roundedPpq (jumpedTo + block * 512), true);
                const auto out = renderBlock (p, 512);
                for (int i = 0; i < 512; i += 7)
                    expectWithinAbsoluteError (out.getSample (0, i), source.getSample (0, (int) ((48000 + block * 512 + i) % 96000)), 1.0e-3f,
                                               "after the relocation, block " + juce::String (block));
            }

            // A cycle's wrap (back to bar 1) and a stop and restart each start the count afresh from the host.
            head.set (bpm, 4, 4, 0.0, true);
            auto out = renderBlock (p, 512);
            for (int i = 0; i < 512; i += 7)
                expectWithinAbsoluteError (out.getSample (0, i), source.getSample (0, i), 1.0e-3f, "after the cycle's wrap");
            head.set (bpm, 4, 4, 0.0, false);
            for (int block = 0; block < 4; ++block)
                renderBlock (p, 512); // stopped: the loop fades out
            head.set (bpm, 4, 4, 1.0, true); // restarted a beat in
            renderBlock (p, 512);
            head.set (bpm, 4, 4, roundedPpq (24000 + 512), true);
            out = renderBlock (p, 512);
            for (int i = 0; i < 512; i += 7)
                expectWithinAbsoluteError (out.getSample (0, i), source.getSample (0, 24512 + i), 1.0e-3f, "after a stop and a restart");
            p.setPlayHead (nullptr);
        }

        beginTest ("Loop mode starts on the exact frame where a roll begins on rounded song positions (Ardour's export, as measured)");
        {
            // What Ardour 7.3 handed the plugin when exporting from bar 1 at 128 BPM and 48 kHz:
            // the roll starts 1776 frames before the song (blocks of 1024, 752, then 272 frames up
            // to the next 1024-frame cycle), the song position is rounded to 1/1920 quarter note
            // (-1781.25 frames for the first block, 5.25 frames early) and the sample position
            // reads 0 until the song starts (JUCE's VST3 wrapper). A loop whose phase is taken
            // once from that first rounded position and then counted on plays 5.25 frames late.
            constexpr double rate = 48000.0, bpm = 128.0, ticksPerQuarter = 1920.0;
            constexpr int loopFrames = 90000; // 4 beats at 128 BPM
            const auto roundedPpq = [&] (juce::int64 frame) {
                return std::round ((double) frame / rate * bpm / 60.0 * ticksPerQuarter) / ticksPerQuarter;
            };
            expectWithinAbsoluteError (roundedPpq (-1776) * 60.0 / bpm * rate, -1781.25, 1.0e-6, "the measured first position");
            expectWithinAbsoluteError (roundedPpq (272), 0.011979167, 1.0e-9, "the measured position of the first full block");

            const auto loop = decode (test::makeWav (rate, loopFrames, 1, 1000.0, bpm, 4.0, 60, true));
            const auto& source = loop->audio;
            // the frames from `firstFrame` on that differ from the loop's own by more than the interpolation's error
            const auto play = [&] (juce::int64 start, std::initializer_list<int> firstBlocks, juce::int64 firstFrame, bool withSamplePosition) {
                LoopBridgeProcessor p;
                test::TestPlayHead head;
                p.setPlayHead (&head);
                p.prepareToPlay (rate, 1024);
                setParam (p, ParamIDs::kind, 1.0f);
                p.publishSample (loop);
                auto frame = start;
                auto sizes = std::vector<int> (firstBlocks);
                int wrong = 0;
                while (frame < firstFrame + 2 * loopFrames)
                {
                    const auto size = sizes.size() > 0 ? sizes.front() : 1024;
                    if (! sizes.empty())
                        sizes.erase (sizes.begin());
                    head.set (bpm, 4, 4, roundedPpq (frame), true);
                    if (withSamplePosition)
                        head.setTimeInSamples (frame);
                    const auto out = renderBlock (p, size);
                    for (int i = 0; i < size; ++i)
                        if (frame + i >= firstFrame)
                        {
                            const auto expected = source.getSample (0, (int) (((frame + i) % loopFrames + loopFrames) % loopFrames));
                            wrong += std::abs (out.getSample (0, i) - expected) > 1.0e-3f ? 1 : 0;
                        }
                    frame += size;
                }
                p.setPlayHead (nullptr);
                return wrong;
            };
            expectEquals (play (-1776, { 1024, 752, 272 }, 0, true), 0, "every frame from the song's start is the loop's own");
            // a roll started mid-song, off the tick grid (its position rounds 4.9 frames early): exact from its first block (past the fade-in)
            expectWithinAbsoluteError (roundedPpq (1000001) * 60.0 / bpm * rate - 1000001.0, -4.90625, 1.0e-6);
            expectEquals (play (1000001, {}, 1000001 + 128, true), 0, "every frame of a roll started off the tick grid");
            // without a sample position the rounded song position is all there is: the count keeps its rounding
            expect (play (1000001, {}, 1000001 + 128, false) > loopFrames, "no sample position: the rounding stays");
        }

        beginTest ("Loop mode stays on bar lines after a meter change, from the last bar line alone (as VST3 hosts report it)");
        {
            // One bar of 3/4, then 4/4: bar lines at 0, 3, 7, 11, ... quarter notes.
            auto vst3 = [] (double ppq, double lastBarStart, int numerator, int denominator) {
                return TransportState { true, 120.0, ppq, true, lastBarStart, true, 0, false, numerator, denominator };
            };
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (3.0, 3.0, 4, 4), 4.0), 0.0, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (5.5, 3.0, 4, 4), 4.0), 2.5, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (7.0, 7.0, 4, 4), 4.0), 0.0, 1.0e-9);
            // a two-bar loop starts with its first bar on the first 4/4 bar, its second bar on the next
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (3.25, 3.0, 4, 4), 8.0), 0.25, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (7.5, 7.0, 4, 4), 8.0), 4.5, 1.0e-9);
            // one meter throughout: the same as counting from the song's start
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (10.5, 9.0, 3, 4), 6.0), 4.5, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (vst3 (8.25, 7.0, 7, 8), 7.0), 1.25, 1.0e-9);

            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            setParam (p, ParamIDs::kind, 1.0f);
            const auto loop = decode (test::makeWav (48000.0, 96000, 2, 0.0, 120.0, 4.0, 60, true));
            p.publishSample (loop);
            head.setWithBarStart (120.0, 4, 4, 3.0, 3.0, true); // the first 4/4 bar begins
            const auto out = renderBlock (p, 512);
            for (int i = 200; i < 512; i += 50)
                expectWithinAbsoluteError (out.getSample (0, i), loop->audio.getSample (0, i), 1.0e-4f, "the loop's start on the bar line");
            p.setPlayHead (nullptr);
        }

        beginTest ("Loop mode in 6/8 and 7/8: loops of whole bars in quarter notes start on the bar lines");
        {
            // 6/8: bar lines every 3 quarter notes
            auto sixEight = [] (double ppq, double lastBarStart) {
                return TransportState { true, 120.0, ppq, true, lastBarStart, true, 0, false, 6, 8 };
            };
            expectWithinAbsoluteError (loopPhaseBeats (sixEight (3.0, 3.0), 3.0), 0.0, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (sixEight (7.5, 6.0), 3.0), 1.5, 1.0e-9);
            expectWithinAbsoluteError (loopPhaseBeats (sixEight (9.0, 9.0), 6.0), 3.0, 1.0e-9); // bar 4: the loop's second bar
            expectWithinAbsoluteError (loopPhaseBeats (sixEight (12.0, 12.0), 6.0), 0.0, 1.0e-9);

            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            setParam (p, ParamIDs::kind, 1.0f);
            // what the engine sends for one bar of 6/8 at 120 BPM: 3 quarter notes, 1.5 s
            const auto bar = decode (test::makeWav (48000.0, 72000, 1, 0.0, 120.0, 3.0, 60, true));
            p.publishSample (bar);
            for (const auto barLine : { 3.0, 9.0, 27.0 })
            {
                head.set (120.0, 6, 8, barLine, true);
                const auto out = renderBlock (p, 512);
                for (int i = 200; i < 512; i += 50)
                    expectWithinAbsoluteError (out.getSample (0, i), bar->audio.getSample (0, i), 1.0e-4f,
                                               "the loop's start on the bar line at " + juce::String (barLine));
            }
            head.set (120.0, 6, 8, 10.5, true); // half way through bar 4
            auto out = renderBlock (p, 512);
            for (int i = 200; i < 512; i += 50)
                expectWithinAbsoluteError (out.getSample (0, i), bar->audio.getSample (0, 36000 + i), 1.0e-4f);

            // 7/8: one bar is 3.5 quarter notes, which the file's acid chunk can only call 4 beats
            const auto sevenEight = decode (test::makeWav (48000.0, 84000, 1, 0.0, 120.0, 3.5, 60, true));
            p.publishSample (sevenEight);
            renderBlock (p, 512);
            for (const auto barLine : { 3.5, 7.0, 35.0 })
            {
                head.set (120.0, 7, 8, barLine, true);
                out = renderBlock (p, 512);
                for (int i = 200; i < 512; i += 50)
                    expectWithinAbsoluteError (out.getSample (0, i), sevenEight->audio.getSample (0, i), 1.0e-4f,
                                               "the 7/8 loop's start on the bar line at " + juce::String (barLine));
            }
            p.setPlayHead (nullptr);
        }

        beginTest ("a new sample is heard in the very next block (Loop mode)");
        {
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            setParam (p, ParamIDs::kind, 1.0f);
            const auto a = decode (test::makeWav (48000.0, 96000, 1, 0.0, 120.0, 4.0, 60, true));
            const auto b = decode (test::makeWav (48000.0, 96000, 1, 440.0, 120.0, 4.0, 60, true));
            p.publishSample (a);
            head.set (120.0, 4, 4, 0.0, true);
            renderBlock (p, 512);
            p.publishSample (b);
            const double ppq = 512.0 / 48000.0 * 2.0;
            head.set (120.0, 4, 4, ppq, true);
            const auto out = renderBlock (p, 512);
            for (int i = 0; i < 512; i += 64)
                expectWithinAbsoluteError (out.getSample (0, i), b->audio.getSample (0, 512 + i), 1.0e-4f);
            expect (p.getPlayingSampleIdentity() == b.get());
            p.setPlayHead (nullptr);
        }

        beginTest ("state: parameters, prompts, model and the sample survive a reopen; Generate does not fire");
        {
            juce::MemoryBlock saved;
            const auto wav = test::makeWav (48000.0, 9600, 2, 220.0, 128.0, 1.0, 50, false);
            {
                LoopBridgeProcessor p;
                p.setPrompt ("808 kick, long tail");
                p.setMorphPrompt (u8"clap with reverb — wide");
                p.setModel ("dance-diffusion");
                setParam (p, ParamIDs::variation, 7.0f);
                setParam (p, ParamIDs::morph, 0.3f);
                setParam (p, ParamIDs::gain, -6.0f);
                setParam (p, ParamIDs::key, 16.0f); // Eb minor
                setParam (p, ParamIDs::loudness, -20.0f);
                SampleInfo info;
                info.key = "abc";
                info.renderKey = "render-abc";
                info.variation = 7;
                info.musicalKey = "Ebm";
                info.keyConfidence = 0.7;
                info.keyAsked = "Ebm";
                info.loudnessLufs = -20.0;
                p.publishSample (decode (wav, info));
                p.getParameters().generate.setValueNotifyingHost (1.0f); // saved while "pressed"
                p.getStateInformation (saved);
            }
            LoopBridgeProcessor q;
            const auto pressesBefore = q.getParameters().generate.getPressCount();
            q.setStateInformation (saved.getData(), (int) saved.getSize());
            expectEquals ((int) q.getParameters().generate.getPressCount(), (int) pressesBefore);
            const auto session = q.getSession();
            expectEquals (session.prompt, juce::String ("808 kick, long tail"));
            expectEquals (session.morphPrompt, juce::String (u8"clap with reverb — wide"));
            expectEquals (session.model, juce::String ("dance-diffusion"));
            expectEquals (q.getParameters().getVariation(), 7);
            expectWithinAbsoluteError (q.getParameters().morph.load(), 0.3f, 1.0e-6f);
            expectWithinAbsoluteError (q.getParameters().gainDb.load(), -6.0f, 1.0e-4f);
            expectEquals (q.getParameters().getKeyIndex(), 16);
            expectEquals (q.currentSettings().key, juce::String ("Ebm"));
            expectWithinAbsoluteError (q.getParameters().loudnessLufs.load(), -20.0f, 1.0e-4f);
            const auto restored = q.getLatestSample();
            expect (restored != nullptr && restored->wavBytes == wav, "the exact WAV bytes");
            expectEquals (restored->renderKey, juce::String ("render-abc"));
            expectEquals (restored->rootNote, 50);
            expectEquals (restored->variation, 7);
            // what the sample was conformed to, so the restored project asks for no re-conform
            expectEquals (restored->musicalKey, juce::String ("Ebm"));
            expectEquals (restored->keyAsked, juce::String ("Ebm"));
            expectEquals (restored->keyConfidence, 0.7);
            expectEquals (restored->loudnessLufs, -20.0);

            q.prepareToPlay (48000.0, 256);
            setParam (q, ParamIDs::gain, 0.0f);
            renderBlock (q, 256); // let the gain settle at 0 dB
            renderBlock (q, 2048);
            const auto out = renderBlock (q, 256, noteOn (50));
            for (int i = 0; i < 256; i += 17)
                expectWithinAbsoluteError (out.getSample (1, i), restored->audio.getSample (1, i), 1.0e-6f);

            q.setStateInformation ("garbage", 7); // ignored, nothing lost
            expectEquals (q.getSession().prompt, juce::String ("808 kick, long tail"));
        }

        beginTest ("drag-out writes the engine's WAV bytes; the audio prompt takes WAVs only");
        {
            LoopBridgeProcessor p;
            expect (p.writeCurrentSampleForDrag() == juce::File(), "nothing to drag before a sample exists");
            const auto wav = test::makeWav (44100.0, 4410, 2, 110.0, 96.0, 1.0, 45, false);
            SampleInfo info;
            info.fileName = "kick_96bpm.wav";
            p.publishSample (decode (wav, info));
            const auto file = p.writeCurrentSampleForDrag();
            expectEquals (file.getFileName(), juce::String ("kick_96bpm.wav"));
            juce::MemoryBlock onDisk;
            expect (file.loadFileAsData (onDisk) && onDisk == wav, "the dragged file is the conformed WAV, byte for byte");
            file.deleteFile();

            const auto folder = juce::File::createTempFile ("prompt");
            folder.createDirectory();
            const auto good = folder.getChildFile ("prompt.wav");
            const auto bad = folder.getChildFile ("notes.wav");
            good.replaceWithData (wav.getData(), wav.getSize());
            bad.replaceWithText ("not audio");
            expect (p.setAudioPromptFile (bad).isNotEmpty());
            expect (p.getSession().audioPrompt.isEmpty(), "a bad file leaves no audio prompt");
            expectEquals (p.setAudioPromptFile (good), juce::String());
            expect (p.getSession().audioPrompt == wav);
            expect (p.currentSettings().hasAudioPrompt);
            p.clearAudioPrompt();
            expect (! p.currentSettings().hasAudioPrompt);
            folder.deleteRecursively();
        }

        beginTest ("processBlock never allocates: notes, loops, transport and a sample arriving");
        {
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.prepareToPlay (48000.0, 512);
            const auto one = decode (test::makeWav (48000.0, 4800, 2, 330.0, 120.0, 1.0, 60, false));
            const auto loop = decode (test::makeWav (48000.0, 96000, 2, 0.0, 120.0, 4.0, 60, true));
            p.publishSample (one);
            juce::AudioBuffer<float> out (2, 512);
            juce::MidiBuffer midi;
            midi.ensureSize (4096);
            const auto before = test::AllocationCounter::realtimeAllocations.load();
            for (int block = 0; block < 200; ++block)
            {
                midi.clear();
                if (block % 5 == 0)
                    midi.addEvent (juce::MidiMessage::noteOn (1, 48 + block % 24, 0.8f), block % 512);
                if (block % 7 == 0)
                    midi.addEvent (juce::MidiMessage::noteOff (1, 48 + (block - 5) % 24), 300);
                if (block == 100)
                    setParam (p, ParamIDs::kind, 1.0f);
                if (block == 120)
                    p.publishSample (loop); // arrives from "the network thread" between blocks
                head.set (120.0, 4, 4, block * 512.0 / 48000.0 * 2.0, block > 50);
                test::AllocationCounter::Scope realtime;
                p.processBlock (out, midi);
            }
            expectEquals (test::AllocationCounter::realtimeAllocations.load() - before, 0, "allocations on the audio thread");
            expect (p.getPlayingSampleIdentity() == loop.get());
            p.setPlayHead (nullptr);
        }

        beginTest ("no engine: a clear status, and the plugin keeps playing what it has");
        {
            LoopBridgeProcessor p;
            p.setEndpoint ("tcp://127.0.0.1:9"); // nothing listens there
            p.prepareToPlay (48000.0, 512);
            const auto sample = decode (test::makeWav (48000.0, 48000, 1, 440.0));
            p.publishSample (sample);
            p.getParameters().generate.setValueNotifyingHost (1.0f);
            p.getParameters().generate.setValueNotifyingHost (0.0f);

            const auto deadline = juce::Time::getMillisecondCounter() + 8000;
            while (p.getEngineStatus().connection != EngineStatus::Connection::notRunning && juce::Time::getMillisecondCounter() < deadline)
                juce::Thread::sleep (50);
            const auto status = p.getEngineStatus();
            expect (status.connection == EngineStatus::Connection::notRunning);
            expectEquals (status.endpoint, juce::String ("tcp://127.0.0.1:9"));
            expect (status.activity.contains ("waiting for the engine"), status.activity);
            const auto out = renderBlock (p, 512, noteOn (60));
            expectWithinAbsoluteError (out.getSample (0, 100), sample->audio.getSample (0, 100), 1.0e-6f);

            LoopBridgeEditor editor (p);
            editor.refresh();
            const auto image = editor.createComponentSnapshot (editor.getLocalBounds());
            expectEquals (image.getWidth(), editor.getWidth());
            bool drewSomething = false;
            for (int y = 0; y < image.getHeight() && ! drewSomething; y += 5)
                for (int x = 0; x < image.getWidth() && ! drewSomething; x += 5)
                    drewSomething = image.getPixelAt (x, y) != image.getPixelAt (0, 0);
            expect (drewSomething, "the editor paints headless");

            // The drop zone: a file is varied (an audio prompt, WAV) or fitted to the song (any audio file)
            const auto folder = juce::File::createTempFile ("drops");
            folder.createDirectory();
            const auto wavFile = folder.getChildFile ("hit.wav");
            const auto flacFile = folder.getChildFile ("break.flac");
            wavFile.replaceWithData (sample->wavBytes.getData(), sample->wavBytes.getSize());
            flacFile.replaceWithData (sample->wavBytes.getData(), sample->wavBytes.getSize());
            expect (! p.getDropFits(), "Vary it until the user says otherwise");
            expect (editor.isInterestedInFileDrag ({ wavFile.getFullPathName() }));
            expect (! editor.isInterestedInFileDrag ({ flacFile.getFullPathName() }), "an audio prompt is a WAV");
            editor.filesDropped ({ wavFile.getFullPathName() }, 0, 0);
            expectEquals (p.getSession().audioPromptName, juce::String ("hit.wav"));
            expectEquals ((int) p.fitFileCount(), 0);

            p.setDropFits (true);
            editor.refresh();
            expect (editor.isInterestedInFileDrag ({ flacFile.getFullPathName() }), "a file to fit goes as it is");
            editor.filesDropped ({ flacFile.getFullPathName() }, 0, 0);
            expectEquals ((int) p.fitFileCount(), 1);
            expectEquals (p.getSession().audioPromptName, juce::String ("hit.wav"), "the audio prompt stays as it was");
            folder.deleteRecursively();
        }
    }
};

static ProcessorTests processorTests;

} // namespace loopbridge
