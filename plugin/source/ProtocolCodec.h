// Pure encode / decode of the loopbridge wire format (no sockets): header frames, the request
// headers the plugin sends, and the engine's replies. bridge/protocol.py is the reference.
#pragma once

#include "Protocol.h"
#include "Sample.h"

#include <juce_core/juce_core.h>

#include <map>
#include <vector>

namespace loopbridge::codec
{
/** A header frame that broke the protocol: `code` is one of the protocol's error codes. */
struct DecodeError
{
    juce::String code;
    juce::String message;
};

/** `header` as compact UTF-8 JSON, with `v` added when missing. Fails (too_large / malformed)
    when the result is over kMaxHeaderBytes or holds a non-finite number. */
bool encodeHeader (const juce::var& header, juce::MemoryBlock& out, DecodeError& error);

/** Parses and checks a header frame as the engine does: UTF-8 JSON object, `v` an integer within
    the versions spoken here, a non-empty `type`, and `id` (when present) a string of 1-64 chars. */
bool decodeHeader (const void* data, size_t numBytes, juce::var& header, DecodeError& error);

/** Everything a request header needs; filled from parameters, host and session on a non-audio thread. */
struct RequestSettings
{
    juce::String prompt, morphPrompt, model;
    bool isLoop = false;
    int seed = 0;
    int variation = 0;
    double bars = 1.0;         // in bars of the host's meter, as the Length knob asks
    double tempoBpm = 120.0;   // quarter notes per minute
    int meterNumerator = 4;    // the host's time signature, sent as it is (4/4 when the host says nothing);
    int meterDenominator = 4;  // the engine turns it and the bars into its own bars (engine/host.py)
    int steps = 0;             // 0: the model's default (field left out)
    double morphAmount = 0.0;  // sent with a morph prompt only
    double audioPromptStrength = 0.5;
    bool hasAudioPrompt = false; // the audio prompt travels as binary frame 1
    int sampleRate = protocol::kDefaultSampleRate;
    double pitchSemitones = 0.0;
    juce::String key;          // the song's key as the engine names it ("Am", "F#"); empty: no key matching (left out)
    double loudnessLufs = protocol::kDefaultLoudnessLufs; // loops' and textures' integrated loudness

    // What a task on the user's audio would do (sent by makeTaskHeader only; a plain generate,
    // variation or morph never carries them).
    juce::String task;         // protocol::task: continue, replace, transform, extract, add
    double continueBars = 1.0; // continue: bars to add after the sample
    double replaceFromBar = 0.0, replaceToBar = 1.0; // replace: the bars made anew, from 0 at the sample's start
    juce::String track;        // extract / add: the part (protocol::track::kTrackNames)
};

/** The header of a generate / variation / morph request (`type` one of those three). It carries
    the host's facts as they are: tempo, the time signature (meter_numerator / meter_denominator),
    the Length in bars of that meter and the sample rate; never beats_per_bar, which the engine
    works out. A background request (a prefetch) yields to interactive ones in the engine's queue. */
juce::var makeRequestHeader (const char* type, const juce::String& id, const RequestSettings& settings, bool background = false);

/** The header of a generate that works on the user's audio (the sample as binary frame 1):
    `settings.task` with the fields that task takes (continue_bars; replace_from_bar and
    replace_to_bar; audio_prompt_strength for transform; track for extract and add), as a loop
    at the host's tempo and meter, the audio taken to start on a downbeat. */
juce::var makeTaskHeader (const juce::String& id, const RequestSettings& settings);

/** What one model can do with the user's audio, from its capabilities: tasks besides generate,
    and the parts extract / add name. */
struct ModelTasks
{
    juce::StringArray tasks;  // protocol::task values the model lists (generate included)
    juce::StringArray tracks; // protocol::track names it takes (empty: none)
};

/** Each model's tasks from a models reply (`models`: objects with `id` and `capabilities`);
    models without capabilities (an `error` instead) are left out. */
std::map<juce::String, ModelTasks> modelTasksFrom (const juce::var& header);

/** The header of a models request. */
juce::var makeModelsHeader (const juce::String& id);

/** Everything in `settings` that decides the sample the engine sends, as one string (the
    plugin's cache key for a variation of it). */
juce::String sampleIdentity (const RequestSettings& settings, int variation);

/** The header of a conform request: the stored render `renderKey` fitted to the settings' tempo,
    meter, bars, rate and pitch (the host's facts, as in makeRequestHeader), without running a model. */
juce::var makeConformHeader (const juce::String& id, const juce::String& renderKey, const RequestSettings& settings);

/** The header of a conform_file request: the user's own file (its bytes as binary frame 1, named
    `name`) fitted to the settings' tempo, meter, bars, rate and pitch; the engine decides whether it
    is a loop or a one-shot, and stores it like a render (later tempo changes are conforms of its
    render key). */
juce::var makeConformFileHeader (const juce::String& id, const juce::String& name, const RequestSettings& settings);

/** The header of a hello, heartbeat, ping or cancel. */
juce::var makeHelloHeader (const juce::String& id, const juce::String& clientVersion);
juce::var makeHeartbeatHeader();
juce::var makePingHeader (const juce::String& id);
juce::var makeCancelHeader (const juce::String& id, const juce::String& target);

/** One sample of a reply: what the header says, and which binary frame holds its WAV bytes. */
struct SampleRef
{
    SampleInfo info;
    int frame = -1;
};

/** An engine message, checked against the frames that came with it. */
struct EngineMessage
{
    enum class Kind
    {
        reply,
        accepted,
        progress,
        error,
        pong,
        heartbeat,
        unknown
    };

    Kind kind = Kind::unknown;
    juce::String type, id, re;
    std::vector<SampleRef> samples; // reply
    juce::StringArray notes;        // reply: what could not be made exactly as asked (empty: all was)
    juce::var header;               // the whole header (e.g. a hello reply's models)
    double fraction = 0.0;          // progress, 0..1
    int position = -1;              // accepted: place in the queue
    juce::String errorCode, errorMessage, errorField;
    int errorNumber = 0;
};

/** Interprets a decoded header with `numFrames` frames in all (header included). Fails
    (malformed) when a sample names a frame that is not there or a field has the wrong type
    (a reply's `notes` must be a list of strings). */
bool parseEngineMessage (const juce::var& header, int numFrames, EngineMessage& message, DecodeError& error);

/** Whether `text` reads as a key name: a letter A-G, then an optional # or b, then an optional m
    (minor). */
bool isKeyName (const juce::String& text);

/** The error number the protocol gives `code` (0 when unknown). */
int errorNumberFor (const juce::String& code);

/** Model ids from a hello or models reply (`models` as strings or objects with an `id`). */
juce::StringArray modelIdsFrom (const juce::var& header);

} // namespace loopbridge::codec
