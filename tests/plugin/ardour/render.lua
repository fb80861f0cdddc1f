-- Renders a saved snapshot to a 32-bit float WAV at the session rate (no dither, no resampling:
-- float-wav.preset, installed in the test's Ardour config), in a process of its own.
--   ardour7-lua render.lua SESSION_DIR SNAPSHOT OUT_FOLDER OUT_NAME START_SAMPLE END_SAMPLE
-- (ardour7-export is not used: in 7.3 it starts before MIDI regions are read, and exports no notes.)

local dir, snapshot, folder, name = arg[1], arg[2], arg[3], arg[4]
local first, last = tonumber(arg[5]), tonumber(arg[6])
local PRESET = "6c0a1f2e-3b7d-4c59-9a8e-1f2d3c4b5a69"

local session = load_session(dir, snapshot)
if not session then error("could not load snapshot " .. snapshot .. " of " .. dir) end
-- the butler reads the MIDI regions into the tracks' playback buffers after loading
ARDOUR.LuaAPI.usleep(2000000)

local export = session:simple_export()
if not export:set_preset(PRESET) then error("no export preset " .. PRESET .. " in Ardour's config") end
export:set_folder(folder)
export:set_name(name)
export:set_range(first, last)
if not export:run_export() then error("the export of " .. snapshot .. " failed") end
print("exported " .. folder .. "/" .. name .. ".wav")
close_session()
