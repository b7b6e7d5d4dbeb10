#!/bin/sh
# Guest half of krunkit-timesync: a stand-in for the QEMU guest agent on
# vsock port 1026 (tools/vsock-echo.c `agent`) takes the one command the
# host's krunkit sends after a REST Resume and answers it; the command goes
# to the console for the host to check.
detail() { echo "$*" >>"$LAB_DETAIL"; }

vsock-echo agent 1026 >/tmp/agent.line 2>/tmp/agent.err &
pid=$!
sleep 1
echo "LAB-STEP agent-listening"
i=0
while kill -0 $pid 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 1200 ]; then
        detail "no command on port 1026 within 120 s"
        exit 1
    fi
    sleep 0.1
done
wait $pid || {
    cat /tmp/agent.err
    detail "the agent on port 1026 failed"
    exit 1
}
echo "LAB-STEP agent-got $(cat /tmp/agent.line)"
detail "one command on vsock port 1026"
