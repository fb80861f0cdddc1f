// loopbridge wire protocol constants for the plugin.
//
// bridge/protocol.py is the one source of these values; tests/plugin/test_protocol_constants.py
// parses this header and fails when anything here differs from it. Keep one constant per line in
// the forms the test reads: `inline constexpr <type> kName = <value>;` and `{"code", number},`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loopbridge::protocol
{
// ---- version, endpoints, timing ----------------------------------------------------------------
inline constexpr int kProtocolVersion = 1;
inline constexpr int kProtocolMinVersion = 1;

inline constexpr const char* kDefaultZmqHost = "127.0.0.1";
inline constexpr int kDefaultZmqPort = 5555;
inline constexpr int kDefaultEventsPort = 5556;

inline constexpr double kHeartbeatIntervalS = 1.0;
inline constexpr int kHeartbeatLiveness = 3;
inline constexpr double kReconnectInitialS = 1.0;
inline constexpr double kReconnectMaxS = 30.0;
inline constexpr double kRequestTimeoutS = 5.0;

// ---- the engine's defaults and limits (engine/request.py) -------------------------------------
// The rate of conformed files when the host names none.
inline constexpr int kDefaultSampleRate = 48000;
// Seeds the engine draws for a request without one stay at or below this (32-bit signed).
inline constexpr int kRandomSeedMax = 2147483647;
// The integrated loudness (BS.1770) loops and textures are brought to when a request names none,
// and the range a request may name.
inline constexpr double kDefaultLoudnessLufs = -14.0;
inline constexpr double kLoudnessMinLufs = -40.0;
inline constexpr double kLoudnessMaxLufs = -6.0;

// ---- sizes -------------------------------------------------------------------------------------
inline constexpr std::int64_t kMaxHeaderBytes = 64 * 1024;
// A request's binary frame: an audio prompt's file, at most ten minutes of stereo at 48 kHz as
// 32-bit samples and 1 MiB of chunks.
inline constexpr std::int64_t kMaxBinaryFrameBytes = 600 * 48000 * 2 * 4 + 1024 * 1024;
inline constexpr int kMaxFrames = 1 + 64;
// A whole request: a header and one audio prompt.
inline constexpr std::int64_t kMaxMessageBytes = 64 * 1024 + 600 * 48000 * 2 * 4 + 1024 * 1024;
// A reply's binary frame: the largest conformed WAV (600 s of stereo at 192 kHz, 24-bit); the
// socket's ZMQ_MAXMSGSIZE.
inline constexpr std::int64_t kMaxReplyFrameBytes = 600 * 192000 * 2 * 3 + 1024 * 1024;
inline constexpr int kMaxIdChars = 64;

// ---- message types a client sends (MessageType) ------------------------------------------------
namespace type
{
inline constexpr const char* kHello = "hello";
inline constexpr const char* kModels = "models";
inline constexpr const char* kCapabilities = "capabilities";
inline constexpr const char* kGenerate = "generate";
inline constexpr const char* kVariation = "variation";
inline constexpr const char* kMorph = "morph";
inline constexpr const char* kConform = "conform";
inline constexpr const char* kConformFile = "conform_file";
inline constexpr const char* kCancel = "cancel";
inline constexpr const char* kHistory = "history";
inline constexpr const char* kRecall = "recall";
inline constexpr const char* kStatus = "status";
inline constexpr const char* kPing = "ping";
inline constexpr const char* kHeartbeat = "heartbeat";
} // namespace type

// ---- message types the engine sends (ReplyType) ------------------------------------------------
namespace reply
{
inline constexpr const char* kReply = "reply";
inline constexpr const char* kAccepted = "accepted";
inline constexpr const char* kProgress = "progress";
inline constexpr const char* kError = "error";
inline constexpr const char* kPong = "pong";
inline constexpr const char* kHeartbeat = "heartbeat";
} // namespace reply

// ---- error codes and their numbers (ErrorCode, ERROR_NUMBERS) ----------------------------------
struct ErrorCodeEntry
{
    const char* code;
    int number;
};

inline constexpr ErrorCodeEntry kErrorCodes[] = {
    {"bad_request", 400},
    {"malformed", 401},
    {"unknown_type", 402},
    {"not_found", 404},
    {"unknown_model", 405},
    {"unsupported", 406},
    {"bad_audio", 407},
    {"cancelled", 409},
    {"too_large", 413},
    {"version_mismatch", 426},
    {"busy", 429},
    {"internal", 500},
    {"model_load_failed", 502},
    {"store_failed", 503},
    {"out_of_memory", 507},
};

// ---- header fields the plugin writes or reads --------------------------------------------------
namespace field
{
// common (COMMON_FIELDS)
inline constexpr const char* kVersion = "v";
inline constexpr const char* kType = "type";
inline constexpr const char* kId = "id";

// request fields (REQUEST_FIELDS)
inline constexpr const char* kPrompt = "prompt";
inline constexpr const char* kModel = "model";
inline constexpr const char* kKind = "kind";
inline constexpr const char* kSeed = "seed";
inline constexpr const char* kVariation = "variation";
inline constexpr const char* kBars = "bars";
inline constexpr const char* kTempoBpm = "tempo_bpm";
inline constexpr const char* kSteps = "steps";
inline constexpr const char* kAudioPromptStrength = "audio_prompt_strength";
inline constexpr const char* kMorphPrompt = "morph_prompt";
inline constexpr const char* kMorphAmount = "morph_amount";

// the host's time signature as it shows it (HOST_FIELDS): with these, bars counts bars of that
// meter and the engine works out its own bar (beats_per_bar is never sent)
inline constexpr const char* kMeterNumerator = "meter_numerator";
inline constexpr const char* kMeterDenominator = "meter_denominator";

// conform fields (CONFORM_FIELDS)
inline constexpr const char* kSampleRate = "sample_rate";
inline constexpr const char* kPitchSemitones = "pitch_semitones";
inline constexpr const char* kLoudnessLufs = "loudness_lufs";
inline constexpr const char* kKey = "key"; // the song's key: "C", "F#", "Am", "Ebm"; left out for none

// delivery fields (DELIVERY_FIELDS)
inline constexpr const char* kVariations = "variations";
inline constexpr const char* kAudio = "audio";
inline constexpr const char* kAudioPromptFrame = "audio_prompt_frame";
inline constexpr const char* kPriority = "priority";

// what to do with the user's audio (REQUEST_FIELDS; see "Tasks on the user's audio")
inline constexpr const char* kTask = "task";
inline constexpr const char* kContinueBars = "continue_bars";
inline constexpr const char* kReplaceFromBar = "replace_from_bar";
inline constexpr const char* kReplaceToBar = "replace_to_bar";
inline constexpr const char* kTrack = "track";

// other request types
inline constexpr const char* kRenderKey = "render_key";   // conform
inline constexpr const char* kAudioFrame = "audio_frame";  // conform_file: the frame holding the file
inline constexpr const char* kName = "name";               // conform_file: the file's name
inline constexpr const char* kTarget = "target";          // cancel
inline constexpr const char* kClient = "client";          // hello
inline constexpr const char* kClientVersion = "client_version"; // hello
inline constexpr const char* kToken = "token";            // ping

// reply fields the plugin reads
inline constexpr const char* kRe = "re";
inline constexpr const char* kSamples = "samples";
inline constexpr const char* kCode = "code";
inline constexpr const char* kNumber = "number";
inline constexpr const char* kMessage = "message";
inline constexpr const char* kFraction = "fraction";
inline constexpr const char* kPosition = "position";
inline constexpr const char* kField = "field";
inline constexpr const char* kNotes = "notes"; // what could not be made exactly as asked (a list of strings)
inline constexpr const char* kTempoConfidence = "tempo_confidence"; // conform_file: 0-1
inline constexpr const char* kLowConfidence = "low_confidence";     // conform_file: the file's timing may be off

} // namespace field

// ---- what a sample in a reply's samples list holds (SAMPLE_FIELDS) ------------------------------
namespace sample_field
{
inline constexpr const char* kSampleKey = "sample_key"; // the conformed file's key in the store
inline constexpr const char* kKey = "key";                // the sound's musical key ("Am", "F#"; null: none)
inline constexpr const char* kKeyConfidence = "key_confidence";
inline constexpr const char* kRenderKey = "render_key";
inline constexpr const char* kFilename = "filename";
inline constexpr const char* kPath = "path";
inline constexpr const char* kKind = "kind";
inline constexpr const char* kTempoBpm = "tempo_bpm";
inline constexpr const char* kBeats = "beats";
inline constexpr const char* kRootNote = "root_note";
inline constexpr const char* kVariation = "variation";
inline constexpr const char* kFrame = "frame";
inline constexpr const char* kLoopStart = "loop_start";
inline constexpr const char* kLoopEnd = "loop_end";
} // namespace sample_field

// ---- the keys a request's `key` names, as the engine spells them (engine/conform/key.py
// MAJOR_NAMES, MINOR_NAMES): the twelve major keys from C, then the twelve minor keys from C
namespace key
{
inline constexpr const char* kNames[] = { "C",  "C#",  "D",  "Eb",  "E",  "F",  "F#",  "G",  "Ab",  "A",  "Bb",  "B",
                                          "Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm" };
inline constexpr const char* kOff = "off"; // no key matching (what leaving the field out means too)
} // namespace key

// ---- values of the priority field --------------------------------------------------------------
namespace priority
{
inline constexpr const char* kInteractive = "interactive";
inline constexpr const char* kBackground = "background";
} // namespace priority

// ---- values of the task field (engine Task): what a generate does with its audio prompt ----------
namespace task
{
inline constexpr const char* kGenerate = "generate";
inline constexpr const char* kContinue = "continue";
inline constexpr const char* kReplace = "replace";
inline constexpr const char* kTransform = "transform";
inline constexpr const char* kExtract = "extract";
inline constexpr const char* kAdd = "add";
} // namespace task

// ---- the parts `extract` and `add` name (engine/request.py TRACKS), in the engine's order -------
namespace track
{
inline constexpr const char* kTrackNames[] = { "vocals", "backing_vocals", "drums", "bass", "guitar", "keyboard",
                                               "percussion", "strings", "synth", "fx", "brass", "woodwinds" };
} // namespace track

// ---- values of the kind field (engine Kind) ----------------------------------------------------
namespace kind
{
inline constexpr const char* kOneShot = "one-shot";
inline constexpr const char* kLoop = "loop";
} // namespace kind

} // namespace loopbridge::protocol
