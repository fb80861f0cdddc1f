-- Ardour session with the loopbridge VST3 on two MIDI tracks, Generate pressed through its
-- parameter on each; saved once the engine has answered both (the test writes GO_FILE).
--   ardour7-lua record.lua SESSION_DIR NAME RATE TEMPO_BPM LOOP_LENGTH_VALUE GO_FILE TIMEOUT_S
-- Prints one "key value" line per fact the test reads.

local dir, name, rate, tempo_bpm = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local loop_length_value, go_file, timeout_s = tonumber(arg[5]), arg[6], tonumber(arg[7])

-- the plugin's parameters, in the order of plugin/source/Parameters.cpp (VST3 values are 0..1)
local GENERATE, LENGTH, KIND = 0, 5, 6

local session = create_session(dir, name, rate)
if not session then error("could not create the session " .. dir) end

local tm = Temporal.TempoMap.fetch_writable()
tm:set_tempo(Temporal.Tempo(tempo_bpm, tempo_bpm, 4), Temporal.timepos_t(0))
Temporal.TempoMap.update(tm)

local function instrument_track(track_name)
  local info = ARDOUR.LuaAPI.new_plugin_info("loopbridge", ARDOUR.PluginType.VST3)
  if info:isnil() then error("Ardour does not know the loopbridge VST3 (scan it first)") end
  local tracks = session:new_midi_track(ARDOUR.ChanCount(ARDOUR.DataType("midi"), 1),
    ARDOUR.ChanCount(ARDOUR.DataType("audio"), 2), true, info, nil, nil, 1, track_name,
    ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
  local track = tracks:front()
  local plugin = track:nth_plugin(0)
  if plugin:isnil() or plugin:name() ~= "loopbridge" then error("no loopbridge plugin on " .. track_name) end
  return track, plugin
end

local _, loop_plugin = instrument_track("loop")
local _, shot_plugin = instrument_track("shot")
session:new_audio_track(2, 2, nil, 1, "imported", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)

-- Loop mode and its length on one, One-shot (the default) on the other; then Generate on both
ARDOUR.LuaAPI.set_processor_param(loop_plugin, KIND, 1.0)
ARDOUR.LuaAPI.set_processor_param(loop_plugin, LENGTH, loop_length_value)
ARDOUR.LuaAPI.usleep(200000)
for _, plugin in ipairs({loop_plugin, shot_plugin}) do
  ARDOUR.LuaAPI.set_processor_param(plugin, GENERATE, 1.0)
end
ARDOUR.LuaAPI.usleep(200000)
for _, plugin in ipairs({loop_plugin, shot_plugin}) do
  ARDOUR.LuaAPI.set_processor_param(plugin, GENERATE, 0.0)
end
print("generate pressed")
io.stdout:flush()

-- the session runs in real time meanwhile (Dummy backend): the plugins' replies arrive
local waited_s = 0
while not ARDOUR.LuaAPI.file_test(go_file, ARDOUR.LuaAPI.FileTest.Exists) do
  if waited_s > timeout_s then error("no go from the test within " .. timeout_s .. " s") end
  ARDOUR.LuaAPI.usleep(100000)
  waited_s = waited_s + 0.1
end

print("kind " .. ARDOUR.LuaAPI.get_processor_param(loop_plugin, KIND) .. " " .. ARDOUR.LuaAPI.get_processor_param(shot_plugin, KIND))
print("tempo_bpm " .. Temporal.TempoMap.read():quarters_per_minute_at(Temporal.timepos_t(0)))
if session:save_state("", false, false, false, false, false) ~= 0 then error("saving the session failed") end
print("saved")
close_session()
