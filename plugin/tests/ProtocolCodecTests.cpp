// The protocol codec, table-driven, with garbage, empty and truncated input (bridge/protocol.py's
// decode_header is the reference), and the WAV decoding of samples.
#include "ProtocolCodec.h"
#include "TestUtilities.h"

namespace loopbridge
{
namespace
{
juce::var decodeText (const juce::String& text, codec::DecodeError& error, bool& ok)
{
    juce::var header;
    ok = codec::decodeHeader (text.toRawUTF8(), text.getNumBytesAsUTF8(), header, error);
    return header;
}
} // namespace

class ProtocolCodecTests final : public juce::UnitTest
{
public:
    ProtocolCodecTests() : juce::UnitTest ("Protocol codec", "loopbridge") {}

    void runTest() override
    {
        beginTest ("decodeHeader accepts a well-formed header");
        {
            codec::DecodeError error;
            bool ok = false;
            const auto header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate","samples":[]})", error, ok);
            expect (ok, error.message);
            expectEquals (header["type"].toString(), juce::String ("reply"));
            expectEquals (header["id"].toString(), juce::String ("g-1"));
        }

        beginTest ("decodeHeader rejects garbage, empty, truncated and out-of-protocol headers");
        {
            struct Case
            {
                juce::String text;
                const char* code;
            };
            const Case cases[] = {
                { "", "malformed" },
                { "not json at all", "malformed" },
                { "{\"v\":1,\"type\":\"re", "malformed" }, // truncated
                { "[1,2,3]", "malformed" },
                { "\"reply\"", "malformed" },
                { "{\"type\":\"reply\"}", "malformed" },              // no version
                { "{\"v\":true,\"type\":\"reply\"}", "malformed" },   // a bool is not a version
                { "{\"v\":\"1\",\"type\":\"reply\"}", "malformed" },  // nor is a string
                { "{\"v\":1.5,\"type\":\"reply\"}", "malformed" },
                { "{\"v\":2,\"type\":\"reply\"}", "version_mismatch" },
                { "{\"v\":0,\"type\":\"reply\"}", "version_mismatch" },
                { "{\"v\":1}", "malformed" },                         // no type
                { "{\"v\":1,\"type\":\"\"}", "malformed" },
                { "{\"v\":1,\"type\":7}", "malformed" },
                { "{\"v\":1,\"type\":\"reply\",\"id\":5}", "malformed" },
                { "{\"v\":1,\"type\":\"reply\",\"id\":\"\"}", "malformed" },
                { "{\"v\":1,\"type\":\"reply\",\"id\":\"" + juce::String::repeatedString ("x", protocol::kMaxIdChars + 1) + "\"}", "malformed" },
            };
            for (const auto& c : cases)
            {
                codec::DecodeError error;
                bool ok = true;
                decodeText (c.text, error, ok);
                expect (! ok, "accepted: " + c.text.substring (0, 80));
                expectEquals (error.code, juce::String (c.code), c.text.substring (0, 80));
                expect (error.message.isNotEmpty());
            }
        }

        beginTest ("decodeHeader rejects invalid UTF-8 and oversized frames");
        {
            const char bad[] = { '{', '"', 'v', '"', ':', '1', ',', '"', 't', 'y', 'p', 'e', '"', ':', '"', (char) 0xff, (char) 0xfe, '"', '}' };
            juce::var header;
            codec::DecodeError error;
            expect (! codec::decodeHeader (bad, sizeof (bad), header, error));
            expectEquals (error.code, juce::String ("malformed"));

            juce::MemoryBlock huge ((size_t) protocol::kMaxHeaderBytes + 1, true);
            expect (! codec::decodeHeader (huge.getData(), huge.getSize(), header, error));
            expectEquals (error.code, juce::String ("too_large"));

            expect (! codec::decodeHeader (nullptr, 0, header, error));
            expectEquals (error.code, juce::String ("malformed"));
        }

        beginTest ("encodeHeader adds the version, round-trips and bounds the size");
        {
            juce::var header (new juce::DynamicObject());
            header.getDynamicObject()->setProperty ("type", "ping");
            header.getDynamicObject()->setProperty ("id", "p-1");
            juce::MemoryBlock out;
            codec::DecodeError error;
            expect (codec::encodeHeader (header, out, error), error.message);
            juce::var back;
            expect (codec::decodeHeader (out.getData(), out.getSize(), back, error), error.message);
            expectEquals ((int) back["v"], protocol::kProtocolVersion);
            expectEquals (back["id"].toString(), juce::String ("p-1"));

            header.getDynamicObject()->setProperty ("prompt", juce::String::repeatedString ("a", (int) protocol::kMaxHeaderBytes));
            expect (! codec::encodeHeader (header, out, error));
            expectEquals (error.code, juce::String ("too_large"));

            juce::var nan (new juce::DynamicObject());
            nan.getDynamicObject()->setProperty ("type", "generate");
            nan.getDynamicObject()->setProperty ("tempo_bpm", std::numeric_limits<double>::quiet_NaN());
            expect (! codec::encodeHeader (nan, out, error));
            expectEquals (error.code, juce::String ("malformed"));
        }

        beginTest ("request headers carry the protocol's field names and values");
        {
            codec::RequestSettings s;
            s.prompt = u8"warm pad, Fü";
            s.model = "default";
            s.isLoop = true;
            s.seed = 42;
            s.variation = 3;
            s.bars = 2.0;
            s.tempoBpm = 97.5;
            s.meterNumerator = 3;
            s.meterDenominator = 4;
            s.steps = 0;
            s.sampleRate = 44100;
            s.pitchSemitones = -2.0;
            juce::MemoryBlock out;
            codec::DecodeError error;
            expect (codec::encodeHeader (codec::makeRequestHeader (protocol::type::kVariation, "variation-7", s), out, error));
            juce::var h;
            expect (codec::decodeHeader (out.getData(), out.getSize(), h, error), error.message);
            expectEquals (h["type"].toString(), juce::String ("variation"));
            expectEquals (h["prompt"].toString(), s.prompt);
            expectEquals (h["kind"].toString(), juce::String ("loop"));
            expectEquals ((int) h["seed"], 42);
            expectEquals ((int) h["variation"], 3);
            expectEquals ((double) h["bars"], 2.0);
            expectEquals ((double) h["tempo_bpm"], 97.5);
            expect (h["meter_numerator"].isInt() && h["meter_denominator"].isInt(), "the meter travels as whole numbers");
            expectEquals ((int) h["meter_numerator"], 3);
            expectEquals ((int) h["meter_denominator"], 4);
            expect (! h.hasProperty ("beats_per_bar"), "the engine works out its bar from the meter");
            expectEquals ((int) h["sample_rate"], 44100);
            expectEquals ((double) h["pitch_semitones"], -2.0);
            expect (! h.hasProperty ("steps"), "steps 0 means the model's default and is left out");
            expect (! h.hasProperty ("morph_prompt") && ! h.hasProperty ("morph_amount"));
            expect (! h.hasProperty ("audio_prompt_frame"));
            expectEquals ((double) h["loudness_lufs"], protocol::kDefaultLoudnessLufs, "the engine's loudness unless asked otherwise");
            expect (! h.hasProperty ("key"), "no key: the engine keeps the key the sample was made in");

            s.steps = 25;
            s.morphPrompt = "glassy bell";
            s.morphAmount = 0.25;
            s.hasAudioPrompt = true;
            s.audioPromptStrength = 0.7;
            const auto h2 = codec::makeRequestHeader (protocol::type::kMorph, "morph-8", s);
            expectEquals ((int) h2["steps"], 25);
            expectEquals (h2["morph_prompt"].toString(), juce::String ("glassy bell"));
            expectEquals ((double) h2["morph_amount"], 0.25);
            expectEquals ((int) h2["audio_prompt_frame"], 1);
            expectEquals ((double) h2["audio_prompt_strength"], 0.7);

            const auto conform = codec::makeConformHeader ("conform-9", "abc123", s);
            expectEquals (conform["type"].toString(), juce::String ("conform"));
            expectEquals (conform["render_key"].toString(), juce::String ("abc123"));
            expectEquals ((double) conform["tempo_bpm"], 97.5);
            expectEquals ((double) conform["bars"], 2.0);
            expectEquals ((int) conform["meter_numerator"], 3);
            expectEquals ((int) conform["meter_denominator"], 4);
            expect (! conform.hasProperty ("beats_per_bar"));

            const auto fit = codec::makeConformFileHeader ("fit-10", "my break", s);
            expectEquals (fit["type"].toString(), juce::String ("conform_file"));
            expectEquals ((int) fit["audio_frame"], 1, "the file is binary frame 1");
            expectEquals (fit["name"].toString(), juce::String ("my break"));
            expectEquals ((double) fit["tempo_bpm"], 97.5);
            expectEquals ((double) fit["bars"], 2.0);
            expectEquals ((int) fit["meter_numerator"], 3);
            expectEquals ((int) fit["meter_denominator"], 4);
            expect (! fit.hasProperty ("kind"), "the engine tells a loop from a one-shot");
            expect (! fit.hasProperty ("beats_per_bar") && ! fit.hasProperty ("render_key"));

            // the song's key and the loudness go with every request that makes or fits a sample
            s.key = "F#m";
            s.loudnessLufs = -20.5;
            for (const auto& header : { codec::makeRequestHeader (protocol::type::kGenerate, "g-11", s), codec::makeConformHeader ("conform-12", "abc123", s),
                                        codec::makeConformFileHeader ("fit-13", "my break", s) })
            {
                expectEquals (header["key"].toString(), juce::String ("F#m"), header["type"].toString());
                expectEquals ((double) header["loudness_lufs"], -20.5, header["type"].toString());
            }

            expectEquals (codec::RequestSettings().sampleRate, protocol::kDefaultSampleRate, "the engine's rate until the host names one");
            expect (codec::RequestSettings().meterNumerator == 4 && codec::RequestSettings().meterDenominator == 4,
                    "4/4 until the host says otherwise");
        }

        beginTest ("a task's header: a generate of a loop with the sample as frame 1 and the task's own fields only");
        {
            codec::RequestSettings s;
            s.prompt = "rolling bass";
            s.model = "tiny-ace-step";
            s.tempoBpm = 240.0;
            s.morphPrompt = "never sent with a task";
            s.continueBars = 2.0;
            s.replaceFromBar = 1.0;
            s.replaceToBar = 1.5;
            s.track = "bass";
            s.audioPromptStrength = 0.3;
            const auto fieldsOf = [] (const juce::var& header) {
                juce::StringArray names;
                for (const auto& property : header.getDynamicObject()->getProperties())
                    names.add (property.name.toString());
                return names;
            };
            struct Case
            {
                const char* task;
                juce::StringArray own;
            };
            const Case cases[] = {
                { protocol::task::kContinue, { "continue_bars" } },
                { protocol::task::kReplace, { "replace_from_bar", "replace_to_bar" } },
                { protocol::task::kTransform, { "audio_prompt_strength" } },
                { protocol::task::kExtract, { "track" } },
                { protocol::task::kAdd, { "track" } },
            };
            const juce::StringArray taskFields { "continue_bars", "replace_from_bar", "replace_to_bar", "track", "audio_prompt_strength" };
            for (const auto& c : cases)
            {
                s.task = c.task;
                const auto header = codec::makeTaskHeader ("t-1", s);
                expectEquals (header["type"].toString(), juce::String ("generate"), c.task);
                expectEquals (header["task"].toString(), juce::String (c.task));
                expectEquals (header["kind"].toString(), juce::String ("loop"), "a task's result is a loop on the sample's grid");
                expectEquals ((int) header["audio_prompt_frame"], 1);
                expect (! header.hasProperty ("morph_prompt"));
                for (const auto& name : taskFields)
                    expect (header.hasProperty (name) == c.own.contains (name), juce::String (c.task) + " " + name);
                juce::MemoryBlock out;
                codec::DecodeError error;
                expect (codec::encodeHeader (header, out, error), error.message);
                expect (fieldsOf (header).contains ("tempo_bpm"));
            }
            s.task = protocol::task::kContinue;
            expectEquals ((double) codec::makeTaskHeader ("t-2", s)["continue_bars"], 2.0);
            s.task = protocol::task::kReplace;
            expectEquals ((double) codec::makeTaskHeader ("t-3", s)["replace_to_bar"], 1.5);
            s.task = protocol::task::kAdd;
            expectEquals (codec::makeTaskHeader ("t-4", s)["track"].toString(), juce::String ("bass"));
            // a plain generate never carries the task's fields
            const auto plain = codec::makeRequestHeader (protocol::type::kGenerate, "g-5", s);
            for (const auto& name : taskFields)
                expect (! plain.hasProperty (name) || name == "audio_prompt_strength", name);
            expect (! plain.hasProperty ("task"));
        }

        beginTest ("each model's tasks and tracks from a models reply; models without capabilities left out");
        {
            const auto header = juce::JSON::parse (R"({"v":1,"type":"reply","re":"models","id":"models-1","models":[
                {"id":"tiny-ace-step","capabilities":{"tasks":["generate","continue","extract"],"tracks":["drums","bass"]}},
                {"id":"tiny-dd","capabilities":{"tasks":["generate"]}},
                {"id":"broken","error":"model_load_failed"},
                {"capabilities":{"tasks":["continue"]}}]})");
            const auto tasks = codec::modelTasksFrom (header);
            expectEquals ((int) tasks.size(), 2);
            expectEquals (tasks.at ("tiny-ace-step").tasks.joinIntoString (","), juce::String ("generate,continue,extract"));
            expectEquals (tasks.at ("tiny-ace-step").tracks.joinIntoString (","), juce::String ("drums,bass"));
            expect (tasks.at ("tiny-dd").tracks.isEmpty());
            expect (codec::modelTasksFrom (juce::var()).empty());
            expectEquals (codec::makeModelsHeader ("models-2")["type"].toString(), juce::String ("models"));
        }

        beginTest ("a variation fetched ahead is keyed by the host's facts as they are sent");
        {
            // 6/8 and 3/4 may well make the same audio, but that is the engine's to say: the
            // plugin keys on the meter and bars it sends.
            codec::RequestSettings a, b, c;
            a.meterNumerator = 6;
            a.meterDenominator = 8;
            b.meterNumerator = 3;
            b.meterDenominator = 4;
            c = a;
            expectEquals (codec::sampleIdentity (a, 0), codec::sampleIdentity (c, 0));
            expect (codec::sampleIdentity (a, 0) != codec::sampleIdentity (b, 0));
            c.bars = 2.0;
            expect (codec::sampleIdentity (a, 0) != codec::sampleIdentity (c, 0));
            c = a;
            c.meterNumerator = 7;
            expect (codec::sampleIdentity (a, 0) != codec::sampleIdentity (c, 0));
            expect (codec::sampleIdentity (a, 0) != codec::sampleIdentity (a, 1));
            c = a;
            c.key = "Am";
            expect (codec::sampleIdentity (a, 0) != codec::sampleIdentity (c, 0), "another key is another sample");
            c = a;
            c.loudnessLufs = -18.0;
            expect (codec::sampleIdentity (a, 0) != codec::sampleIdentity (c, 0), "another loudness is another sample");
        }

        beginTest ("engine messages: replies with samples, progress, errors");
        {
            codec::DecodeError error;
            bool ok = false;
            auto header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate","samples":[{"key":"k","render_key":"r","kind":"loop","tempo_bpm":128.0,"beats":8,"root_note":48,"variation":2,"loop_start":0,"loop_end":1000,"frame":1}]})", error, ok);
            codec::EngineMessage m;
            expect (codec::parseEngineMessage (header, 2, m, error), error.message);
            expect (m.kind == codec::EngineMessage::Kind::reply);
            expectEquals ((int) m.samples.size(), 1);
            expectEquals (m.samples[0].frame, 1);
            expectEquals (m.samples[0].info.kind, juce::String ("loop"));
            expectEquals (m.samples[0].info.rootNote, 48);
            expectEquals (m.samples[0].info.beats, 8.0);
            expectEquals ((int) m.samples[0].info.loopEnd, 1000);

            expect (! codec::parseEngineMessage (header, 1, m, error), "a sample pointing past the frames");
            expectEquals (error.code, juce::String ("malformed"));

            expect (m.notes.isEmpty(), "no notes: everything was made as asked");

            // notes: what the engine could not make exactly as asked, one string each
            header = decodeText (R"json({"v":1,"type":"reply","id":"g-1","re":"generate","samples":[],"notes":["100 bars of 4/4 cannot be made exactly: 256 quarter notes instead of 400 (64 bars of 4 beats)","another"]})json", error, ok);
            expect (codec::parseEngineMessage (header, 1, m, error), error.message);
            expectEquals (m.notes.size(), 2);
            expectEquals (m.notes[0], juce::String ("100 bars of 4/4 cannot be made exactly: 256 quarter notes instead of 400 (64 bars of 4 beats)"));
            header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate","samples":[],"notes":[]})", error, ok);
            expect (codec::parseEngineMessage (header, 1, m, error) && m.notes.isEmpty());
            for (const auto* bad : { R"("notes":"one note")", R"("notes":[1,2])", R"("notes":["ok",null])", R"("notes":{"a":"b"})" })
            {
                header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate",)" + juce::String (bad) + "}", error, ok);
                expect (ok, bad);
                expect (! codec::parseEngineMessage (header, 1, m, error), juce::String ("accepted ") + bad);
                expectEquals (error.code, juce::String ("malformed"), bad);
            }

            header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate","samples":[{"frame":0}]})", error, ok);
            expect (! codec::parseEngineMessage (header, 2, m, error), "frame 0 is the header, never a sample");

            header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate","samples":{"frame":1}})", error, ok);
            expect (! codec::parseEngineMessage (header, 2, m, error), "samples must be a list");

            header = decodeText (R"({"v":1,"type":"progress","id":"g-1","fraction":1.7})", error, ok);
            expect (codec::parseEngineMessage (header, 1, m, error));
            expectEquals (m.fraction, 1.0);
            header = decodeText (R"({"v":1,"type":"progress","id":"g-1","fraction":"half"})", error, ok);
            expect (! codec::parseEngineMessage (header, 1, m, error));

            header = decodeText (R"({"v":1,"type":"error","id":"g-1","code":"unknown_model","number":405,"message":"model='x': expected one of default"})", error, ok);
            expect (codec::parseEngineMessage (header, 1, m, error));
            expect (m.kind == codec::EngineMessage::Kind::error);
            expectEquals (m.errorNumber, 405);
            expectEquals (m.errorCode, juce::String ("unknown_model"));

            header = decodeText (R"({"v":1,"type":"reply","id":"h-1","re":"hello","models":[{"id":"default"},"dance"]})", error, ok);
            expect (codec::parseEngineMessage (header, 1, m, error));
            expectEquals (codec::modelIdsFrom (m.header).joinIntoString (","), juce::String ("default,dance"));

            header = decodeText (R"({"v":1,"type":"something-new","id":"x"})", error, ok);
            expect (codec::parseEngineMessage (header, 1, m, error));
            expect (m.kind == codec::EngineMessage::Kind::unknown);

            // the sample's key as the engine hears it: a key name, or null for none; an engine that
            // sent its store's key of the file there (hex) names no musical key
            header = decodeText (R"({"v":1,"type":"reply","id":"g-1","re":"generate","samples":[{"key":"F#m","key_confidence":0.83,"frame":1},{"key":null,"key_confidence":null,"frame":1},{"key":"3fa9c0d2e1","frame":1},{"frame":1}]})", error, ok);
            expect (codec::parseEngineMessage (header, 2, m, error), error.message);
            expectEquals ((int) m.samples.size(), 4);
            if (m.samples.size() == 4)
            {
                expectEquals (m.samples[0].info.musicalKey, juce::String ("F#m"));
                expectEquals (m.samples[0].info.keyConfidence, 0.83);
                expect (! m.samples[0].info.saysNoKey);
                expect (m.samples[1].info.musicalKey.isEmpty() && m.samples[1].info.saysNoKey, "null: the engine hears no key");
                expect (m.samples[1].info.keyConfidence < 0.0);
                expect (m.samples[2].info.musicalKey.isEmpty() && ! m.samples[2].info.saysNoKey, "a store key is no musical key");
                expectEquals (m.samples[2].info.key, juce::String ("3fa9c0d2e1"));
                expect (m.samples[3].info.musicalKey.isEmpty() && ! m.samples[3].info.saysNoKey, "not said");
            }
            for (const auto* name : { "C", "C#", "Eb", "Bb", "Am", "C#m", "Ebm", "G#m" })
                expect (codec::isKeyName (name), name);
            for (const auto* name : { "", "H", "c", "Amaj", "A minor", "C##", "Cmm", "off", "3fa9c0" })
                expect (! codec::isKeyName (name), name);
            for (const auto* name : protocol::key::kNames)
                expect (codec::isKeyName (name), name);

            for (const auto& entry : protocol::kErrorCodes)
                expectEquals (codec::errorNumberFor (entry.code), entry.number);
            expectEquals (codec::errorNumberFor ("no_such_code"), 0);
        }

        beginTest ("WAV samples: tags read, the engine's fields win, garbage refused");
        {
            const auto wav = test::makeWav (48000.0, 48000, 2, 0.0, 120.0, 2.0, 48, true);
            juce::String error;
            auto sample = Sample::fromWav (wav.getData(), wav.getSize(), {}, error);
            expect (sample != nullptr, error);
            expectEquals ((int) sample->getNumFrames(), 48000);
            expectEquals (sample->audio.getNumChannels(), 2);
            expectEquals (sample->sampleRate, 48000.0);
            expect (sample->isLoop);
            expectEquals (sample->rootNote, 48);
            expectEquals (sample->tempoBpm, 120.0);
            expectEquals (sample->beats, 2.0);
            expectEquals ((int) sample->loopEnd, 48000);
            expectEquals ((int) sample->peaks.size(), Sample::kWaveformBins * 2);
            expectWithinAbsoluteError (sample->audio.getSample (0, 0), -0.9f, 1.0e-5f);
            expect (sample->wavBytes == wav, "the exact bytes are kept for the project and drag-out");

            SampleInfo info;
            info.kind = "one-shot";
            info.rootNote = 36;
            info.tempoBpm = 90.0;
            sample = Sample::fromWav (wav.getData(), wav.getSize(), info, error);
            expect (sample != nullptr && ! sample->isLoop && sample->rootNote == 36 && sample->tempoBpm == 90.0);

            // The acid chunk holds whole beats: a bar of 7/8 at 120 BPM (3.5 quarter notes, 84000
            // frames) is tagged 4; its length at the tagged tempo says 3.5, and that is what plays.
            const auto sevenEight = test::makeWav (48000.0, 84000, 1, 0.0, 120.0, 3.5, 60, true);
            sample = Sample::fromWav (sevenEight.getData(), sevenEight.getSize(), {}, error);
            expect (sample != nullptr, error);
            expectEquals (sample->beats, 3.5);
            expectEquals (sample->getLoopBeats(), 3.5);

            const char garbage[] = "RIFF....WAVEfmt this is not audio at all, just text pretending";
            expect (Sample::fromWav (garbage, sizeof (garbage), {}, error) == nullptr);
            expect (error.isNotEmpty());
            expect (Sample::fromWav (wav.getData(), 20, {}, error) == nullptr, "truncated to 20 bytes");
            expect (Sample::fromWav (nullptr, 0, {}, error) == nullptr);
            expect (Sample::fromWav (wav.getData(), wav.getSize(), {}, error, 0.5) == nullptr, "longer than the limit");
            expect (error.contains ("1.00 s"), error);
        }
    }
};

static ProtocolCodecTests protocolCodecTests;

} // namespace loopbridge
