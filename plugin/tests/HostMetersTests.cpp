// The shared table of host meters (tests/data/host_meters.json; engine/host.py's tests and the
// device's read it too), row by row, for what the plugin still does with a meter: it sends the
// host's facts as they are, and it loops the engine's reply over the length the reply gives.
// The meter arithmetic itself is the engine's and is not repeated here.
#include "PluginProcessor.h"
#include "TestUtilities.h"

#ifndef LOOPBRIDGE_HOST_METERS_JSON
    #error "LOOPBRIDGE_HOST_METERS_JSON (the path of tests/data/host_meters.json) is set by cmake/Tests.cmake"
#endif

namespace loopbridge
{
namespace
{
struct MeterRow
{
    int numerator = 0, denominator = 0;
    double bars = 0.0, tempoBpm = 0.0;
    int sampleRate = 0;
    double quarterNotes = 0.0;
    int frames = 0;

    juce::String describe() const
    {
        return juce::String (bars) + " bars of " + juce::String (numerator) + "/" + juce::String (denominator) + " at "
               + juce::String (tempoBpm) + " BPM, " + juce::String (sampleRate) + " Hz";
    }
};

/** The table's rows; an empty list and `error` set when the file is missing or not the table. */
std::vector<MeterRow> readTable (const juce::File& file, juce::String& error)
{
    std::vector<MeterRow> rows;
    if (! file.existsAsFile())
    {
        error = file.getFullPathName() + " does not exist";
        return rows;
    }
    juce::var table;
    const auto parsed = juce::JSON::parse (file.loadFileAsString(), table);
    if (parsed.failed())
    {
        error = file.getFullPathName() + " is not JSON: " + parsed.getErrorMessage();
        return rows;
    }
    const auto* cases = table["cases"].getArray();
    if (cases == nullptr)
    {
        error = file.getFullPathName() + " has no \"cases\" list";
        return rows;
    }
    const char* required[] = { "numerator", "denominator", "bars", "tempo_bpm", "sample_rate", "quarter_notes", "frames" };
    for (int i = 0; i < cases->size(); ++i)
    {
        const auto& item = cases->getReference (i);
        for (const auto* name : required)
            if (! (item[name].isInt() || item[name].isInt64() || item[name].isDouble()))
            {
                error = "cases[" + juce::String (i) + "]." + name + " is missing or not a number";
                return {};
            }
        MeterRow row;
        row.numerator = (int) item["numerator"];
        row.denominator = (int) item["denominator"];
        row.bars = (double) item["bars"];
        row.tempoBpm = (double) item["tempo_bpm"];
        row.sampleRate = (int) item["sample_rate"];
        row.quarterNotes = (double) item["quarter_notes"];
        row.frames = (int) item["frames"];
        rows.push_back (row);
    }
    return rows;
}

/** `header` as the engine receives it: encoded and decoded again, so the JSON types are checked too. */
juce::var overTheWire (const juce::var& header)
{
    juce::MemoryBlock bytes;
    codec::DecodeError error;
    juce::var decoded;
    if (! codec::encodeHeader (header, bytes, error) || ! codec::decodeHeader (bytes.getData(), bytes.getSize(), decoded, error))
        return {};
    return decoded;
}
} // namespace

class HostMetersTests final : public juce::UnitTest
{
public:
    HostMetersTests() : juce::UnitTest ("Host meters (tests/data/host_meters.json)", "loopbridge") {}

    void runTest() override
    {
        const juce::File tableFile (LOOPBRIDGE_HOST_METERS_JSON);
        juce::String error;
        const auto rows = readTable (tableFile, error);

        beginTest ("the shared table is there and readable");
        expect (error.isEmpty(), error);
        expectGreaterOrEqual ((int) rows.size(), 10, "rows in " + tableFile.getFullPathName());

        beginTest ("every request header carries the host's meter, bars, tempo and rate as they are, and no beats_per_bar");
        for (const auto& row : rows)
        {
            codec::RequestSettings s;
            s.prompt = "kick loop";
            s.isLoop = true;
            s.meterNumerator = row.numerator;
            s.meterDenominator = row.denominator;
            s.bars = row.bars;
            s.tempoBpm = row.tempoBpm;
            s.sampleRate = row.sampleRate;
            const juce::var headers[] = { codec::makeRequestHeader (protocol::type::kGenerate, "generate-1", s),
                                          codec::makeRequestHeader (protocol::type::kVariation, "variation-1", s),
                                          codec::makeRequestHeader (protocol::type::kVariation, "prefetch-1", s, true),
                                          codec::makeConformHeader ("conform-1", "render", s) };
            for (const auto& made : headers)
            {
                const auto h = overTheWire (made);
                const auto what = row.describe() + ", " + made["id"].toString();
                expect (h.isObject(), what + ": the header encodes");
                expect (h["meter_numerator"].isInt() && h["meter_denominator"].isInt() && h["sample_rate"].isInt(),
                        what + ": whole numbers on the wire");
                expectEquals ((int) h["meter_numerator"], row.numerator, what);
                expectEquals ((int) h["meter_denominator"], row.denominator, what);
                expectEquals ((double) h["bars"], row.bars, what + ": bars of the host's meter");
                expectEquals ((double) h["tempo_bpm"], row.tempoBpm, what);
                expectEquals ((int) h["sample_rate"], row.sampleRate, what);
                expect (! h.hasProperty ("beats_per_bar"), what + ": the engine works out its own bar");
            }
        }

        beginTest ("a reply of `quarter_notes` beats at the row's tempo loops over exactly `frames` frames");
        {
            // The path a reply takes to the speakers: parseEngineMessage, Sample::fromWav (what
            // the client's decodeFirstSample calls), the lock-free hand-over and processBlock's
            // transport-locked loop. The sample is a ramp, so each output value says which frame
            // of the loop is playing.
            LoopBridgeProcessor p;
            test::TestPlayHead head;
            p.setPlayHead (&head);
            p.getValueTreeState().getParameter (ParamIDs::kind.getParamID())->setValueNotifyingHost (1.0f); // Loop
            constexpr int block = 64;
            juce::AudioBuffer<float> out (2, block);
            juce::MidiBuffer midi;

            for (const auto& row : rows)
            {
                const auto what = row.describe();
                const auto wav = test::makeWav (row.sampleRate, row.frames, 1, 0.0, row.tempoBpm, row.quarterNotes, 60, true);
                juce::var reply;
                codec::DecodeError decodeError;
                const auto text = juce::String (R"({"v":1,"type":"reply","re":"generate","id":"generate-1","samples":[{"key":"k","kind":"loop","tempo_bpm":)")
                                  + juce::String (row.tempoBpm, 6) + R"(,"beats":)" + juce::String (row.quarterNotes, 6)
                                  + R"(,"sample_rate":)" + juce::String (row.sampleRate) + R"(,"frames":)" + juce::String (row.frames)
                                  + R"(,"frame":1}]})";
                codec::EngineMessage message;
                const bool parsed = codec::decodeHeader (text.toRawUTF8(), text.getNumBytesAsUTF8(), reply, decodeError)
                                    && codec::parseEngineMessage (reply, 2, message, decodeError) && message.samples.size() == 1;
                expect (parsed, what + ": " + decodeError.message);
                if (! parsed)
                    continue;
                juce::String wavError;
                std::shared_ptr<const Sample> sample (Sample::fromWav (wav.getData(), wav.getSize(), message.samples.front().info, wavError));
                expect (sample != nullptr, what + ": " + wavError);
                if (sample == nullptr)
                    continue;
                expectEquals ((int) (sample->loopEnd - sample->loopStart), row.frames, what + ": the loop is the whole sample");
                expectEquals (sample->getLoopBeats(), row.quarterNotes, what + ": the reply's beats, not the acid chunk's whole ones");

                p.prepareToPlay (row.sampleRate, block);
                p.publishSample (sample);
                const auto lastFrame = sample->audio.getSample (0, row.frames - 1);
                const auto firstFrame = sample->audio.getSample (0, 0);
                // A quarter of one frame's step of the ramp: tells neighbouring frames apart.
                const auto tolerance = 0.25f * std::abs (lastFrame - firstFrame) / (float) (row.frames - 1) + 2.0e-7f;
                const auto playingAt = [&] (double ppq) {
                    head.set (row.tempoBpm, row.numerator, row.denominator, ppq, true);
                    out.clear();
                    p.processBlock (out, midi);
                    return out.getSample (0, 0);
                };
                for (int i = 0; i < 4; ++i) // the loop's fade-in is over
                    playingAt (0.0);

                expectWithinAbsoluteError (playingAt (0.0), firstFrame, tolerance, what + ": the first frame on the bar line");
                const auto beatsPerFrame = row.quarterNotes / row.frames;
                expectWithinAbsoluteError (playingAt ((row.frames - 1) * beatsPerFrame), lastFrame, tolerance,
                                           what + ": the last frame one frame before the loop's end");
                expectWithinAbsoluteError (playingAt (row.quarterNotes), firstFrame, tolerance,
                                           what + ": the first frame again after `frames` frames");
                expectWithinAbsoluteError (playingAt (2.0 * row.quarterNotes + 0.5 * beatsPerFrame), 0.5f * (firstFrame + sample->audio.getSample (0, 1)),
                                           tolerance, what + ": half a frame into the third time round");
            }
            p.setPlayHead (nullptr);
        }
    }
};

static HostMetersTests hostMetersTests;

} // namespace loopbridge
