# A service in one declaration, and its tests in another (docs/architecture.md, "writing a
# service"). The top-level CMakeLists.txt lists the services (POLYGLOT_SERVICES); each
# <name>/CMakeLists.txt calls polyglot_service() and each tests/<name>/CMakeLists.txt calls
# polyglot_service_tests().
#
# polyglot_service(NAME PREFIX prefix CORE src... STORE src... DRIVER lib...
#                  [LIBS lib...] [MIGRATIONS ext])
# declares three targets, so that each test links only what it needs:
#   <prefix>_svc_core   CORE (handlers and events) and the embedded openapi.yaml, linking svc,
#                       jansson, librdkafka, Threads and LIBS publicly; no engine driver: what
#                       http tests link
#   <prefix>_svc_store  STORE (the store file), linking the core publicly and DRIVER privately,
#                       so no other code of the service can call the driver: ownership is
#                       enforced by the build (STYLE.md)
#   NAME                the binary, main.c, in the service's build folder (build/<preset>/NAME/)
# Embedded, so that the binary does not depend on its working directory:
#   openapi.yaml        as <prefix>_openapi_yaml[] (NUL-terminated) and <prefix>_openapi_yaml_len
#                       (polyglot_embed, cmake/Embed.cmake)
#   migrations/         with MIGRATIONS ext: every migrations/NNN_name.<ext> (.sql for
#                       PostgreSQL, .json steps for MongoDB) as <prefix>_migrations.inc, for the
#                       store to include; see polyglot_migrations() below
function(polyglot_service name)
    cmake_parse_arguments(S "" "PREFIX;MIGRATIONS" "CORE;STORE;DRIVER;LIBS" ${ARGN})
    if(NOT S_PREFIX OR NOT S_CORE OR NOT S_STORE OR NOT S_DRIVER)
        message(FATAL_ERROR "polyglot_service(${name}): PREFIX, CORE, STORE and DRIVER are required")
    endif()
    set(dir ${CMAKE_CURRENT_SOURCE_DIR})
    set(gen ${CMAKE_CURRENT_BINARY_DIR}/generated)

    polyglot_embed(${dir}/openapi.yaml ${S_PREFIX}_openapi_yaml ${gen}/${S_PREFIX}_openapi.c)
    add_library(${S_PREFIX}_svc_core STATIC ${S_CORE} ${gen}/${S_PREFIX}_openapi.c)
    target_include_directories(${S_PREFIX}_svc_core PUBLIC ${dir})
    target_link_libraries(${S_PREFIX}_svc_core PUBLIC svc PkgConfig::JANSSON PkgConfig::RDKAFKA
                                                      Threads::Threads ${S_LIBS})

    add_library(${S_PREFIX}_svc_store STATIC ${S_STORE})
    target_link_libraries(${S_PREFIX}_svc_store PUBLIC ${S_PREFIX}_svc_core
                                                PRIVATE ${S_DRIVER} Threads::Threads)
    if(S_MIGRATIONS)
        polyglot_migrations(${name} ${dir}/migrations ${S_MIGRATIONS}
                            ${gen}/${S_PREFIX}_migrations.inc)
        target_include_directories(${S_PREFIX}_svc_store PRIVATE ${gen})
    endif()

    add_executable(${name} main.c)
    target_link_libraries(${name} PRIVATE ${S_PREFIX}_svc_store ${S_PREFIX}_svc_core)

    # What polyglot_service_tests() needs to know about the service.
    set_property(GLOBAL PROPERTY POLYGLOT_${name}_PREFIX ${S_PREFIX})
    set_property(GLOBAL PROPERTY POLYGLOT_${name}_DRIVER ${S_DRIVER})
endfunction()

# polyglot_migrations(SERVICE DIR EXT OUT) compiles every DIR/NNN_name.EXT into the C file OUT,
# which the store includes. CMake re-runs, and the store is rebuilt, whenever a migration file
# changes or one is added. The generated table, in version order, ends with a zero sentinel:
#
#   static const struct svc_migration migrations[] = {
#       {1, "001_init.sql", "<sha256 of the file, hex>", (const char *)<the bytes, NUL-terminated>},
#       ...
#       {0, NULL, NULL, NULL},
#   };
#
# The includer includes svc/migrate.h first and hands the table to svc_migrate(), which records
# the SHA-256 with each applied migration, so that an edited one is refused. A file not named
# NNN_name.EXT, or two files with one version, stop the configuration.
function(polyglot_migrations service dir ext out)
    file(GLOB files CONFIGURE_DEPENDS ${dir}/*.${ext})
    list(SORT files)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${files})
    set(arrays "")
    set(table "")
    set(versions "")
    foreach(f ${files})
        get_filename_component(file ${f} NAME)
        if(NOT file MATCHES "^0*([0-9]+)_[a-z0-9_]+\\.${ext}$")
            message(FATAL_ERROR "${service} migration '${file}' is not named NNN_name.${ext}")
        endif()
        set(v ${CMAKE_MATCH_1})
        if(v IN_LIST versions)
            message(FATAL_ERROR "${service} migration version ${v} appears twice ('${file}')")
        endif()
        list(APPEND versions ${v})
        file(READ ${f} hex HEX)
        string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
        file(SHA256 ${f} sum)
        string(APPEND arrays "static const unsigned char migration_${v}_text[] = {${bytes}0x00};\n")
        string(APPEND table
               "    {${v}, \"${file}\", \"${sum}\", (const char *)migration_${v}_text},\n")
    endforeach()
    file(RELATIVE_PATH from ${PROJECT_SOURCE_DIR} ${dir})
    file(CONFIGURE OUTPUT ${out}
         CONTENT "/* Generated by polyglot_migrations (cmake/Service.cmake) from ${from}/: do not edit. */
${arrays}
static const struct svc_migration migrations[] = {
${table}    {0, NULL, NULL, NULL},
};
" @ONLY)
endfunction()

# polyglot_service_tests(NAME) declares the tests of service NAME (declared by polyglot_service)
# from the current folder, tests/NAME/, one executable per file, named <prefix>_svc_<file>:
#   <file>_http_test.c  `http`: the handlers in-process on port 0 with a fake store; links the
#                       core and tests/support/testsvc.h, no driver
#   <file>_test.c       `integration`: the real engines of deploy/local; links the store, the
#                       core and the driver (a test may set up what the service would find, such
#                       as an older layout, with the driver itself)
# Integration tests get POLYGLOT_ROOT (the checkout: deploy/local/stack.sh, schemas/),
# POLYGLOT_STATE_DIR and <PREFIX>_SVC_BIN (the binary, which they may run themselves).
# End-to-end tests span services: they live in tests/e2e/.
# schemathesis/run_schemathesis.sh, when there is one, is the `integration` test
# <prefix>_svc_schemathesis against the running service.
function(polyglot_service_tests name)
    get_property(prefix GLOBAL PROPERTY POLYGLOT_${name}_PREFIX)
    get_property(driver GLOBAL PROPERTY POLYGLOT_${name}_DRIVER)
    if(NOT prefix)
        message(FATAL_ERROR "polyglot_service_tests(${name}): no polyglot_service(${name})")
    endif()
    string(TOUPPER ${prefix} bin_macro)
    file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.c)
    foreach(src ${srcs})
        get_filename_component(file ${src} NAME_WE)
        set(test ${prefix}_svc_${file})
        if(file MATCHES "_http_test$")
            polyglot_test(${test} http SOURCES ${src}
                          LIBS ${prefix}_svc_core testsvc PkgConfig::CURL PkgConfig::JANSSON)
            continue()
        endif()
        polyglot_test(${test} integration SOURCES ${src}
                      LIBS ${prefix}_svc_store ${prefix}_svc_core ${driver} testintegration
                           PkgConfig::CURL
                           PkgConfig::RDKAFKA PkgConfig::JANSSON Threads::Threads)
        target_compile_definitions(${test} PRIVATE
            POLYGLOT_ROOT="${PROJECT_SOURCE_DIR}"
            POLYGLOT_STATE_DIR="${POLYGLOT_STATE_DIR}"
            ${bin_macro}_SVC_BIN="$<TARGET_FILE:${name}>")
        add_dependencies(${test} ${name})
    endforeach()

    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/schemathesis/run_schemathesis.sh)
        add_test(NAME ${prefix}_svc_schemathesis
                 COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/schemathesis/run_schemathesis.sh)
        set_tests_properties(${prefix}_svc_schemathesis PROPERTIES LABELS integration TIMEOUT 600)
    endif()
endfunction()
