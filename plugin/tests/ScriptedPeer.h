// A ZeroMQ ROUTER that answers the plugin the way the protocol says (hello, heartbeat, ping, and
// jobs and conforms with ready-made WAV bytes), for the client's unit tests and the benchmark's
// "local peer". It counts and keeps what it was asked, and can go silent to play an engine that vanished.
#pragma once

#include <juce_audio_formats/juce_audio_formats.h>
#include <zmq.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace loopbridge::test
{
class ScriptedPeer
{
public:
    /** `wavs[v % size]` answers variation v. */
    explicit ScriptedPeer (std::vector<juce::MemoryBlock> wavsToSend) : wavs (std::move (wavsToSend))
    {
        socket.set (zmq::sockopt::linger, 0);
        socket.bind ("tcp://127.0.0.1:*");
        endpoint = socket.get (zmq::sockopt::last_endpoint);
        thread = std::thread ([this] { run(); });
    }

    ~ScriptedPeer()
    {
        stop = true;
        thread.join();
    }

    std::string endpoint;
    std::atomic<bool> silent { false };     // receives and drops everything, answers nothing
    std::atomic<bool> refuseJobs { false }; // answers generate / variation / morph with an error
    std::atomic<int> jobs { 0 }, prefetches { 0 }, hellos { 0 }, heartbeats { 0 }, conforms { 0 }, fits { 0 };

    /** The binary frames of every conform_file request (the files the plugin sent), oldest first. */
    std::vector<juce::MemoryBlock> fittedFiles() const
    {
        const std::lock_guard<std::mutex> lock (typesLock);
        return files;
    }

    std::vector<std::string> requestTypes() const
    {
        const std::lock_guard<std::mutex> lock (typesLock);
        return types;
    }

    /** Notes every later job or conform reply carries (the engine's "could not make exactly as asked"). */
    void setNotes (const juce::StringArray& notes)
    {
        const std::lock_guard<std::mutex> lock (typesLock);
        notesToSend = notes;
    }

    /** The headers of every request of `type` ("generate", "conform", ...), oldest first. */
    std::vector<juce::var> requestsOfType (const juce::String& type) const
    {
        const std::lock_guard<std::mutex> lock (typesLock);
        std::vector<juce::var> found;
        for (const auto& header : headers)
            if (header["type"].toString() == type)
                found.push_back (header);
        return found;
    }

private:
    void run()
    {
        while (! stop)
        {
            zmq::pollitem_t items[] = { { static_cast<void*> (socket), 0, ZMQ_POLLIN, 0 } };
            zmq::poll (items, 1, std::chrono::milliseconds (5));
            if (! (items[0].revents & ZMQ_POLLIN))
                continue;
            std::vector<zmq::message_t> frames;
            zmq::message_t part;
            do
            {
                (void) socket.recv (part);
                frames.emplace_back (part.data(), part.size());
            } while (part.more());
            if (frames.size() < 2 || silent)
                continue;
            const auto header = juce::JSON::parse (juce::String::fromUTF8 ((const char*) frames[1].data(), (int) frames[1].size()));
            const auto type = header["type"].toString();
            const auto id = header["id"].toString();
            {
                const std::lock_guard<std::mutex> lock (typesLock);
                types.push_back (type.toStdString());
                headers.push_back (header);
            }
            juce::String reply;
            const juce::MemoryBlock* wav = nullptr;
            // Like the engine, a reply says the sample is at the tempo that was asked for, and as
            // long as asked: bars of the host's meter, in quarter notes (beats_per_bar without a
            // meter is the engine's own bar; both together it refuses).
            const auto tempo = header.hasProperty ("tempo_bpm") ? juce::String ((double) header["tempo_bpm"]) : juce::String ("120.0");
            const bool hasMeter = header.hasProperty ("meter_numerator") && header.hasProperty ("meter_denominator");
            const auto quartersPerBar = hasMeter ? (double) header["meter_numerator"] * 4.0 / (double) header["meter_denominator"]
                                                 : (header.hasProperty ("beats_per_bar") ? (double) header["beats_per_bar"] : 4.0);
            const auto beats = juce::String ((header.hasProperty ("bars") ? (double) header["bars"] : 1.0) * quartersPerBar);
            const bool bothLengths = hasMeter && header.hasProperty ("beats_per_bar");
            // Like the engine, a sample is in the song's key when one was asked for (sure of it);
            // without one, this peer says it hears no key, as the engine does for drums.
            const auto askedKey = header["key"].toString();
            const auto sampleKey = askedKey.isNotEmpty() && askedKey != "off"
                                       ? R"("key":")" + askedKey + R"(","key_confidence":0.9)"
                                       : juce::String (R"("key":null,"key_confidence":null)");
            juce::String notes;
            {
                const std::lock_guard<std::mutex> lock (typesLock);
                if (! notesToSend.isEmpty())
                {
                    juce::Array<juce::var> list;
                    for (const auto& note : notesToSend)
                        list.add (note);
                    notes = R"(,"notes":)" + juce::JSON::toString (juce::var (list), true);
                }
            }
            if (type == "hello")
            {
                ++hellos;
                reply = R"({"v":1,"type":"reply","re":"hello","id":")" + id + R"(","models":["default","tiny-dd"]})";
            }
            else if (type == "heartbeat")
            {
                ++heartbeats;
                reply = R"({"v":1,"type":"heartbeat"})";
            }
            else if (type == "ping")
                reply = R"({"v":1,"type":"pong","id":")" + id + "\"}";
            else if (type == "generate" || type == "variation" || type == "morph")
            {
                if (header["priority"].toString() == "background")
                    ++prefetches;
                else
                    ++jobs;
                const int variation = (int) header["variation"];
                if (refuseJobs)
                    reply = R"({"v":1,"type":"error","id":")" + id + R"(","code":"bad_request","message":"steps=999 is not accepted: expected 0-200"})";
                else if (bothLengths)
                    reply = R"({"v":1,"type":"error","id":")" + id + R"(","code":"bad_request","field":"beats_per_bar","message":"beats_per_bar is not accepted with the host's meter"})";
                else
                {
                    wav = &wavs[(size_t) variation % wavs.size()];
                    reply = R"({"v":1,"type":"reply","re":")" + type + R"(","id":")" + id
                            + R"(","samples":[{)" + sampleKey + R"(,"render_key":"r)" + juce::String (variation)
                            + R"(","kind":"loop","tempo_bpm":)" + tempo + R"(,"beats":)" + beats + R"(,"variation":)" + juce::String (variation) + R"(,"frame":1}])" + notes + "}";
                }
            }
            else if (type == "conform_file")
            {
                // The client's own file, stored as a render of its own: "file-r<n>"; a loop at the tempo asked.
                const auto fit = ++fits;
                {
                    const std::lock_guard<std::mutex> lock (typesLock);
                    files.emplace_back (frames.size() > 2 ? frames[2].data() : nullptr, frames.size() > 2 ? frames[2].size() : 0);
                }
                if (frames.size() < 3 || (int) header["audio_frame"] != 1)
                    reply = R"({"v":1,"type":"error","id":")" + id + R"(","code":"bad_request","field":"audio_frame","message":"audio_frame: no binary frame was sent"})";
                else
                {
                    wav = &wavs.front();
                    reply = R"({"v":1,"type":"reply","re":"conform_file","id":")" + id + R"(","samples":[{)" + sampleKey
                            + R"(,"render_key":"file-r)" + juce::String (fit) + R"(","kind":"loop","tempo_bpm":)" + tempo + R"(,"beats":)" + beats
                            + R"(,"frame":1}],"render_key":"file-r)" + juce::String (fit) + R"(","tempo_confidence":0.8,"low_confidence":false)" + notes + "}";
                }
            }
            else if (type == "conform")
            {
                // The stored render fitted again: same render key.
                ++conforms;
                const auto renderKey = header["render_key"].toString();
                if (bothLengths)
                    reply = R"({"v":1,"type":"error","id":")" + id + R"(","code":"bad_request","field":"beats_per_bar","message":"beats_per_bar is not accepted with the host's meter"})";
                else
                {
                    wav = &wavs.front();
                    reply = R"({"v":1,"type":"reply","re":"conform","id":")" + id + R"(","samples":[{)" + sampleKey
                            + R"(,"render_key":")" + renderKey + R"(","kind":"loop","tempo_bpm":)" + tempo
                            + R"(,"beats":)" + beats + R"(,"frame":1}])" + notes + "}";
                }
            }
            else
                continue;
            socket.send (frames[0], zmq::send_flags::sndmore);
            socket.send (zmq::buffer (reply.toStdString()), wav != nullptr ? zmq::send_flags::sndmore : zmq::send_flags::none);
            if (wav != nullptr)
                socket.send (zmq::const_buffer (wav->getData(), wav->getSize()), zmq::send_flags::none);
        }
    }

    std::vector<juce::MemoryBlock> wavs;
    zmq::context_t context { 1 };
    zmq::socket_t socket { context, zmq::socket_type::router };
    std::atomic<bool> stop { false };
    std::thread thread;
    mutable std::mutex typesLock;
    std::vector<std::string> types;
    std::vector<juce::var> headers;
    std::vector<juce::MemoryBlock> files;
    juce::StringArray notesToSend;
};

} // namespace loopbridge::test
