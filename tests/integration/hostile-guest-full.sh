#!/usr/bin/env bash
# The hostile-guest suite at full size: a 100 MiB reply and 1,000 agent
# flaps (the test command runs 8 MiB and 300). Prints the suite's output,
# whose last lines are the figures (delivery times, VmHWM, connections).
#
#   tests/integration/hostile-guest-full.sh [BUILD_DIR]   (default: build)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
export VC_SOURCE_ROOT=$src VC_BUILD_ROOT=$build VC_TEST_SEAMS=1 G_DEBUG=fatal-criticals
export VIRTCERT=$build/agent/cli/virtcert VIRTCERTD=$build/agent/daemon/virtcertd
export VC_HOSTILE_HUGE_MIB=${VC_HOSTILE_HUGE_MIB:-100} VC_HOSTILE_FLAPS=${VC_HOSTILE_FLAPS:-1000}
exec bash "$src/tests/integration/hostile-guest.sh"
