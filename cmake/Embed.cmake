# polyglot_embed(FILE SYMBOL OUT): compiles FILE into the C source OUT, defining
#   const unsigned char SYMBOL[];   (the bytes, NUL-terminated)
#   const size_t SYMBOL_len;        (without the NUL)
# so a binary serves its OpenAPI document or applies its migrations without depending on its
# working directory. CMake re-runs when FILE changes.
function(polyglot_embed file symbol out)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
    file(READ ${file} hex HEX)
    string(LENGTH "${hex}" len)
    math(EXPR len "${len} / 2")
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    get_filename_component(name ${file} NAME)
    file(CONFIGURE OUTPUT ${out}
         CONTENT "/* Generated from ${name} by polyglot_embed (cmake/Embed.cmake): do not edit. */
#include <stddef.h>

extern const unsigned char ${symbol}[];
extern const size_t ${symbol}_len;

const unsigned char ${symbol}[] = {${bytes}0x00};
const size_t ${symbol}_len = ${len};
" @ONLY)
endfunction()
