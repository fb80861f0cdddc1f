// Pure encode / decode of the loopbridge wire format (no sockets): header frames, the request
// headers the plugin sends, and the engine's replies. bridge/protocol.py is the reference.
#pragma once

#include "Protocol.h"
#include "Sample.h"

#include <juce_core/juce_core.h>

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
    double bars = 1.0;         // in bars of the host's meter, as the Length knob asks (see lengthFields)
    double tempoBpm = 120.0;   // quarter notes per minute
    int meterNumerator = 4;    // the host's time signature
    int meterDenominator = 4;
    int steps = 0;             // 0: the model's default (field left out)
    double morphAmount = 0.0;  // sent with a morph prompt only
    double audioPromptStrength = 0.5;
    bool hasAudioPrompt = false; // the audio prompt travels as binary frame 1
    int sampleRate = 48000;
    double pitchSemitones = 0.0;
};

/** A length as the engine takes it: `bars` of its bars, each `beatsPerBar` quarter notes of tempo_bpm. */
struct LengthFields
{
    int beatsPerBar = 4;
    double bars = 1.0;
    bool exact = true; // false: the engine cannot be asked for exactly the length wanted (lengthNote says why)
};

/** `bars` bars of the host's meter `numerator`/`denominator` in the engine's terms, the one rule
    behind every request header. The engine counts a bar as beats_per_bar quarter notes, while a
    bar of the meter is q = numerator * 4 / denominator of them. A whole q of 1-16 is sent as
    beats_per_bar with the bars as asked (6/8: 3, 2/2: 4). Any other meter sends its numerator as
    beats_per_bar and the bars scaled by 4 / denominator, so that the length in quarter notes is
    the same (two bars of 7/8 are one bar of 7). Bars are then clamped to the engine's range; a
    numerator outside 1-16 falls back to the numerator clamped and the bars as asked. Either makes
    the length inexact. A meter that is not positive counts as 4/4. */
LengthFields lengthFields (int numerator, int denominator, double bars) noexcept;

/** One line for the status when lengthFields cannot express `bars` bars of the meter exactly
    (what the engine is asked for instead); empty when it can. */
juce::String lengthNote (int numerator, int denominator, double bars);

/** The header of a generate / variation / morph request (`type` one of those three). A background
    request (a prefetch) yields to interactive ones in the engine's queue. */
juce::var makeRequestHeader (const char* type, const juce::String& id, const RequestSettings& settings, bool background = false);

/** Everything in `settings` that decides the sample the engine sends, as one string (the
    plugin's cache key for a variation of it). */
juce::String sampleIdentity (const RequestSettings& settings, int variation);

/** The header of a conform request: the stored render `renderKey` fitted to the settings' tempo,
    bars, rate and pitch, without running a model. */
juce::var makeConformHeader (const juce::String& id, const juce::String& renderKey, const RequestSettings& settings);

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
    juce::var header;               // the whole header (e.g. a hello reply's models)
    double fraction = 0.0;          // progress, 0..1
    int position = -1;              // accepted: place in the queue
    juce::String errorCode, errorMessage, errorField;
    int errorNumber = 0;
};

/** Interprets a decoded header with `numFrames` frames in all (header included). Fails
    (malformed) when a sample names a frame that is not there or a field has the wrong type. */
bool parseEngineMessage (const juce::var& header, int numFrames, EngineMessage& message, DecodeError& error);

/** The error number the protocol gives `code` (0 when unknown). */
int errorNumberFor (const juce::String& code);

/** Model ids from a hello or models reply (`models` as strings or objects with an `id`). */
juce::StringArray modelIdsFrom (const juce::var& header);

} // namespace loopbridge::codec
