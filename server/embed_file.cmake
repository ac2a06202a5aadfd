# Writes a C file holding one file as srv_openapi_yaml[] (NUL-terminated) and its length.
# Run at build time: cmake -DOUT=... -DIN=... -P this-file
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
file(WRITE ${OUT}.tmp "/* Generated from ${IN} by server/embed_file.cmake. Do not edit. */\n#include <stddef.h>\nconst char srv_openapi_yaml[] = {${hex}0x00};\nconst size_t srv_openapi_yaml_len = ${len};\n")
file(RENAME ${OUT}.tmp ${OUT})
