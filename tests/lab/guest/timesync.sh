#!/bin/sh
# Guest half of krunkit-timesync: a stand-in for the QEMU guest agent on
# vsock port 1026 (tools/vsock-echo.c `agent`) takes one command from the
# host's krunkit, twice: the first after a REST Resume, the second after
# the lab host's clock is set. Each command goes to the console for the
# host to check.
detail() { echo "$*" >>"$LAB_DETAIL"; }

for round in 1 2; do
    timeout 120 vsock-echo agent 1026 >/tmp/agent.line 2>/tmp/agent.err &
    pid=$!
    sleep 1
    echo "LAB-STEP agent-listening $round"
    wait $pid || {
        cat /tmp/agent.err
        detail "round $round: the agent on port 1026 failed or had no command within 120 s"
        exit 1
    }
    echo "LAB-STEP agent-got $round $(cat /tmp/agent.line)"
done
detail "two commands on vsock port 1026"
