#!/bin/sh
# Guest half of krunkit-timesync: a stand-in for the QEMU guest agent on
# vsock port 1026 (tools/vsock-echo.c `agent`) takes one command from the
# host's krunkit, twice: the first after a REST Resume, the second after
# the lab host's clock is set. Each command goes to the console for the
# host to check.
detail() { echo "$*" >>"$LAB_DETAIL"; }

for round in 1 2; do
    vsock-echo agent 1026 >/tmp/agent.line 2>/tmp/agent.err &
    pid=$!
    sleep 1
    echo "LAB-STEP agent-listening $round"
    i=0
    while kill -0 $pid 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 1200 ]; then
            detail "round $round: no command on port 1026 within 120 s"
            exit 1
        fi
        sleep 0.1
    done
    wait $pid || {
        cat /tmp/agent.err
        detail "round $round: the agent on port 1026 failed"
        exit 1
    }
    echo "LAB-STEP agent-got $round $(cat /tmp/agent.line)"
done
detail "two commands on vsock port 1026"
