# cmake/onnx.cmake: ONNX protobuf support for libsdc, generated at build time.
#
# The C code for ONNX's messages (onnx.pb-c.c / onnx.pb-c.h, types Onnx__ModelProto, ...) is made
# by protoc-c from the onnx.proto that Debian's libonnx-dev ships (/usr/include/onnx/onnx.proto),
# into ${CMAKE_BINARY_DIR}/generated/onnx/, and compiled into the `sdc` library; nothing generated
# is committed. Readers (src/onnx/onnx_io.h, the vaelight preview decoder) and writers (the ONNX
# exporter) share it: include "onnx.pb-c.h" (the folder is on sdc's public include path).
#
# Needs: protobuf-c-compiler (protoc-c), libprotobuf-c-dev, libonnx-dev (scripts/setup.sh).
# Included from CMakeLists.txt after the `sdc` target is defined.

find_program(SDC_PROTOC_C NAMES protoc-c protoc-gen-c)
if(NOT SDC_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: install protobuf-c-compiler (scripts/setup.sh)")
endif()
find_file(SDC_ONNX_PROTO NAMES onnx/onnx.proto PATHS /usr/include /usr/local/include)
if(NOT SDC_ONNX_PROTO)
  message(FATAL_ERROR "onnx/onnx.proto not found: install libonnx-dev (scripts/setup.sh)")
endif()
find_package(PkgConfig REQUIRED)
pkg_check_modules(SDC_PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)

get_filename_component(_sdc_onnx_proto_dir "${SDC_ONNX_PROTO}" DIRECTORY)
set(SDC_ONNX_GEN_DIR "${CMAKE_BINARY_DIR}/generated/onnx")
set(SDC_ONNX_PB_C "${SDC_ONNX_GEN_DIR}/onnx.pb-c.c")
set(SDC_ONNX_PB_H "${SDC_ONNX_GEN_DIR}/onnx.pb-c.h")
file(MAKE_DIRECTORY "${SDC_ONNX_GEN_DIR}")
add_custom_command(
  OUTPUT ${SDC_ONNX_PB_C} ${SDC_ONNX_PB_H}
  COMMAND ${SDC_PROTOC_C} --proto_path=${_sdc_onnx_proto_dir} --c_out=${SDC_ONNX_GEN_DIR}
          ${SDC_ONNX_PROTO}
  DEPENDS ${SDC_ONNX_PROTO}
  COMMENT "Generating ONNX protobuf-c code from ${SDC_ONNX_PROTO}")

target_sources(sdc PRIVATE ${SDC_ONNX_PB_C} ${SDC_ONNX_PB_H})
target_include_directories(sdc PUBLIC ${SDC_ONNX_GEN_DIR})
target_link_libraries(sdc PUBLIC PkgConfig::SDC_PROTOBUF_C)
