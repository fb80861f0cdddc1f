# macOS on Apple silicon loads only signed code: each bundle is signed ad hoc ("-", no identity)
# after it is built, so a locally built plugin loads in the DAW. A release for other people's Macs
# is signed with a Developer ID and notarized instead (outside this build).
find_program(LOOPBRIDGE_CODESIGN codesign REQUIRED)
foreach(format IN LISTS FORMATS)
    set(target ${PROJECT_NAME}_${format})
    if(TARGET ${target})
        add_custom_command(TARGET ${target} POST_BUILD
            COMMAND ${LOOPBRIDGE_CODESIGN} --force --deep --sign - "$<TARGET_BUNDLE_DIR:${target}>"
            COMMENT "Signing ${target} ad hoc"
            VERBATIM)
    endif()
endforeach()
