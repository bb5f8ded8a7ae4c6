# POLYGLOT_SANITIZE=ON (the `asan` preset): AddressSanitizer + UndefinedBehaviorSanitizer, and
# any finding aborts the test (no recovery), so a sanitizer report is always a failed test.
option(POLYGLOT_SANITIZE "Build with ASan+UBSan, no recovery" OFF)
if(POLYGLOT_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
