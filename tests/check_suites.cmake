# ctest.every_suite_registered: every gtest suite in the test binary has its ctest entry (tests/CMakeLists.txt
# finds the suites in the sources' TEST lines; a suite it missed would silently never run under ctest).
#   cmake -DEXE=<mtl_tests> -DSUITES=<a;b;...> -P check_suites.cmake
cmake_minimum_required(VERSION 3.18)
execute_process(COMMAND ${EXE} --gtest_list_tests OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} --gtest_list_tests failed (exit ${rc})")
endif()
string(REPLACE "\n" ";" lines "${listing}")
set(missing "")
set(count 0)
foreach(line IN LISTS lines)
  if(line MATCHES "^([A-Za-z0-9_/]+)\\.")  # a suite line: "Suite." or "Instantiation/Suite."
    string(REGEX REPLACE "^([A-Za-z0-9_]+/)?([A-Za-z0-9_]+)\\..*" "\\2" suite "${line}")
    math(EXPR count "${count} + 1")
    if(NOT suite IN_LIST SUITES)
      list(APPEND missing ${suite})
    endif()
  endif()
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "${EXE} --gtest_list_tests listed no suites")
endif()
if(missing)
  message(FATAL_ERROR "suites without a ctest entry (write their TEST lines as `TEST(Suite, Name)` on one "
                      "line): ${missing}")
endif()
message(STATUS "${count} suites, each with its ctest entry")
