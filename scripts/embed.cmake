# Turns a binary file into a C source with `const unsigned char SYM[]` and `SYM_len`.
# Usage: cmake -DIN=file -DOUT=file.c -DSYM=name -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR nbytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}" "/* generated from ${IN} by scripts/embed.cmake; do not edit */\n#include <stddef.h>\nconst unsigned char ${SYM}[] = {\n${body}\n};\nconst size_t ${SYM}_len = ${nbytes};\n")
