// Runs every juce::UnitTest in the binary; exits non-zero when any expectation failed.
//
// The binary also replaces the global allocator with one that counts allocations made while a
// thread has marked itself "real-time" (AllocationCounter), so tests can prove that processBlock
// never allocates.
#include "TestUtilities.h"

#include <juce_core/juce_core.h>
#include <juce_events/juce_events.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace loopbridge::test
{
thread_local bool AllocationCounter::threadIsRealtime = false;
std::atomic<int> AllocationCounter::realtimeAllocations { 0 };
} // namespace loopbridge::test

namespace
{
void* countedAllocate (std::size_t size)
{
    if (loopbridge::test::AllocationCounter::threadIsRealtime)
        loopbridge::test::AllocationCounter::realtimeAllocations.fetch_add (1);
    if (auto* memory = std::malloc (size == 0 ? 1 : size))
        return memory;
    throw std::bad_alloc();
}
} // namespace

void* operator new (std::size_t size) { return countedAllocate (size); }
void* operator new[] (std::size_t size) { return countedAllocate (size); }
void operator delete (void* memory) noexcept { std::free (memory); }
void operator delete[] (void* memory) noexcept { std::free (memory); }
void operator delete (void* memory, std::size_t) noexcept { std::free (memory); }
void operator delete[] (void* memory, std::size_t) noexcept { std::free (memory); }

int main (int argc, char** argv)
{
    juce::ScopedJuceInitialiser_GUI juceInitialiser; // parameters and the editor expect a message manager

    juce::UnitTestRunner runner;
    runner.setAssertOnFailure (false);
    const auto category = argc > 1 ? juce::String (argv[1]) : juce::String ("loopbridge");
    runner.runTestsInCategory (category);

    int passed = 0, failed = 0;
    for (int i = 0; i < runner.getNumResults(); ++i)
    {
        const auto* result = runner.getResult (i);
        passed += result->passes;
        failed += result->failures;
    }
    std::printf ("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
