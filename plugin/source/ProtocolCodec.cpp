#include "ProtocolCodec.h"

#include <cmath>

namespace loopbridge::codec
{
namespace p = loopbridge::protocol;

namespace
{
bool allFinite (const juce::var& value)
{
    if (value.isDouble())
        return std::isfinite ((double) value);
    if (const auto* array = value.getArray())
    {
        for (const auto& item : *array)
            if (! allFinite (item))
                return false;
        return true;
    }
    if (auto* object = value.getDynamicObject())
    {
        for (const auto& property : object->getProperties())
            if (! allFinite (property.value))
                return false;
    }
    return true;
}

bool isInteger (const juce::var& value) { return value.isInt() || value.isInt64(); }

bool isNumber (const juce::var& value) { return isInteger (value) || value.isDouble(); }

juce::var makeObject() { return juce::var (new juce::DynamicObject()); }

void set (juce::var& object, const char* name, const juce::var& value) { object.getDynamicObject()->setProperty (name, value); }
} // namespace

bool encodeHeader (const juce::var& header, juce::MemoryBlock& out, DecodeError& error)
{
    auto* object = header.getDynamicObject();
    if (object == nullptr)
    {
        error = { "malformed", "header is not an object" };
        return false;
    }
    if (! object->hasProperty (p::field::kVersion))
        object->setProperty (p::field::kVersion, p::kProtocolVersion);
    if (! allFinite (header))
    {
        error = { "malformed", "header holds a number that is not finite" };
        return false;
    }
    const auto text = juce::JSON::toString (header, true);
    const auto utf8 = text.toRawUTF8();
    const auto numBytes = text.getNumBytesAsUTF8();
    if ((std::int64_t) numBytes > p::kMaxHeaderBytes)
    {
        error = { "too_large", "header of " + juce::String ((juce::int64) numBytes) + " bytes: at most "
                                   + juce::String ((juce::int64) p::kMaxHeaderBytes) + " bytes" };
        return false;
    }
    out.replaceAll (utf8, numBytes);
    return true;
}

bool decodeHeader (const void* data, size_t numBytes, juce::var& header, DecodeError& error)
{
    if ((std::int64_t) numBytes > p::kMaxHeaderBytes)
    {
        error = { "too_large", "header of " + juce::String ((juce::int64) numBytes) + " bytes: at most "
                                   + juce::String ((juce::int64) p::kMaxHeaderBytes) + " bytes" };
        return false;
    }
    if (data == nullptr || numBytes == 0)
    {
        error = { "malformed", "header is empty: expected UTF-8 JSON" };
        return false;
    }
    if (! juce::CharPointer_UTF8::isValidString (static_cast<const char*> (data), (int) numBytes))
    {
        error = { "malformed", "header is not UTF-8 JSON: invalid UTF-8" };
        return false;
    }
    const auto text = juce::String::fromUTF8 (static_cast<const char*> (data), (int) numBytes);
    juce::var parsed;
    const auto result = juce::JSON::parse (text, parsed);
    if (result.failed())
    {
        error = { "malformed", "header is not UTF-8 JSON: " + result.getErrorMessage() };
        return false;
    }
    if (! parsed.isObject() || parsed.getDynamicObject() == nullptr)
    {
        error = { "malformed", "header is not a JSON object" };
        return false;
    }
    const auto version = parsed[p::field::kVersion];
    if (! isInteger (version))
    {
        error = { "malformed", "v=" + juce::JSON::toString (version, true) + ": expected the protocol version, an integer" };
        return false;
    }
    if ((int) version < p::kProtocolMinVersion || (int) version > p::kProtocolVersion)
    {
        error = { "version_mismatch", "v=" + version.toString() + ": this plugin speaks protocol "
                                          + juce::String (p::kProtocolMinVersion) + "-" + juce::String (p::kProtocolVersion) };
        return false;
    }
    const auto type = parsed[p::field::kType];
    if (! type.isString() || type.toString().isEmpty())
    {
        error = { "malformed", "type=" + juce::JSON::toString (type, true) + ": expected a message type string" };
        return false;
    }
    const auto id = parsed[p::field::kId];
    if (! id.isVoid() && (! id.isString() || id.toString().isEmpty() || id.toString().length() > p::kMaxIdChars))
    {
        error = { "malformed", "id=" + juce::JSON::toString (id, true) + ": expected a string of 1-"
                                   + juce::String (p::kMaxIdChars) + " characters" };
        return false;
    }
    header = parsed;
    return true;
}

juce::String sampleIdentity (const RequestSettings& s, int variation)
{
    // the host's facts as they are sent: the engine decides what length they make
    juce::StringArray parts { s.prompt, s.morphPrompt, s.model, s.isLoop ? "loop" : "one-shot", juce::String (s.seed),
                              juce::String (variation), juce::String (s.bars, 6), juce::String (s.tempoBpm, 6),
                              juce::String (s.meterNumerator) + "/" + juce::String (s.meterDenominator), juce::String (s.steps),
                              s.morphPrompt.isNotEmpty() ? juce::String (s.morphAmount, 6) : juce::String(),
                              s.hasAudioPrompt ? juce::String (s.audioPromptStrength, 6) : juce::String ("-"),
                              juce::String (s.sampleRate), juce::String (s.pitchSemitones, 6), s.key.isNotEmpty() ? s.key : juce::String ("-"),
                              juce::String (s.loudnessLufs, 2) };
    return parts.joinIntoString (juce::String::charToString (0x1f));
}

static void setLevelAndKeyFields (juce::var& header, const RequestSettings& s);

juce::var makeRequestHeader (const char* type, const juce::String& id, const RequestSettings& s, bool background)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, type);
    set (header, p::field::kId, id);
    set (header, p::field::kPrompt, s.prompt);
    if (s.model.isNotEmpty())
        set (header, p::field::kModel, s.model);
    set (header, p::field::kKind, s.isLoop ? p::kind::kLoop : p::kind::kOneShot);
    set (header, p::field::kSeed, s.seed);
    set (header, p::field::kVariation, s.variation);
    set (header, p::field::kBars, s.bars);
    set (header, p::field::kTempoBpm, s.tempoBpm);
    set (header, p::field::kMeterNumerator, s.meterNumerator);
    set (header, p::field::kMeterDenominator, s.meterDenominator);
    if (s.steps > 0)
        set (header, p::field::kSteps, s.steps);
    if (s.morphPrompt.isNotEmpty())
    {
        set (header, p::field::kMorphPrompt, s.morphPrompt);
        set (header, p::field::kMorphAmount, s.morphAmount);
    }
    if (s.hasAudioPrompt)
    {
        set (header, p::field::kAudioPromptStrength, s.audioPromptStrength);
        set (header, p::field::kAudioPromptFrame, 1);
    }
    set (header, p::field::kSampleRate, s.sampleRate);
    set (header, p::field::kPitchSemitones, s.pitchSemitones);
    setLevelAndKeyFields (header, s);
    set (header, p::field::kVariations, 1);
    set (header, p::field::kAudio, true);
    if (background)
        set (header, p::field::kPriority, p::priority::kBackground);
    return header;
}

juce::var makeTaskHeader (const juce::String& id, const RequestSettings& s)
{
    auto settings = s;
    settings.isLoop = true; // the result is a loop on the sample's grid, whatever the Kind knob says
    settings.hasAudioPrompt = true;
    settings.morphPrompt.clear();
    auto header = makeRequestHeader (p::type::kGenerate, id, settings);
    set (header, p::field::kTask, s.task);
    if (s.task == p::task::kContinue)
        set (header, p::field::kContinueBars, s.continueBars);
    else if (s.task == p::task::kReplace)
    {
        set (header, p::field::kReplaceFromBar, s.replaceFromBar);
        set (header, p::field::kReplaceToBar, s.replaceToBar);
    }
    else if (s.task == p::task::kExtract || (s.task == p::task::kAdd && s.track.isNotEmpty()))
        set (header, p::field::kTrack, s.track);
    if (s.task != p::task::kTransform)
        header.getDynamicObject()->removeProperty (p::field::kAudioPromptStrength); // transform's alone
    return header;
}

std::map<juce::String, ModelTasks> modelTasksFrom (const juce::var& header)
{
    std::map<juce::String, ModelTasks> result;
    if (const auto* models = header["models"].getArray())
        for (const auto& model : *models)
        {
            const auto caps = model["capabilities"];
            if (! model["id"].isString() || ! caps.isObject())
                continue;
            const auto strings = [&caps] (const char* name) {
                juce::StringArray values;
                if (const auto* list = caps[name].getArray())
                    for (const auto& value : *list)
                        if (value.isString())
                            values.addIfNotAlreadyThere (value.toString());
                return values;
            };
            result[model["id"].toString()] = ModelTasks { strings ("tasks"), strings ("tracks") };
        }
    return result;
}

juce::var makeModelsHeader (const juce::String& id)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kModels);
    set (header, p::field::kId, id);
    return header;
}

/** How the engine levels the sample and which key it moves it to (none: the key it was made in). */
static void setLevelAndKeyFields (juce::var& header, const RequestSettings& s)
{
    set (header, p::field::kLoudnessLufs, s.loudnessLufs);
    if (s.key.isNotEmpty())
        set (header, p::field::kKey, s.key);
}

/** What a conformed file is fitted to (the song, as the host has it), and its WAV attached. */
static void setSongFields (juce::var& header, const RequestSettings& s)
{
    set (header, p::field::kTempoBpm, s.tempoBpm);
    set (header, p::field::kBars, s.bars);
    set (header, p::field::kMeterNumerator, s.meterNumerator);
    set (header, p::field::kMeterDenominator, s.meterDenominator);
    set (header, p::field::kSampleRate, s.sampleRate);
    set (header, p::field::kPitchSemitones, s.pitchSemitones);
    setLevelAndKeyFields (header, s);
    set (header, p::field::kAudio, true);
}

juce::var makeConformHeader (const juce::String& id, const juce::String& renderKey, const RequestSettings& s)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kConform);
    set (header, p::field::kId, id);
    set (header, p::field::kRenderKey, renderKey);
    setSongFields (header, s);
    return header;
}

juce::var makeConformFileHeader (const juce::String& id, const juce::String& name, const RequestSettings& s)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kConformFile);
    set (header, p::field::kId, id);
    set (header, p::field::kAudioFrame, 1);
    if (name.isNotEmpty())
        set (header, p::field::kName, name);
    setSongFields (header, s);
    return header;
}

juce::var makePingHeader (const juce::String& id)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kPing);
    set (header, p::field::kId, id);
    return header;
}

juce::var makeHelloHeader (const juce::String& id, const juce::String& clientVersion)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kHello);
    set (header, p::field::kId, id);
    set (header, p::field::kClient, "loopbridge-vst3");
    set (header, p::field::kClientVersion, clientVersion);
    return header;
}

juce::var makeHeartbeatHeader()
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kHeartbeat);
    return header;
}

juce::var makeCancelHeader (const juce::String& id, const juce::String& target)
{
    auto header = makeObject();
    set (header, p::field::kVersion, p::kProtocolVersion);
    set (header, p::field::kType, p::type::kCancel);
    set (header, p::field::kId, id);
    set (header, p::field::kTarget, target);
    return header;
}

int errorNumberFor (const juce::String& code)
{
    for (const auto& entry : p::kErrorCodes)
        if (code == entry.code)
            return entry.number;
    return 0;
}

bool isKeyName (const juce::String& text)
{
    // a letter, an optional sharp or flat, an optional "m" for minor: "C", "F#", "Bb", "Am", "C#m"
    const auto n = text.length();
    if (n < 1 || n > 3 || text[0] < 'A' || text[0] > 'G')
        return false;
    auto rest = text.substring (1);
    if (rest.startsWithChar ('#') || rest.startsWithChar ('b'))
        rest = rest.substring (1);
    return rest.isEmpty() || rest == "m";
}

namespace
{
bool readSample (const juce::var& item, int index, int numFrames, SampleRef& out, DecodeError& error)
{
    if (! item.isObject())
    {
        error = { "malformed", "samples[" + juce::String (index) + "] is not an object" };
        return false;
    }
    const auto frame = item[p::sample_field::kFrame];
    if (! isInteger (frame) || (int) frame < 1 || (int) frame >= numFrames)
    {
        error = { "malformed", "samples[" + juce::String (index) + "].frame=" + juce::JSON::toString (frame, true)
                                   + ": expected the index of one of the " + juce::String (numFrames - 1) + " binary frames" };
        return false;
    }
    out.frame = (int) frame;
    auto text = [&] (const char* name) { return item[name].isString() ? item[name].toString() : juce::String(); };
    auto number = [&] (const char* name, double fallback) { return isNumber (item[name]) ? (double) item[name] : fallback; };
    // the file's store key (an engine before the song's key was a field sent it as "key")
    out.info.key = item.hasProperty (p::sample_field::kSampleKey) ? text (p::sample_field::kSampleKey)
                                                                   : text (p::sample_field::kKey);
    // `key` names the sample's musical key ("Am", "F#"; null: none); an engine before keys sent its
    // store's key of the file there (hex digits), which is no key name and not shown as one.
    const auto musicalKey = item[p::sample_field::kKey];
    if (isKeyName (musicalKey.toString()))
        out.info.musicalKey = musicalKey.toString();
    out.info.saysNoKey = item.hasProperty (p::sample_field::kKey) && musicalKey.isVoid();
    out.info.keyConfidence = isNumber (item[p::sample_field::kKeyConfidence]) ? juce::jlimit (0.0, 1.0, (double) item[p::sample_field::kKeyConfidence]) : -1.0;
    out.info.renderKey = text (p::sample_field::kRenderKey);
    out.info.fileName = text (p::sample_field::kFilename);
    out.info.enginePath = text (p::sample_field::kPath);
    out.info.kind = text (p::sample_field::kKind);
    out.info.tempoBpm = number (p::sample_field::kTempoBpm, -1.0);
    out.info.beats = number (p::sample_field::kBeats, -1.0);
    out.info.rootNote = isInteger (item[p::sample_field::kRootNote]) ? (int) item[p::sample_field::kRootNote] : -1;
    out.info.variation = isInteger (item[p::sample_field::kVariation]) ? (int) item[p::sample_field::kVariation] : -1;
    out.info.loopStart = isInteger (item[p::sample_field::kLoopStart]) ? (juce::int64) item[p::sample_field::kLoopStart] : -1;
    out.info.loopEnd = isInteger (item[p::sample_field::kLoopEnd]) ? (juce::int64) item[p::sample_field::kLoopEnd] : -1;
    return true;
}
} // namespace

bool parseEngineMessage (const juce::var& header, int numFrames, EngineMessage& message, DecodeError& error)
{
    message = {};
    message.header = header;
    message.type = header[p::field::kType].toString();
    message.id = header[p::field::kId].isString() ? header[p::field::kId].toString() : juce::String();
    message.re = header[p::field::kRe].isString() ? header[p::field::kRe].toString() : juce::String();

    if (message.type == p::reply::kReply)
    {
        message.kind = EngineMessage::Kind::reply;
        const auto samples = header[p::field::kSamples];
        if (! samples.isVoid())
        {
            const auto* array = samples.getArray();
            if (array == nullptr)
            {
                error = { "malformed", "samples is not a list" };
                return false;
            }
            for (int i = 0; i < array->size(); ++i)
            {
                SampleRef ref;
                if (! readSample (array->getReference (i), i, numFrames, ref, error))
                    return false;
                message.samples.push_back (ref);
            }
        }
        const auto notes = header[p::field::kNotes];
        if (! notes.isVoid())
        {
            const auto* array = notes.getArray();
            if (array == nullptr)
            {
                error = { "malformed", "notes=" + juce::JSON::toString (notes, true) + ": expected a list of strings" };
                return false;
            }
            for (int i = 0; i < array->size(); ++i)
            {
                const auto& note = array->getReference (i);
                if (! note.isString())
                {
                    error = { "malformed", "notes[" + juce::String (i) + "]=" + juce::JSON::toString (note, true) + ": expected a string" };
                    return false;
                }
                message.notes.add (note.toString());
            }
        }
    }
    else if (message.type == p::reply::kAccepted)
    {
        message.kind = EngineMessage::Kind::accepted;
        message.position = isInteger (header[p::field::kPosition]) ? (int) header[p::field::kPosition] : -1;
    }
    else if (message.type == p::reply::kProgress)
    {
        message.kind = EngineMessage::Kind::progress;
        const auto fraction = header[p::field::kFraction];
        if (! isNumber (fraction))
        {
            error = { "malformed", "progress without a numeric fraction" };
            return false;
        }
        message.fraction = juce::jlimit (0.0, 1.0, (double) fraction);
    }
    else if (message.type == p::reply::kError)
    {
        message.kind = EngineMessage::Kind::error;
        message.errorCode = header[p::field::kCode].toString();
        message.errorMessage = header[p::field::kMessage].toString();
        message.errorField = header[p::field::kField].isString() ? header[p::field::kField].toString() : juce::String();
        message.errorNumber = isInteger (header[p::field::kNumber]) ? (int) header[p::field::kNumber] : errorNumberFor (message.errorCode);
    }
    else if (message.type == p::reply::kPong)
        message.kind = EngineMessage::Kind::pong;
    else if (message.type == p::reply::kHeartbeat)
        message.kind = EngineMessage::Kind::heartbeat;
    else
        message.kind = EngineMessage::Kind::unknown;
    return true;
}

juce::StringArray modelIdsFrom (const juce::var& header)
{
    juce::StringArray ids;
    // Not a request field: the hello / models reply lists what the engine can load.
    if (const auto* models = header["models"].getArray())
        for (const auto& model : *models)
        {
            if (model.isString())
                ids.addIfNotAlreadyThere (model.toString());
            else if (model.isObject())
                for (const auto* name : { "id", "model", "name" })
                    if (model[name].isString())
                    {
                        ids.addIfNotAlreadyThere (model[name].toString());
                        break;
                    }
        }
    return ids;
}

} // namespace loopbridge::codec
