# Warnings every target gets (STYLE.md: "-Wall -Wextra -Werror and friends").
add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
add_compile_options(
    -Wall -Wextra -Werror
    -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
    -Wpointer-arith -Wformat=2 -Wformat-security -Wundef -Wvla -Wwrite-strings
    -Wcast-align -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough
    -fno-common)
