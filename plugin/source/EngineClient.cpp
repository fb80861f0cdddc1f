#include "EngineClient.h"

#include <zmq.hpp>

#include <algorithm>

namespace loopbridge
{
namespace p = loopbridge::protocol;

namespace
{
double nowSeconds() { return juce::Time::getMillisecondCounterHiRes() * 0.001; }

/** ", Am" / ", no key" / "": the sample's key as the engine heard it, for the status line. */
juce::String keyText (const Sample& sample)
{
    if (sample.musicalKey.isNotEmpty())
        return ", " + sample.musicalKey;
    return sample.saysNoKey ? ", no key" : juce::String();
}

} // namespace

EngineClient::EngineClient (Delegate& d, juce::String initialEndpoint)
    : juce::Thread ("loopbridge engine client"), delegate (d), endpoint (std::move (initialEndpoint))
{
    status.endpoint = endpoint;
}

EngineClient::~EngineClient() { stop(); }

void EngineClient::start()
{
    if (isThreadRunning())
        return;
    // The baseline is taken here, before the thread runs, so a press made right after start() counts.
    const auto settings = delegate.currentSettings();
    lastPressCount = delegate.generatePressCount();
    lastTaskCount = delegate.taskPressCount();
    lastVariation = settings.variation;
    lastMorph = settings.morphAmount;
    haveRequest = settings.prompt.isNotEmpty();
    startThread();
}

void EngineClient::stop()
{
    // The loop wakes every kPollIntervalMs, so this returns within a few milliseconds.
    stopThread (2000);
}

void EngineClient::setEndpoint (const juce::String& newEndpoint)
{
    {
        const juce::ScopedLock lock (endpointLock);
        if (endpoint == newEndpoint)
            return;
        endpoint = newEndpoint;
    }
    updateStatus ([&] (EngineStatus& s) { s.endpoint = newEndpoint; });
    endpointChanged = true;
}

juce::String EngineClient::getEndpoint() const
{
    const juce::ScopedLock lock (endpointLock);
    return endpoint;
}

EngineStatus EngineClient::getStatus() const
{
    const juce::ScopedLock lock (statusLock);
    return status;
}

void EngineClient::adoptBaseline (const Baseline& baseline)
{
    // A restored project: its knobs are where the saved sample came from, so nothing is asked for
    // them. A job still running for the project before is of no use to this one.
    if (inFlightId.isNotEmpty() && connected)
        send (codec::makeCancelHeader (nextId ("c"), inFlightId));
    inFlightId.clear();
    needsResend = false;
    lastPressCount = baseline.presses;
    lastTaskCount = baseline.taskPresses;
    lastVariation = baseline.settings.variation;
    lastMorph = baseline.settings.morphAmount;
    morphChangedAt = -1.0;
    conformChangedAt = -1.0;
    haveRequest = baseline.settings.prompt.isNotEmpty();
    lastSent = baseline.settings;
    lastConformAsked = {};
    updateStatus ([] (EngineStatus& s) { s.notes.clear(); }); // they were about the sample before the restore
}

juce::String EngineClient::nextId (const char* prefix) { return juce::String (prefix) + "-" + juce::String (++idCounter); }

void EngineClient::openSocket (double now)
{
    closeSocket();
    const auto target = getEndpoint();
    try
    {
        socket = std::make_unique<zmq::socket_t> (*context, zmq::socket_type::dealer);
        socket->set (zmq::sockopt::linger, 0);
        socket->set (zmq::sockopt::maxmsgsize, (int64_t) p::kMaxReplyFrameBytes);
        // Queue nothing for a peer that is not there: a send then fails at once and the job waits
        // here for the engine instead of in a socket buffer that a reconnect would throw away.
        socket->set (zmq::sockopt::immediate, 1);
        socket->connect (target.toStdString());
    }
    catch (const zmq::error_t& e)
    {
        socket.reset();
        updateStatus ([&] (EngineStatus& s) {
            s.connection = EngineStatus::Connection::notRunning;
            s.lastError = "cannot connect to " + target + ": " + e.what() + " (expected an endpoint like tcp://127.0.0.1:5555)";
        });
        reconnectAt = now + p::kReconnectMaxS;
        return;
    }
    connected = false;
    lastHeardAt = now;
    lastHeartbeatAt = 0.0; // say hello at once
    updateStatus ([&] (EngineStatus& s) {
        // Once the engine was found missing, a retry is still "not running" until it answers.
        if (! engineMissing)
            s.connection = EngineStatus::Connection::connecting;
        s.endpoint = target;
        s.retryInSeconds = 0.0;
    });
}

void EngineClient::closeSocket()
{
    if (socket != nullptr)
    {
        socket->close();
        socket.reset();
    }
    if (inFlightId.isNotEmpty())
        needsResend = true;
    prefetches.clear(); // a new socket never hears their answers
    connected = false;
}

bool EngineClient::send (const juce::var& header, const juce::MemoryBlock* binary)
{
    if (socket == nullptr)
        return false;
    juce::MemoryBlock encoded;
    codec::DecodeError error;
    if (! codec::encodeHeader (header, encoded, error))
    {
        updateStatus ([&] (EngineStatus& s) { s.lastError = "request not sent: " + error.message; });
        return false;
    }
    try
    {
        const bool more = binary != nullptr && binary->getSize() > 0;
        auto flags = zmq::send_flags::dontwait | (more ? zmq::send_flags::sndmore : zmq::send_flags::none);
        if (! socket->send (zmq::const_buffer (encoded.getData(), encoded.getSize()), flags))
            return false;
        if (more && ! socket->send (zmq::const_buffer (binary->getData(), binary->getSize()), zmq::send_flags::dontwait))
            return false;
        return true;
    }
    catch (const zmq::error_t&)
    {
        return false;
    }
}

void EngineClient::sendJob (const char* type, const codec::RequestSettings& settings)
{
    if (inFlightId.isNotEmpty() && connected)
        send (codec::makeCancelHeader (nextId ("c"), inFlightId)); // the newest request wins

    inFlightId = nextId (type);
    inFlightType = type;
    inFlightIsTask = false;
    inFlightHeader = codec::makeRequestHeader (type, inFlightId, settings);
    inFlightAudioPrompt = settings.hasAudioPrompt ? delegate.audioPromptBytes() : juce::MemoryBlock();
    lastSent = settings;
    haveRequest = true;

    const bool sent = connected && send (inFlightHeader, &inFlightAudioPrompt);
    needsResend = ! sent;
    const auto what = juce::String (type) + (juce::String (type) == p::type::kVariation ? " " + juce::String (settings.variation) : juce::String());
    updateStatus ([&] (EngineStatus& s) {
        s.activity = sent ? "requested " + what : what + ": waiting for the engine";
        s.progress = sent ? 0.0 : -1.0;
    });
    if (! sent && socket == nullptr)
        reconnectAt = 0.0; // a user action: try the engine again now rather than after the back-off
}

void EngineClient::sendConform (const juce::String& renderKey, const codec::RequestSettings& settings)
{
    if (inFlightId.isNotEmpty())
        return; // a job in flight answers with the current settings anyway
    inFlightId = nextId ("conform");
    inFlightType = p::type::kConform;
    inFlightIsTask = false;
    inFlightHeader = codec::makeConformHeader (inFlightId, renderKey, settings);
    inFlightAudioPrompt.reset();
    lastSent = settings;
    needsResend = ! (connected && send (inFlightHeader));
    updateStatus ([&] (EngineStatus& s) {
        s.activity = "conforming to " + juce::String (settings.tempoBpm, 2) + " BPM" + (settings.key.isNotEmpty() ? " in " + settings.key : juce::String());
        s.progress = 0.0;
    });
}

void EngineClient::sendConformFile (const juce::String& name, juce::MemoryBlock bytes, const codec::RequestSettings& settings)
{
    if (inFlightId.isNotEmpty() && connected)
        send (codec::makeCancelHeader (nextId ("c"), inFlightId)); // the newest request wins
    inFlightId = nextId ("fit");
    inFlightType = p::type::kConformFile;
    inFlightIsTask = false;
    inFlightHeader = codec::makeConformFileHeader (inFlightId, name, settings);
    inFlightAudioPrompt = std::move (bytes); // the file travels as binary frame 1, and again on a resend
    lastSent = settings;
    const bool sent = connected && send (inFlightHeader, &inFlightAudioPrompt);
    needsResend = ! sent;
    updateStatus ([&] (EngineStatus& s) {
        s.activity = sent ? "fitting " + name + " to " + juce::String (settings.tempoBpm, 2) + " BPM"
                          : "fitting " + name + ": waiting for the engine";
        s.progress = sent ? 0.0 : -1.0;
    });
    if (! sent && socket == nullptr)
        reconnectAt = 0.0; // a user action: try the engine again now rather than after the back-off
}

void EngineClient::sendTask (const codec::RequestSettings& settings)
{
    const auto task = settings.task;
    const auto refuse = [&] (const juce::String& why) {
        updateStatus ([&] (EngineStatus& s) {
            s.lastError = task + ": " + why;
            s.progress = -1.0;
        });
    };
    // The sample that plays is the user's audio: what the engine sent last (a generated sample, a
    // dropped file fitted to the song, an earlier task's result), already at the host's tempo and
    // starting on a downbeat, as a task takes it.
    const auto source = delegate.latestSample();
    if (source == nullptr || source->wavBytes.getSize() == 0)
        return refuse ("no sample to work on (Generate one, or drop a file to fit to the song, first)");
    if (source->wavBytes.getSize() > (size_t) p::kMaxBinaryFrameBytes)
        return refuse ("the sample is larger than the engine takes (" + juce::String (p::kMaxBinaryFrameBytes) + " bytes)");
    if (std::abs (source->pitchSemitones) > 1.0e-6)
        return refuse ("set Pitch to 0 first (a task works on the sample as it was made: its result would be shifted again)");
    std::map<juce::String, codec::ModelTasks> known;
    {
        const juce::ScopedLock lock (statusLock);
        known = status.modelTasks;
    }
    const auto model = known.find (settings.model);
    if (model == known.end())
        return refuse (known.empty() ? juce::String ("the engine has not said yet what its models can do")
                                     : "the engine lists no model '" + settings.model + "'");
    if (! model->second.tasks.contains (task))
    {
        auto offered = model->second.tasks;
        offered.removeString (p::task::kGenerate);
        return refuse (settings.model + " cannot " + task + " ("
                       + (offered.isEmpty() ? juce::String ("it works on no user audio") : "it can: " + offered.joinIntoString (", ")) + ")");
    }
    if ((task == p::task::kExtract || task == p::task::kAdd) && ! model->second.tracks.contains (settings.track))
        return refuse (settings.model + " takes no track '" + settings.track + "' (it takes: " + model->second.tracks.joinIntoString (", ") + ")");

    if (inFlightId.isNotEmpty() && connected)
        send (codec::makeCancelHeader (nextId ("c"), inFlightId)); // the newest request wins
    inFlightId = nextId (task.toRawUTF8());
    inFlightType = task;
    inFlightIsTask = true;
    inFlightHeader = codec::makeTaskHeader (inFlightId, settings);
    inFlightAudioPrompt = source->wavBytes; // the sample travels as binary frame 1, and again on a resend
    lastSent = settings;
    const bool sent = connected && send (inFlightHeader, &inFlightAudioPrompt);
    needsResend = ! sent;
    updateStatus ([&] (EngineStatus& s) {
        s.activity = sent ? "requested " + task + " of the sample" : task + ": waiting for the engine";
        s.progress = sent ? 0.0 : -1.0;
    });
    if (! sent && socket == nullptr)
        reconnectAt = 0.0; // a user action: try the engine again now rather than after the back-off
}

std::shared_ptr<const Sample> EngineClient::decodeFirstSample (const codec::EngineMessage& message,
                                                               const std::vector<juce::MemoryBlock>& frames,
                                                               const codec::RequestSettings& sent)
{
    if (message.samples.empty())
        return nullptr;
    const auto& ref = message.samples.front();
    auto info = ref.info;
    info.pitchSemitones = sent.pitchSemitones;
    info.keyAsked = sent.key;
    info.loudnessLufs = sent.loudnessLufs;
    if (info.variation < 0)
        info.variation = sent.variation;
    const auto& wav = frames[(size_t) ref.frame];
    juce::String error;
    auto sample = Sample::fromWav (wav.getData(), wav.getSize(), info, error);
    if (sample == nullptr)
    {
        updateStatus ([&] (EngineStatus& s) { s.lastError = "the engine's sample cannot be played: " + error; });
        return nullptr;
    }
    return std::shared_ptr<const Sample> (std::move (sample));
}

const EngineClient::CacheEntry* EngineClient::cached (const juce::String& identity)
{
    for (auto& entry : cache)
        if (entry.identity == identity)
        {
            entry.lastUse = ++cacheClock;
            return &entry;
        }
    return nullptr;
}

void EngineClient::remember (const juce::String& identity, std::shared_ptr<const Sample> sample, const juce::StringArray& notes)
{
    if (sample == nullptr || cached (identity) != nullptr)
        return;
    if (cache.size() >= kCacheSize)
    {
        auto oldest = std::min_element (cache.begin(), cache.end(), [] (const auto& a, const auto& b) { return a.lastUse < b.lastUse; });
        cache.erase (oldest);
    }
    cache.push_back ({ identity, std::move (sample), notes, ++cacheClock });
}

void EngineClient::prefetchAround (const codec::RequestSettings& settings)
{
    const auto depth = prefetchDepth.load();
    if (! connected || depth <= 0)
        return;
    for (int distance = 1; distance <= depth; ++distance)
        for (const auto variation : { settings.variation + distance, settings.variation - distance })
        {
            if (variation < 0 || variation > 127 || (int) prefetches.size() >= 2 * depth)
                continue;
            auto wanted = settings;
            wanted.variation = variation;
            const auto identity = codec::sampleIdentity (wanted, variation);
            const bool pending = std::any_of (prefetches.begin(), prefetches.end(), [&] (const auto& f) { return f.identity == identity; });
            if (pending || cached (identity) != nullptr)
                continue;
            Prefetch prefetch { nextId ("prefetch"), identity, wanted };
            // The audio prompt is not sent ahead: prefetching is for the plain variations only.
            if (! wanted.hasAudioPrompt && send (codec::makeRequestHeader (p::type::kVariation, prefetch.id, wanted, true)))
                prefetches.push_back (std::move (prefetch));
        }
}

void EngineClient::receiveAll (double now)
{
    if (socket == nullptr)
        return;
    for (;;)
    {
        std::vector<juce::MemoryBlock> frames;
        bool tooMany = false;
        try
        {
            zmq::message_t part;
            if (! socket->recv (part, zmq::recv_flags::dontwait))
                return;
            for (;;)
            {
                if ((int) frames.size() < p::kMaxFrames)
                    frames.emplace_back (part.data(), part.size());
                else
                    tooMany = true; // drain the rest of the message, keep nothing of it
                if (! part.more())
                    break;
                if (! socket->recv (part))
                    break;
            }
        }
        catch (const zmq::error_t& e)
        {
            updateStatus ([&] (EngineStatus& s) { s.lastError = juce::String ("receive failed: ") + e.what(); });
            return;
        }

        lastHeardAt = now;
        if (! connected)
        {
            connected = true;
            engineMissing = false;
            backoffSeconds = p::kReconnectInitialS;
            updateStatus ([&] (EngineStatus& s) {
                s.connection = EngineStatus::Connection::connected;
                s.retryInSeconds = 0.0;
            });
            if (needsResend && inFlightId.isNotEmpty())
                needsResend = ! send (inFlightHeader, &inFlightAudioPrompt);
        }

        // A REQ-style empty delimiter in front of the header is tolerated.
        if (! frames.empty() && frames.front().getSize() == 0)
            frames.erase (frames.begin());
        if (frames.empty() || tooMany)
        {
            updateStatus ([&] (EngineStatus& s) {
                s.lastError = "dropped a message from the engine: " + juce::String (tooMany ? "more than " + juce::String (p::kMaxFrames) + " frames" : "no header frame");
            });
            continue;
        }

        juce::var header;
        codec::DecodeError error;
        codec::EngineMessage message;
        if (! codec::decodeHeader (frames.front().getData(), frames.front().getSize(), header, error)
            || ! codec::parseEngineMessage (header, (int) frames.size(), message, error))
        {
            updateStatus ([&] (EngineStatus& s) { s.lastError = "dropped a message from the engine (" + error.code + "): " + error.message; });
            continue;
        }
        handleMessage (message, frames);
    }
}

void EngineClient::handleMessage (const codec::EngineMessage& message, const std::vector<juce::MemoryBlock>& frames)
{
    using Kind = codec::EngineMessage::Kind;
    const bool isCurrentJob = message.id.isNotEmpty() && message.id == inFlightId;

    switch (message.kind)
    {
        case Kind::reply:
        {
            if (message.re == p::type::kHello || message.re == p::type::kModels)
            {
                const auto models = codec::modelIdsFrom (message.header);
                // A hello lists ids only: ask for each model's capabilities (what the task buttons offer).
                if (message.re == p::type::kHello)
                    send (codec::makeModelsHeader (nextId ("models")));
                updateStatus ([&] (EngineStatus& s) {
                    if (! models.isEmpty())
                        s.models = models;
                    if (message.re == p::type::kModels)
                        s.modelTasks = codec::modelTasksFrom (message.header);
                    // An engine that answers a hello is reachable: an error from before (a bad
                    // endpoint, a failed receive) no longer describes it.
                    if (message.re == p::type::kHello)
                        s.lastError.clear();
                });
                return;
            }
            for (auto it = prefetches.begin(); it != prefetches.end(); ++it)
                if (it->id == message.id)
                {
                    const auto prefetch = *it;
                    prefetches.erase (it);
                    remember (prefetch.identity, decodeFirstSample (message, frames, prefetch.settings), message.notes);
                    return;
                }
            if (! isCurrentJob)
                return; // an answer to a request that a newer one replaced
            inFlightId.clear();
            needsResend = false;
            auto sample = decodeFirstSample (message, frames, lastSent);
            if (sample == nullptr)
            {
                updateStatus ([&] (EngineStatus& s) {
                    if (message.samples.empty())
                        s.activity = inFlightType + ": the engine sent no sample";
                    s.progress = -1.0;
                });
                return;
            }
            const auto text = (inFlightIsTask ? inFlightType + " result: " : juce::String()) + (sample->isLoop ? juce::String ("loop") : juce::String ("one-shot")) + ", variation "
                              + juce::String (sample->variation) + (sample->tempoBpm > 0 ? ", " + juce::String (sample->tempoBpm, 1) + " BPM" : juce::String())
                              + keyText (*sample);
            // a conform, or a file fitted, is no variation of the request: not kept for the Variation knob
            // nor is a task's result
            const bool fitted = inFlightType == p::type::kConform || inFlightType == p::type::kConformFile || inFlightIsTask;
            if (! fitted)
                remember (codec::sampleIdentity (lastSent, lastSent.variation), sample, message.notes);
            delegate.sampleArrived (std::move (sample));
            updateStatus ([&] (EngineStatus& s) {
                s.activity = "playing " + text;
                s.notes = message.notes; // the engine's word on this sample's length (empty: as asked)
                s.progress = -1.0;
                s.lastError.clear(); // the user's newest request worked: an older error is history
                ++s.samplesReceived;
            });
            if (! fitted)
                prefetchAround (lastSent);
            return;
        }
        case Kind::accepted:
            if (isCurrentJob)
                updateStatus ([&] (EngineStatus& s) {
                    s.activity = inFlightType + (message.position > 0 ? ": queued, " + juce::String (message.position) + " ahead" : ": started");
                });
            return;
        case Kind::progress:
            if (isCurrentJob)
                updateStatus ([&] (EngineStatus& s) {
                    s.progress = message.fraction;
                    s.activity = inFlightType + ": " + juce::String (juce::roundToInt (message.fraction * 100.0)) + "%";
                });
            return;
        case Kind::error:
            prefetches.erase (std::remove_if (prefetches.begin(), prefetches.end(), [&] (const auto& f) { return f.id == message.id; }),
                              prefetches.end());
            if (isCurrentJob || message.id.isEmpty())
            {
                if (isCurrentJob)
                {
                    inFlightId.clear();
                    needsResend = false;
                }
                updateStatus ([&] (EngineStatus& s) {
                    s.lastError = "engine error " + juce::String (message.errorNumber) + " " + message.errorCode + ": " + message.errorMessage;
                    s.activity = "";
                    s.progress = -1.0;
                });
            }
            return;
        case Kind::pong:
        case Kind::heartbeat:
        case Kind::unknown:
            return;
    }
}

void EngineClient::checkLiveness (double now)
{
    if (socket == nullptr)
    {
        updateStatus ([&] (EngineStatus& s) { s.retryInSeconds = juce::jmax (0.0, reconnectAt - now); });
        if (now >= reconnectAt)
            openSocket (now);
        return;
    }

    if (now - lastHeartbeatAt >= p::kHeartbeatIntervalS)
    {
        lastHeartbeatAt = now;
        if (! connected)
            send (codec::makeHelloHeader (nextId ("hello"), LOOPBRIDGE_VERSION)); // until the engine answers
        else
        {
            send (codec::makeHeartbeatHeader());
            if (now - lastHeardAt >= p::kHeartbeatIntervalS)
                send (codec::makePingHeader (nextId ("ping"))); // an engine that only answers still proves it is there
        }
    }

    if (now - lastHeardAt > p::kHeartbeatIntervalS * p::kHeartbeatLiveness)
    {
        // The engine missed its beats: start again with a fresh socket after a growing pause
        // (a socket that kept its queue would deliver stale requests to a restarted engine).
        closeSocket();
        engineMissing = true;
        if (backoffSeconds <= 0.0)
            backoffSeconds = p::kReconnectInitialS;
        reconnectAt = now + backoffSeconds;
        backoffSeconds = juce::jmin (backoffSeconds * 2.0, p::kReconnectMaxS);
        updateStatus ([&] (EngineStatus& s) {
            s.connection = EngineStatus::Connection::notRunning;
            s.retryInSeconds = reconnectAt - now;
            s.progress = -1.0;
        });
    }
}

void EngineClient::sendWantedRequests (double now)
{
    codec::RequestSettings settings;
    std::uint32_t presses = 0;
    {
        // The knobs are read after a restore's baseline is adopted and never while a restore runs,
        // so what is compared below is either all before or all after it. What changed since the
        // baseline was taken (a press right after the restore) is acted on like any other change.
        const juce::ScopedLock lock (restoreLock);
        if (restoredBaseline != nullptr)
        {
            adoptBaseline (*restoredBaseline);
            restoredBaseline.reset();
        }
        settings = delegate.currentSettings();
        presses = delegate.generatePressCount();
    }

    if (presses != lastPressCount)
    {
        lastPressCount = presses;
        lastVariation = settings.variation;
        lastMorph = settings.morphAmount;
        morphChangedAt = -1.0;
        sendJob (p::type::kGenerate, settings);
        return;
    }

    const auto tasks = delegate.taskPressCount();
    if (tasks != lastTaskCount)
    {
        lastTaskCount = tasks;
        sendTask (settings);
        return;
    }

    const auto fits = delegate.fitFileCount();
    if (fits != lastFitCount)
    {
        lastFitCount = fits;
        juce::String name;
        auto bytes = delegate.fitFileBytes (name);
        if (bytes.getSize() > 0)
        {
            sendConformFile (name, std::move (bytes), settings);
            return;
        }
    }

    const bool canVary = haveRequest || settings.prompt.isNotEmpty();
    if (settings.variation != lastVariation)
    {
        lastVariation = settings.variation;
        if (canVary)
        {
            if (const auto* entry = cached (codec::sampleIdentity (settings, settings.variation)))
            {
                const auto ready = entry->sample;
                const auto notes = entry->notes;
                // Fetched ahead: hand it over now; the audio thread plays it from its next block.
                if (inFlightId.isNotEmpty() && connected)
                    send (codec::makeCancelHeader (nextId ("c"), inFlightId));
                inFlightId.clear();
                needsResend = false;
                lastSent = settings;
                haveRequest = true;
                delegate.sampleArrived (ready);
                updateStatus ([&] (EngineStatus& s) {
                    s.activity = "playing variation " + juce::String (settings.variation) + keyText (*ready) + " (fetched ahead)";
                    s.notes = notes;
                    s.progress = -1.0;
                    s.lastError.clear();
                    ++s.samplesReceived;
                });
                prefetchAround (settings);
                return;
            }
            sendJob (p::type::kVariation, settings);
            return;
        }
    }

    if (std::abs (settings.morphAmount - lastMorph) > 1.0e-6)
    {
        lastMorph = settings.morphAmount;
        morphChangedAt = now;
    }
    if (morphChangedAt >= 0.0 && now - morphChangedAt >= kSettleSeconds)
    {
        morphChangedAt = -1.0;
        if (canVary && settings.morphPrompt.isNotEmpty())
        {
            sendJob (p::type::kMorph, settings);
            return;
        }
    }

    // A new host tempo, rate, Pitch, Key or Loudness re-conforms the current sample (the engine does
    // not run the model).
    if (inFlightId.isEmpty())
    {
        const auto latest = delegate.latestSample();
        if (latest != nullptr && latest->renderKey.isNotEmpty())
        {
            const bool tempoMoved = latest->isLoop && latest->tempoBpm > 0.0 && std::abs (latest->tempoBpm - settings.tempoBpm) > 0.01;
            const bool rateMoved = juce::roundToInt (latest->sampleRate) != settings.sampleRate;
            const bool pitchMoved = std::abs (latest->pitchSemitones - settings.pitchSemitones) > 1.0e-6;
            const bool keyMoved = latest->keyAsked != settings.key;
            const bool loudnessMoved = std::abs (latest->loudnessLufs - settings.loudnessLufs) > 1.0e-3;
            const bool alreadyAsked = lastConformAsked.renderKey == latest->renderKey && lastConformAsked.tempoBpm == settings.tempoBpm
                                      && lastConformAsked.sampleRate == settings.sampleRate
                                      && lastConformAsked.pitchSemitones == settings.pitchSemitones && lastConformAsked.key == settings.key
                                      && lastConformAsked.loudnessLufs == settings.loudnessLufs;
            if ((tempoMoved || rateMoved || pitchMoved || keyMoved || loudnessMoved) && ! alreadyAsked)
            {
                if (conformChangedAt < 0.0)
                    conformChangedAt = now;
                else if (now - conformChangedAt >= kSettleSeconds)
                {
                    conformChangedAt = -1.0;
                    lastConformAsked = { latest->renderKey, settings.tempoBpm, settings.sampleRate, settings.pitchSemitones, settings.key,
                                         settings.loudnessLufs };
                    sendConform (latest->renderKey, settings);
                }
            }
            else
                conformChangedAt = -1.0;
        }
    }
}

void EngineClient::run()
{
    context = std::make_unique<zmq::context_t> (1);
    backoffSeconds = p::kReconnectInitialS;
    openSocket (nowSeconds());

    while (! threadShouldExit())
    {
        if (endpointChanged.exchange (false))
        {
            backoffSeconds = p::kReconnectInitialS;
            engineMissing = false;
            openSocket (nowSeconds());
        }

        if (socket != nullptr)
        {
            zmq::pollitem_t items[] = { { static_cast<void*> (*socket), 0, ZMQ_POLLIN, 0 } };
            try
            {
                zmq::poll (items, 1, std::chrono::milliseconds (kPollIntervalMs));
            }
            catch (const zmq::error_t&)
            {
            }
        }
        else
            juce::Thread::sleep (kPollIntervalMs);

        const auto now = nowSeconds();
        receiveAll (now);
        sendWantedRequests (now);
        checkLiveness (now);
        delegate.housekeeping();
    }

    closeSocket();
    context->close();
    context.reset();
}

} // namespace loopbridge
