#!/bin/sh
# Guest half of the stop scenarios: announce readiness, then wait for the
# host to stop the VM (the power button handler in /init powers off).
echo "LAB-STEP waiting"
sleep "${LAB_WAIT:-600}"
echo "never stopped" >>"$LAB_DETAIL"
exit 1
