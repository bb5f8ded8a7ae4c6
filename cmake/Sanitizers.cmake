# POLYGLOT_SANITIZE=ON (the `asan` preset): AddressSanitizer + UndefinedBehaviorSanitizer, and
# any finding aborts the test (no recovery), so a sanitizer report is always a failed test.
option(POLYGLOT_SANITIZE "Build with ASan+UBSan, no recovery" OFF)
# POLYGLOT_TSAN=ON (the `tsan` preset): ThreadSanitizer, for the tests that run threads (the
# HTTP server's, the outbox relay's, the Kafka clients' on librdkafka's mock cluster). TSan
# cannot be combined with ASan, hence a preset of its own.
option(POLYGLOT_TSAN "Build with ThreadSanitizer" OFF)
if(POLYGLOT_SANITIZE AND POLYGLOT_TSAN)
    message(FATAL_ERROR "POLYGLOT_SANITIZE and POLYGLOT_TSAN exclude each other")
endif()
if(POLYGLOT_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
if(POLYGLOT_TSAN)
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
endif()
