// The plugin's connection to the loopbridge engine: one background thread that owns a ZeroMQ
// DEALER socket, sends requests when the user asks (Generate, Variation, Morph, a new host tempo,
// Key or Loudness),
// heartbeats the engine, reconnects when it goes away, and decodes the WAV bytes it receives.
//
// Nothing here runs on the audio thread. The thread learns what to send by polling the delegate
// (parameters are atomics; the press count of Generate is an atomic counter), and hands decoded
// samples to the delegate, which publishes them to the audio thread lock-free.
#pragma once

#include "ProtocolCodec.h"
#include "Sample.h"

#include <juce_core/juce_core.h>

#include <atomic>
#include <map>
#include <memory>

namespace zmq
{
class context_t;
class socket_t;
} // namespace zmq

namespace loopbridge
{
/** What the editor shows about the engine. */
struct EngineStatus
{
    enum class Connection
    {
        connecting,
        connected,
        notRunning
    };

    Connection connection = Connection::connecting;
    juce::String endpoint;
    juce::StringArray models;
    /** What each model does with the user's audio (its capabilities' tasks and tracks), from the
        engine's models reply; empty until it has answered. */
    std::map<juce::String, codec::ModelTasks> modelTasks;
    juce::String activity;       // "generating variation 3", "queued (2 ahead)", ...
    double progress = -1.0;      // 0..1 while a job runs, else < 0
    juce::StringArray notes;     // the engine's notes on the sample that plays: what it could not make exactly as asked
    juce::String lastError;      // the last error (the engine's with its code and number); cleared by a sample that arrives or a hello answered
    double retryInSeconds = 0.0; // while not running
    juce::uint32 samplesReceived = 0;
};

class EngineClient final : private juce::Thread
{
public:
    /** The processor's side. Called on the client thread, except that restoreSession also reads
        the settings and the press count on the thread that restores a project. */
    struct Delegate
    {
        virtual ~Delegate() = default;
        virtual codec::RequestSettings currentSettings() = 0;
        virtual std::uint32_t generatePressCount() = 0;
        /** The audio prompt's WAV bytes (empty: none). */
        virtual juce::MemoryBlock audioPromptBytes() = 0;
        /** Identity of the sample the engine last sent (to re-conform it); nullptr if none. */
        virtual std::shared_ptr<const Sample> latestSample() = 0;
        virtual void sampleArrived (std::shared_ptr<const Sample> sample) = 0;
        virtual void housekeeping() = 0;
        /** How many times Run task was pressed; a new count sends the current settings' task on the
            sample that plays now (latestSample's WAV bytes). */
        virtual std::uint32_t taskPressCount() { return 0; }
        /** How many files the user has dropped to fit to the song; a new count sends the newest. */
        virtual std::uint32_t fitFileCount() { return 0; }
        /** The newest file to fit: its bytes as they are (WAV, FLAC, AIFF, OGG, MP3), and its name. */
        virtual juce::MemoryBlock fitFileBytes (juce::String& name)
        {
            name.clear();
            return {};
        }
    };

    EngineClient (Delegate& delegate, juce::String endpoint);
    ~EngineClient() override;

    void start();
    void stop();

    /** Connects somewhere else (takes effect within one poll interval). */
    void setEndpoint (const juce::String& newEndpoint);
    juce::String getEndpoint() const;

    EngineStatus getStatus() const;

    /** Restores a project: runs `restore` (which sets the knobs, the session and the sample and
        returns whether it did), then takes the knobs and Generate's press count as they are at
        that moment as what the client has already acted on: the restored sample is what they
        made, so nothing is asked for them, while a press or a knob turn made after this returns
        is sent as usual. The client thread does not read the knobs while `restore` runs, so it
        never acts on half a project. Call it on the thread that restores (the message thread). */
    template <typename RestoreFn>
    bool restoreSession (RestoreFn&& restore)
    {
        const juce::ScopedLock lock (restoreLock);
        if (! restore())
            return false;
        Baseline baseline { delegate.currentSettings(), delegate.generatePressCount(), delegate.taskPressCount() };
        restoredBaseline = std::make_unique<Baseline> (std::move (baseline));
        return true;
    }

    /** How many variations on each side of the current one are fetched ahead and kept decoded, so
        turning Variation to a neighbour plays at the next block (0: none; any thread). */
    void setPrefetchDepth (int variationsEachSide) { prefetchDepth = juce::jlimit (0, 4, variationsEachSide); }

    /** Decoded samples kept for Variation changes (the current settings' neighbours). */
    static constexpr size_t kCacheSize = 8;

    /** How long the thread waits on the socket per turn; bounds the reaction time to a knob. */
    static constexpr int kPollIntervalMs = 2;
    /** Morph and tempo moves settle this long before a request goes out (a knob drag is many moves). */
    static constexpr double kSettleSeconds = 0.04;

private:
    void run() override;

    // one turn of the loop, split for reading
    void openSocket (double now);
    void closeSocket();
    bool send (const juce::var& header, const juce::MemoryBlock* binary = nullptr);
    void receiveAll (double now);
    void handleMessage (const codec::EngineMessage& message, const std::vector<juce::MemoryBlock>& frames);
    void checkLiveness (double now);
    void sendWantedRequests (double now);
    void sendJob (const char* type, const codec::RequestSettings& settings);
    void sendConform (const juce::String& renderKey, const codec::RequestSettings& settings);
    void sendTask (const codec::RequestSettings& settings);
    void sendConformFile (const juce::String& name, juce::MemoryBlock bytes, const codec::RequestSettings& settings);
    void prefetchAround (const codec::RequestSettings& settings);
    struct CacheEntry;
    const CacheEntry* cached (const juce::String& identity);
    void remember (const juce::String& identity, std::shared_ptr<const Sample> sample, const juce::StringArray& notes);
    std::shared_ptr<const Sample> decodeFirstSample (const codec::EngineMessage& message, const std::vector<juce::MemoryBlock>& frames,
                                                     const codec::RequestSettings& sent);
    juce::String nextId (const char* prefix);

    template <typename Fn>
    void updateStatus (Fn&& fn)
    {
        const juce::ScopedLock lock (statusLock);
        fn (status);
    }

    Delegate& delegate;
    std::unique_ptr<zmq::context_t> context;
    std::unique_ptr<zmq::socket_t> socket;

    mutable juce::CriticalSection endpointLock;
    juce::String endpoint;
    std::atomic<bool> endpointChanged { false };

    mutable juce::CriticalSection statusLock;
    EngineStatus status;

    // client-thread state
    juce::uint32 idCounter = 0;
    double lastHeardAt = 0.0, lastHeartbeatAt = 0.0, lastPingAt = 0.0, reconnectAt = 0.0;
    double backoffSeconds = 0.0;
    bool connected = false;
    bool engineMissing = false; // it missed its heartbeats; cleared when it answers again

    std::uint32_t lastPressCount = 0;
    std::uint32_t lastFitCount = 0;
    std::uint32_t lastTaskCount = 0;
    int lastVariation = 0;
    double lastMorph = 0.0;
    double morphChangedAt = -1.0;
    bool haveRequest = false;                // a generate (or restored session) exists to vary
    codec::RequestSettings lastSent;         // the settings of the newest job sent
    juce::String inFlightId, inFlightType;
    bool inFlightIsTask = false;             // a task's result is no variation of the request
    juce::var inFlightHeader;                // resent when the engine comes (back) up
    juce::MemoryBlock inFlightAudioPrompt;
    bool needsResend = false;
    // A restored project's knobs and press count, taken when it was restored; the client thread
    // adopts them at its next turn. Guarded by restoreLock (never taken on the audio thread).
    struct Baseline
    {
        codec::RequestSettings settings;
        std::uint32_t presses = 0;
        std::uint32_t taskPresses = 0;
    };
    juce::CriticalSection restoreLock;
    std::unique_ptr<Baseline> restoredBaseline;
    void adoptBaseline (const Baseline& baseline);
    double conformChangedAt = -1.0;

    struct ConformAsked
    {
        juce::String renderKey;
        double tempoBpm = 0.0;
        int sampleRate = 0;
        double pitchSemitones = 0.0;
        juce::String key;
        double loudnessLufs = 0.0;
    };
    ConformAsked lastConformAsked;

    // variations fetched ahead: decoded, keyed by codec::sampleIdentity
    std::atomic<int> prefetchDepth { 1 };
    struct CacheEntry
    {
        juce::String identity;
        std::shared_ptr<const Sample> sample;
        juce::StringArray notes; // the reply's, shown again when the sample is played from here
        juce::uint32 lastUse = 0;
    };
    std::vector<CacheEntry> cache;
    juce::uint32 cacheClock = 0;
    struct Prefetch
    {
        juce::String id, identity;
        codec::RequestSettings settings;
    };
    std::vector<Prefetch> prefetches; // in flight

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (EngineClient)
};

} // namespace loopbridge
