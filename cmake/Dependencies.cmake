# Runtime libraries, found through pkg-config. Debian 12's mbedTLS 2.28 ships
# no .pc files (3.6 does), so for mbedTLS alone we fall back to the plain
# library names when pkg-config does not know them.
# Windows (cmake/mingw-w64-x86_64.cmake): static libraries that
# scripts/build-windows cross-built from Debian's sources into UKEY_WIN_DEPS,
# and the system's own DLLs. libcurl is not among them: fetches go through
# WinHTTP there (agent/x509/fetch_win.c), and sd-bus has no Windows twin.
if(WIN32)
  if(NOT UKEY_WIN_DEPS)
    message(FATAL_ERROR "UKEY_WIN_DEPS is not set: build with scripts/build-windows")
  endif()
  add_library(ukey_deps INTERFACE)
  add_library(ukey::deps ALIAS ukey_deps)
  # pkcs11.h is platform-neutral (it packs the structures for _WIN32 itself).
  target_include_directories(ukey_deps INTERFACE ${UKEY_WIN_DEPS}/include /usr/include/p11-kit-1)
  # By path, not find_library: its cached answer would keep naming the
  # previous UKEY_WIN_DEPS when the script's cache key changes.
  foreach(lib microhttpd mbedtls mbedx509 mbedcrypto jansson crypto)
    if(NOT EXISTS ${UKEY_WIN_DEPS}/lib/lib${lib}.a)
      message(FATAL_ERROR "${UKEY_WIN_DEPS}/lib/lib${lib}.a is missing: build with scripts/build-windows")
    endif()
    target_link_libraries(ukey_deps INTERFACE ${UKEY_WIN_DEPS}/lib/lib${lib}.a)
  endforeach()
  target_link_libraries(ukey_deps INTERFACE winscard winhttp ws2_32 iphlpapi crypt32 bcrypt
                        shell32 ole32 user32 advapi32 -static)
  set(P11KIT_INCLUDE_DIRS /usr/include/p11-kit-1)
  find_package(Threads REQUIRED)
  target_link_libraries(ukey_deps INTERFACE Threads::Threads)
  return()
endif()

find_package(PkgConfig REQUIRED)
# libmicrohttpd: with UKEY_DEPS (scripts/test and scripts/demo pass it), the
# static one scripts/build-deps built from Debian's source without HTTPS;
# Debian's shared one links GnuTLS and eight more libraries for a TLS the
# agent does not use (2.5 MiB of its idle memory, half its start-up's
# libraries: bench/README.md). Without it, Debian's, as a distribution's
# own package must link it.
set(UKEY_DEPS "" CACHE PATH "prefix of scripts/build-deps linux (a static libmicrohttpd without HTTPS)")
if(UKEY_DEPS)
  if(NOT EXISTS ${UKEY_DEPS}/lib/libmicrohttpd.a OR NOT EXISTS ${UKEY_DEPS}/include/microhttpd.h)
    message(FATAL_ERROR "UKEY_DEPS=${UKEY_DEPS} holds no static libmicrohttpd: run scripts/build-deps linux")
  endif()
  add_library(ukey_mhd STATIC IMPORTED)
  set_target_properties(ukey_mhd PROPERTIES IMPORTED_LOCATION ${UKEY_DEPS}/lib/libmicrohttpd.a
                        INTERFACE_INCLUDE_DIRECTORIES ${UKEY_DEPS}/include)
else()
  pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd>=0.9.75)
  add_library(ukey_mhd ALIAS PkgConfig::MHD)
endif()
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.13)
pkg_check_modules(PCSC REQUIRED IMPORTED_TARGET libpcsclite)
# libcurl: its header only; agent/x509/fetch.c loads libcurl.so.4 at the
# first fetch, so that serving never loads its dependency tree (the .deb's
# dependency on libcurl4 is declared in CMakeLists.txt).
pkg_check_modules(CURL REQUIRED libcurl>=7.85)
# libcrypto 3.0: the certificate layer (agent/x509/) and SM2/SM3.
pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto>=3.0)
# PKCS#11 modules are loaded with dlopen: p11-kit gives the standard header only.
pkg_check_modules(P11KIT REQUIRED p11-kit-1)
# sd-bus: desktop notifications on the session bus (agent/notify/notify.c);
# its header only: notify.c loads libsystemd.so.0 when the first reminder
# is due (the .deb's dependency on libsystemd0 is declared in CMakeLists.txt).
pkg_check_modules(LIBSYSTEMD REQUIRED libsystemd)
pkg_check_modules(MBEDTLS QUIET IMPORTED_TARGET mbedtls mbedx509 mbedcrypto)

add_library(ukey_deps INTERFACE)
add_library(ukey::deps ALIAS ukey_deps)
target_link_libraries(ukey_deps INTERFACE ukey_mhd PkgConfig::JANSSON
                      PkgConfig::PCSC PkgConfig::LIBCRYPTO)
if(MBEDTLS_FOUND)
  target_link_libraries(ukey_deps INTERFACE PkgConfig::MBEDTLS)
else()
  find_path(MBEDTLS_INCLUDE_DIR mbedtls/ssl.h REQUIRED)
  find_library(MBEDTLS_LIB mbedtls REQUIRED)
  find_library(MBEDX509_LIB mbedx509 REQUIRED)
  find_library(MBEDCRYPTO_LIB mbedcrypto REQUIRED)
  target_include_directories(ukey_deps INTERFACE ${MBEDTLS_INCLUDE_DIR})
  target_link_libraries(ukey_deps INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} ${MBEDCRYPTO_LIB})
endif()
target_include_directories(ukey_deps INTERFACE ${P11KIT_INCLUDE_DIRS} ${CURL_INCLUDE_DIRS} ${LIBSYSTEMD_INCLUDE_DIRS})
find_package(Threads REQUIRED)
target_link_libraries(ukey_deps INTERFACE Threads::Threads ${CMAKE_DL_LIBS})
